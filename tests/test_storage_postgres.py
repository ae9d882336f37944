"""Searches on a real PostgreSQL server (tests/postgres.py): one driver, two drivers of
different searches at once, two drivers sharing one search (--join), and the storage-level
guarantees behind --join (one baseline, never more trials than the target)."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from hpo_prune.objectives import non_dominated
from hpo_prune.search.studies import space as spaces
from hpo_prune.settings import TrialConfig
from hpo_prune.results.storage import open_storage
from hpo_prune.search.studies.designs import design_of
from hpo_prune.search.studies.study import INTERRUPTED, Mode, open_study
from helpers import ENV, TINY, search

State = optuna.trial.TrialState
SCRATCH = [*TINY, "--regimes", "scratch"]
HOST = socket.gethostname()


def pg_studies(url: str) -> dict[str, optuna.Study]:
    return {name: optuna.load_study(study_name=name, storage=url)
            for name in optuna.get_all_study_names(url)}


def start(args, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hpo_prune.search", *args], cwd=cwd,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out[-3000:]
    return out


def assert_csv_is_the_storage(folder: Path, study: optuna.Study,
                              still_running: tuple = ()) -> pd.DataFrame:
    """trials.csv holds the storage's trials; those numbered in ``still_running`` may show
    RUNNING or WAITING, or be missing (a driver that exits before another driver's trials end
    keeps them so; the other driver may queue confirmation runs after it has exited)."""
    table = pd.read_csv(folder / "trials.csv")
    assert set(table.study) == {study.study_name}
    assert not table.duplicated("trial").any()
    rows = table.set_index("trial")
    trials = study.get_trials()
    missing = {t.number for t in trials} - set(rows.index)
    assert missing <= set(still_running)
    assert sorted(rows.index) == [t.number for t in trials if t.number not in missing]
    for trial in trials:
        if trial.number in missing:
            continue
        row = rows.loc[trial.number]
        if row.state in ("RUNNING", "WAITING") and trial.number in still_running:
            continue
        assert row.state == trial.state.name
        assert row.driver == trial.user_attrs["driver"]
        if trial.values:
            assert row.val_acc == pytest.approx(trial.values[0])
            assert row.remaining_fraction == pytest.approx(trial.values[1])
    return table


def test_search_and_resume_on_postgres(postgres_url, tmp_path):
    args = [*SCRATCH, "--max-concurrent", "2", "--baseline-seeds", "2", "--name", "pg",
            "--results", str(tmp_path)]
    proc = search(*args, "--trials", "2", "--storage", postgres_url, cwd=tmp_path)
    assert f"optuna-dashboard {postgres_url}" in proc.stdout
    # --resume finds the storage in search.json; here it raises the target by one trial
    search(*args, "--trials", "3", "--resume", cwd=tmp_path)
    folder = tmp_path / "pg"
    assert not (folder / "optuna.db").exists()
    (study,) = pg_studies(postgres_url).values()
    assert study.study_name == "pg.mobilenet_v2.digits.scratch"
    trials = study.get_trials()
    # 3 finished trials, of which the 2 baselines, then the confirmation run of the sampled
    # one (on the front: fewer parameters)
    assert [t.state for t in trials] == [State.COMPLETE] * 4
    main = [t for t in trials if t.user_attrs.get("confirms") is None]
    assert len(main) == 3 and sum(t.user_attrs["baseline"] for t in main) == 2
    (sampled,) = [t for t in main if not t.user_attrs["baseline"]]
    (confirmation,) = [t for t in trials if t.user_attrs.get("confirms") is not None]
    assert confirmation.user_attrs["confirms"] == sampled.number
    table = assert_csv_is_the_storage(folder, study)
    assert (table.state == "COMPLETE").sum() == 4
    assert table.driver.str.startswith(f"{HOST}:").all() and table.driver.nunique() == 2


def test_unreachable_postgres_is_one_line_exit_2(tmp_path):
    proc = search(*SCRATCH, "--trials", "1", "--name", "u", "--results", str(tmp_path),
                  "--storage", "postgresql://postgres@127.0.0.1:1/nowhere", cwd=tmp_path,
                  check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--storage" in lines[0], proc.stderr[-2000:]
    assert not (tmp_path / "u").exists()


def test_two_searches_write_one_database_at_once(postgres_url, tmp_path):
    drivers = {name: start([*SCRATCH, "--trials", "3", "--baseline-seeds", "3",
                            "--max-concurrent", "1", "--name", name,
                            "--results", str(tmp_path / name), "--storage", postgres_url],
                           tmp_path)
               for name in ("a", "b")}
    for proc in drivers.values():
        finish(proc)
    found = pg_studies(postgres_url)
    assert sorted(found) == ["a.mobilenet_v2.digits.scratch", "b.mobilenet_v2.digits.scratch"]
    for name, proc in drivers.items():
        study = found[f"{name}.mobilenet_v2.digits.scratch"]
        trials = study.get_trials()
        assert [t.state for t in trials] == [State.COMPLETE] * 3
        assert {t.user_attrs["driver"] for t in trials} == {f"{HOST}:{proc.pid}"}
        assert_csv_is_the_storage(tmp_path / name / name, study)


def test_two_drivers_share_one_search_with_join(postgres_url, tmp_path):
    """Driver A starts the search, driver B joins it: between them the study ends with exactly
    --trials finished trials, each run once, one set of baselines, each front configuration
    confirmed once, nothing left running or failed."""
    common = [*SCRATCH, "--epochs", "2", "--train-subset", "256", "--trials", "6",
              "--baseline-seeds", "3", "--max-concurrent", "1", "--name", "shared",
              "--storage", postgres_url,
              "--keep-models", "all"]  # every trial's model, in its driver's folder (below)
    first = start([*common, "--results", str(tmp_path / "A")], tmp_path)
    deadline = time.time() + 120  # B joins once A has created the study
    while not optuna.get_all_study_names(postgres_url) and time.time() < deadline:
        time.sleep(0.2)
    second = start([*common, "--results", str(tmp_path / "B"), "--join"], tmp_path)
    out = {"A": finish(first), "B": finish(second)}
    (study,) = pg_studies(postgres_url).values()
    trials = study.get_trials()
    main = [t for t in trials if t.user_attrs.get("confirms") is None]
    assert sum(t.state == State.COMPLETE for t in main) == 6, out
    assert [t.number for t in trials] == list(range(len(trials)))
    assert not [t for t in trials if t.state in (State.RUNNING, State.WAITING)]
    assert not [t for t in trials if t.user_attrs.get("fail_reason") == INTERRUPTED]
    assert sum(t.user_attrs["baseline"] for t in trials) == 3  # --baseline-seeds 3
    sampled = [tuple(sorted(t.params.items())) for t in main if not t.user_attrs["baseline"]]
    assert len(set(sampled)) == len(sampled)  # B's sampler is not A's seeded twin
    on_front = non_dominated([t.values for t in main])
    confirmed = [(t.user_attrs["confirms"], t.user_attrs["seed"]) for t in trials
                 if t.user_attrs.get("confirms") is not None]
    assert sorted(confirmed) == sorted((t.number, 1) for t, on in zip(main, on_front)
                                       if on and not t.user_attrs["baseline"])
    drivers = {t.user_attrs["driver"] for t in trials if t.state == State.COMPLETE}
    assert drivers == {f"{HOST}:{first.pid}", f"{HOST}:{second.pid}"}, out
    for t in trials:  # each model in its driver's folder: B (--join) names it absolutely
        model_dir = Path(t.user_attrs["model_dir"])
        if t.user_attrs["driver"] == f"{HOST}:{second.pid}":
            assert model_dir.is_relative_to((tmp_path / "B").resolve()), model_dir
        else:
            assert not model_dir.is_absolute()
            model_dir = tmp_path / "A" / "shared" / model_dir
        assert (model_dir / "model.pt").is_file()
    # each driver exports the whole study; the one that finished last has every trial ended,
    # the other may still show the last one's trials RUNNING, or not yet have the
    # confirmation runs it queued
    csvs = sorted((tmp_path / name / "shared" / "trials.csv" for name in ("A", "B")),
                  key=lambda path: path.stat().st_mtime)
    assert_csv_is_the_storage(csvs[1].parent, study)
    last = first if csvs[1].parent.parent.name == "A" else second
    theirs = {t.number for t in trials if t.user_attrs["driver"] == f"{HOST}:{last.pid}"}
    assert_csv_is_the_storage(csvs[0].parent, study, still_running=theirs)
    assert "seed_offset" in (tmp_path / "B" / "shared" / "search.json").read_text()


@pytest.fixture
def plan_args():
    space = spaces.load("mobilenet.yaml", "mobilenet_v2")
    base = TrialConfig(model="mobilenet_v2", dataset="digits", init="scratch", epochs=1)
    return base, space


def _together(count: int, work) -> list:
    """Run work(i) in count threads released at the same instant; their results."""
    barrier, out = threading.Barrier(count), [None] * count

    def run(i):
        barrier.wait()
        try:
            out[i] = work(i)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test's thread
            out[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for result in out:
        if isinstance(result, BaseException):
            raise result
    return out


def test_drivers_creating_a_study_at_once_queue_one_baseline(postgres_url, plan_args):
    base, space = plan_args
    for k in range(5):
        name = f"race{k}.mobilenet_v2.digits.scratch"
        _together(4, lambda i: open_study(open_storage(postgres_url), name, base,
                                          design_of(space, "tpe", 0, 8), Mode.JOIN, i))
        study = optuna.load_study(study_name=name, storage=postgres_url)
        (waiting,) = study.get_trials(states=(State.WAITING,))
        assert waiting.system_attrs["fixed_params"]["prune_ratio"] == 0.0
        assert study.user_attrs["regime"] == "scratch"


def test_drivers_asking_at_once_never_pass_the_target(postgres_url, plan_args):
    """Four drivers ask as fast as they can: between them exactly the target is asked."""
    base, space = plan_args
    name = "asks.mobilenet_v2.digits.scratch"
    plans = [open_study(open_storage(postgres_url), name, base, design_of(space, "random", 0, 12),
                        Mode.JOIN, i) for i in range(4)]

    def ask_all(i):
        asked = 0
        while plans[i].ask() is not None:
            asked += 1
        return asked

    asked = _together(4, ask_all)
    assert sum(asked) == 12
    study = optuna.load_study(study_name=name, storage=postgres_url)
    assert len(study.get_trials(states=(State.RUNNING,))) == 12


@pytest.mark.parametrize("flags, says", [
    (["--join"], "--storage"),
    (["--join", "--storage", "sqlite:///shared.db"], "--storage"),
    (["--join", "--resume", "--storage", "postgresql://postgres@127.0.0.1:1/db"], "--resume"),
])
def test_join_misuse_is_one_line_exit_2(tmp_path, flags, says):
    proc = search(*SCRATCH, "--name", "j", "--results", str(tmp_path), *flags, cwd=tmp_path,
                  check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "--join" in lines[0], proc.stderr[-2000:]


def test_a_second_live_driver_on_one_results_folder_is_refused(postgres_url, tmp_path):
    from filelock import FileLock

    from hpo_prune.results.files import LOCK_FILE

    folder = tmp_path / "busy"
    folder.mkdir()
    with FileLock(str(folder / LOCK_FILE)):  # as a live driver of this folder holds it
        proc = search(*SCRATCH, "--name", "busy", "--results", str(tmp_path), "--join",
                      "--storage", postgres_url, cwd=tmp_path, check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "in use by another driver" in lines[0], proc.stderr[-2000:]
