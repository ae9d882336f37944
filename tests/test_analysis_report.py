"""The offline report, built by the command line from a real results directory (Optuna storage
in SQLite, search.json, trials.csv; no Ray): every linked file exists, Optuna's pages carry
plotly.js inline, and thin or failed studies give notes instead of crashes."""
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from helpers import T, baseline, make_search, standard_studies

from analysis.__main__ import main
from analysis.load import load_csv


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.scripts = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("a", "img") and (attrs.get("href") or attrs.get("src")):
            self.links.append(attrs.get("href") or attrs.get("src"))
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])


def links(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    studies = standard_studies()
    # a second dataset whose pretrained study has ONE completed trial, scratch only failures
    studies[("vgg16", "svhn", "pretrained")] = [baseline(0.9, 0.89), T(state="RUNNING")]
    studies[("vgg16", "svhn", "scratch")] = [baseline(None, None, state="FAIL",
                                                      fail_reason="out of memory")]
    directory = make_search(tmp_path_factory.mktemp("search"), studies)
    assert main(["--results", str(directory), "--bootstrap", "200"]) == 0
    return directory / "report"


def test_report_files_exist_and_every_link_resolves(report, capsys):
    for name in ("index.html", "summary.csv", "comparison.csv", "fronts.csv", "summary.md"):
        assert (report / name).is_file()
    figures = sorted(p.name for p in (report / "figures").iterdir())
    assert figures == sorted(f"{stem}.{ext}" for stem in ("digits", "svhn", "summary",
                                                          "hypervolume")
                             for ext in ("png", "svg"))
    pages = sorted(p.name for p in (report / "optuna").iterdir())
    assert len(pages) == 4
    index = links(report / "index.html")
    linked = set(index.links)
    for name in figures:
        assert f"figures/{name}" in linked
    for name in pages:
        assert f"optuna/{name}" in linked
    for link in linked:
        assert (report / link).is_file(), link
    assert not any(p.name.endswith((".partial", ".old")) for p in report.parent.iterdir())


def test_optuna_pages_are_self_contained_and_skip_thin_plots(report):
    for page in (report / "optuna").iterdir():
        text = page.read_text(encoding="utf-8")
        assert not links(page).scripts  # no <script src=...>: nothing fetched from a CDN
        assert "Parameter importances for val_acc (fANOVA)" in text
        if "plotly-graph-div" in text:  # a page with a plot carries the library inline
            assert text.count("plotly.js v") == 1
    full = (report / "optuna" / "demo.vgg16.digits.pretrained.html").read_text()
    # 9 completed trials: every plot but the importances (they need 30)
    assert full.count('class="plotly-graph-div"') == 6
    assert full.count("skipped: 9 completed trial(s), this plot needs 30") == 2
    thin = (report / "optuna" / "demo.vgg16.svhn.pretrained.html").read_text()
    assert "skipped: 1 completed trial(s), this plot needs 30" in thin
    empty = (report / "optuna" / "demo.vgg16.svhn.scratch.html").read_text()
    assert "skipped: 0 completed trial(s)" in empty and "plotly.js v" not in empty


def test_tables_and_fronts_in_the_report(report):
    summary = pd.read_csv(report / "summary.csv")
    assert list(summary["regime"]) == ["pretrained", "scratch", "pretrained", "scratch"]
    digits = summary[summary["dataset"] == "digits"].set_index("regime")
    assert digits.loc["pretrained", "removed_1pt"] == pytest.approx(0.91)
    svhn = summary[summary["dataset"] == "svhn"].set_index("regime")
    assert "insufficient trials: 0 completed pruned trial(s)" in svhn.loc["pretrained", "note"]
    assert "the unpruned trial #0 is FAIL (out of memory)" in svhn.loc["scratch", "note"]
    fronts = load_csv(report / "fronts.csv")  # the same schema as trials.csv
    trials = load_csv(report.parent / "trials.csv")
    done = trials[trials["state"] == "COMPLETE"]
    assert len(fronts) == 16 and set(fronts["state"]) == {"COMPLETE"}
    assert fronts["lr"].notna().all() and fronts["schedule"].notna().all()
    assert set(zip(fronts["study"], fronts["trial"])) <= set(zip(done["study"], done["trial"]))
    index = (report / "index.html").read_text()
    assert "fine-tuned prunes 41.0 points further" in index
    assert "no verdict: the scratch study has no completed baseline" in index
    assert re.search(r"Hypervolume reference point: val_acc 0, remaining_fraction 1", index)


def test_rebuild_replaces_the_report_and_refuses_foreign_directories(report, tmp_path, capsys):
    directory = report.parent
    assert main(["--results", str(directory), "--bootstrap", "200", "--trials-from", "csv",
                 "--no-optuna-pages", "--study", "demo.vgg16.digits.scratch"]) == 0
    assert not (report / "optuna").exists()  # the earlier report was replaced as a whole
    assert pd.read_csv(report / "summary.csv")["study"].tolist() == ["demo.vgg16.digits.scratch"]
    assert "read from" in (report / "index.html").read_text()
    assert "## Headline" in capsys.readouterr().out
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        main(["--results", str(directory), "--out", str(foreign)])
    assert exit_info.value.code == 2 and (foreign / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in foreign.iterdir()) == ["keep.txt"]
