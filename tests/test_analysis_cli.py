"""Bad input to ``python -m analysis``: one line on stderr naming the problem, exit status 2,
and nothing written or modified."""
import sqlite3
import subprocess
import sys

import optuna
import pytest
from helpers import COLUMNS, make_search, standard_studies

from analysis.__main__ import main


def fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "error: " in err and err.count("\n") == 1 and err.endswith("\n"), err
    return err


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    return make_search(tmp_path_factory.mktemp("search"), standard_studies())


def test_missing_foreign_and_empty_directories(tmp_path, capsys):
    assert "does not exist" in fails(["--results", str(tmp_path / "nope")], capsys)
    foreign = tmp_path / "tensorboard_run"
    foreign.mkdir()
    (foreign / "events.out.tfevents.1").write_bytes(b"\x00\x01")
    err = fails(["--results", str(foreign)], capsys)
    assert "neither trials.csv nor an Optuna storage" in err
    (foreign / "trials.csv").write_text("epoch,loss\n1,0.5\n")
    assert "lacks column(s) study, trial" in fails(["--results", str(foreign)], capsys)
    (foreign / "trials.csv").write_text(",".join(COLUMNS) + "\n")
    assert "holds no trials yet" in fails(["--results", str(foreign)], capsys)
    row = dict.fromkeys(COLUMNS, "")
    row.update(study="s", trial="0", state="COMPLETE", baseline="True", regime="scratch",
               val_acc="high", model="vgg16", dataset="digits")
    (foreign / "trials.csv").write_text(",".join(COLUMNS) + "\n"
                                        + ",".join(row.values()) + "\n")
    assert "column val_acc holds the non-numeric value 'high'" in fails(
        ["--results", str(foreign)], capsys)
    assert not (foreign / "report").exists()


def test_storages_that_are_not_the_search_s(tmp_path, capsys):
    text = tmp_path / "optuna.db"
    text.write_text("not a database")
    assert "not an SQLite database" in fails(["--results", str(tmp_path)], capsys)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE runs (id INTEGER)")
    err = fails(["--storage", f"sqlite:///{other}", "--out", str(tmp_path / "r")], capsys)
    assert "not an Optuna storage" in err
    with sqlite3.connect(other) as con:  # and it was left as it was
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["runs"]
    url = f"sqlite:///{tmp_path / 'single.db'}"
    optuna.create_study(study_name="loss", storage=url, direction="minimize")
    err = fails(["--storage", url, "--out", str(tmp_path / "r")], capsys)
    assert "study loss has directions ['minimize']" in err
    assert not (tmp_path / "r").exists()


def test_unknown_study_and_flag_misuse(search, capsys):
    url = f"sqlite:///{search / 'optuna.db'}"
    err = fails(["--storage", url, "--study", "nope", "--out", str(search / "r")], capsys)
    assert "unknown study 'nope'" in err and "demo.vgg16.digits.pretrained" in err
    assert "unknown study 'nope'" in fails(["--results", str(search), "--study", "nope"], capsys)
    assert "--storage needs --out" in fails(["--storage", url], capsys)
    assert "pass --results DIR" in fails([], capsys)
    assert "--bootstrap must be >= 100" in fails(["--results", str(search), "--bootstrap", "5"],
                                                 capsys)
    assert "not allowed with argument" in fails(["--results", str(search), "--storage", url],
                                                capsys)
    assert not (search / "report").exists() and not (search / "r").exists()


def test_the_real_command_exits_2_without_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "analysis", "--results",
                           str(tmp_path / "missing")], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "does not exist" in done.stderr
