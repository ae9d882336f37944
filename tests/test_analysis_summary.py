"""The headline table and the fine-tuned vs scratch verdict on hand-made trials tables whose
answer is known by construction, and the public API on the search's own trials.csv."""
import re

import numpy as np
import pandas as pd
import pytest

from analysis import analyse, fit_front, summarise
from analysis.compare import compare_regimes, headline_verdicts, verdict
from analysis.schema import normalise
from analysis.tables import terminal_text
from hpo_prune.errors import UsageError


def table(studies: dict[str, list[tuple]]) -> pd.DataFrame:
    """studies: regime -> [(val_acc, remaining_fraction, test_acc[, state[, baseline]])]; the
    first row of each is the unpruned baseline unless it says otherwise."""
    rows = []
    for regime, trials in studies.items():
        for number, trial in enumerate(trials):
            val, rem, test, *rest = trial
            state = rest[0] if rest else "COMPLETE"
            base = rest[1] if len(rest) > 1 else number == 0
            rows.append({"study": f"s.vgg16.digits.{regime}", "trial": number, "state": state,
                         "baseline": base, "regime": regime, "val_acc": val,
                         "remaining_fraction": rem, "test_acc": test, "model": "vgg16",
                         "dataset": "digits",
                         "prune_ratio": 0.0 if base else (1 - rem if rem else 0.5)})
    return normalise(pd.DataFrame(rows), "test table")


FINE_TUNED = [(0.95, 1.0, 0.94), (0.948, 0.20, 0.93), (0.946, 0.12, 0.935),
              (0.944, 0.10, 0.92), (0.943, 0.11, 0.93), (0.936, 0.05, 0.92),
              (0.80, 0.02, 0.79), (0.941, 0.09, 0.925), (0.945, 0.13, 0.93),
              (None, None, None, "FAIL"), (None, None, None, "PRUNED")]
SCRATCH = [(0.93, 1.0, 0.925), (0.928, 0.60, 0.92), (0.924, 0.55, 0.91), (0.921, 0.50, 0.915),
           (0.926, 0.58, 0.92), (0.912, 0.40, 0.90), (0.85, 0.30, 0.84), (0.923, 0.52, 0.91),
           (0.927, 0.57, 0.92), (None, None, None, "RUNNING")]


def test_headline_figures_known_by_construction():
    summary = summarise(table({"pretrained": FINE_TUNED, "scratch": SCRATCH}), n_boot=300)
    pre, scr = summary.iloc[0], summary.iloc[1]
    assert (pre["regime"], scr["regime"]) == ("pretrained", "scratch")
    assert pre["unpruned_test_acc"] == 0.94 and pre["baseline_trial"] == 0
    # within 0.5 pt of val 0.95 (>= 0.945): best is 0.12 remaining (trial 2)
    assert pre["removed_0.5pt"] == pytest.approx(0.88) and pre["trial_0.5pt"] == 2
    assert pre["test_acc_0.5pt"] == 0.935
    # within 1 pt (>= 0.94): 0.09 remaining (trial 7); within 2 pt (>= 0.93): 0.05 (trial 5)
    assert pre["removed_1pt"] == pytest.approx(0.91) and pre["trial_1pt"] == 7
    assert pre["removed_2pt"] == pytest.approx(0.95) and pre["trial_2pt"] == 5
    assert scr["removed_1pt"] == pytest.approx(0.50) and scr["trial_1pt"] == 3
    for row in (pre, scr):  # a bootstrap maximum never exceeds the full sample's
        for label in ("0.5pt", "1pt", "2pt"):
            assert row[f"removed_{label}_lo"] <= row[f"removed_{label}_hi"]
            assert row[f"removed_{label}_hi"] <= row[f"removed_{label}"] + 1e-12
    assert (pre["n_complete"], pre["n_fail"], pre["n_pruned"], pre["n_trials"]) == (9, 1, 1, 11)
    assert (scr["n_complete"], scr["n_running"]) == (9, 1)
    assert pre["hypervolume"] > scr["hypervolume"] > 0


def test_selection_uses_val_and_reports_test():
    trials = [(0.90, 1.0, 0.90),
              (0.895, 0.30, 0.80),  # within 1 pt on val, 10 pts worse on test: selected
              (0.85, 0.10, 0.899),  # within 1 pt on TEST only: must not be selected
              (0.90, 0.50, 0.89)]
    row = summarise(table({"scratch": trials}), n_boot=200).iloc[0]
    assert row["removed_1pt"] == pytest.approx(0.70)
    assert row["trial_1pt"] == 1 and row["test_acc_1pt"] == 0.80 and row["val_acc_1pt"] == 0.895


def test_verdict_text_and_sign():
    assert verdict(0.12, 0.05, 0.20) == ("fine-tuned prunes 12.0 points further (bootstrap "
                                         "interval 5.0 to 20.0)")
    assert verdict(-0.12, -0.20, -0.05) == ("scratch prunes 12.0 points further (bootstrap "
                                            "interval 5.0 to 20.0)")
    assert verdict(0.03, -0.02, 0.08).startswith("no clear difference (fine-tuned minus scratch "
                                                 "+3.0 points, bootstrap interval -2.0 to +8.0)")
    assert verdict(0.1, np.nan, np.nan) == "insufficient trials"


def _verdict_of(studies) -> pd.Series:
    comparison = compare_regimes(analyse(table(studies), n_boot=300))
    return comparison[comparison["headline"]].iloc[0]


def test_regime_comparison_finds_who_prunes_further():
    ahead = _verdict_of({"pretrained": FINE_TUNED, "scratch": SCRATCH})
    assert ahead["difference"] == pytest.approx(0.41) and ahead["ci_low"] > 0
    assert re.fullmatch(r"fine-tuned prunes 41\.0 points further "
                        r"\(bootstrap interval [\d.]+ to [\d.]+\)",
                        ahead["verdict"])
    behind = _verdict_of({"pretrained": SCRATCH, "scratch": FINE_TUNED})
    assert behind["difference"] == pytest.approx(-0.41) and behind["ci_high"] < 0
    assert behind["verdict"].startswith("scratch prunes 41.0 points further (bootstrap "
                                        "interval ")
    same = _verdict_of({"pretrained": SCRATCH, "scratch": SCRATCH})
    assert same["difference"] == 0 and same["verdict"].startswith("no clear difference")


def test_missing_baseline_and_too_few_trials_are_said_not_guessed():
    failed_baseline = [(None, None, None, "FAIL", True), (0.9, 0.5, 0.9), (0.8, 0.2, 0.8),
                       (0.85, 0.3, 0.85)]
    few = [(0.93, 1.0, 0.92), (0.92, 0.6, 0.91), (0.91, 0.5, 0.9)]
    studies = {"pretrained": failed_baseline, "scratch": few}
    results = analyse(table(studies), n_boot=200)
    summary = summarise(table(studies), n_boot=200)
    pre, scr = summary.iloc[0], summary.iloc[1]
    assert np.isnan(pre["removed_1pt"]) and pd.isna(pre["baseline_trial"])
    assert "baseline missing: the unpruned trial #0 is FAIL" in pre["note"]
    assert scr["removed_2pt"] == pytest.approx(0.5) and np.isnan(scr["removed_2pt_lo"])
    assert "insufficient trials: 2 completed pruned trial(s)" in scr["note"]
    lines = headline_verdicts(compare_regimes(results))
    assert lines == ["vgg16 on digits (within 1 point of unpruned val accuracy): no verdict: "
                     "the pretrained study has no completed baseline"]
    text = terminal_text(summary, compare_regimes(results))
    assert "n/a (no baseline)" in text and "insufficient trials" in text


def test_unmarked_prune_ratio_zero_trial_serves_as_baseline_and_output_is_deterministic():
    grid = [(0.9, 0.5, 0.9, "COMPLETE", False), (0.92, 1.0, 0.91, "COMPLETE", False),
            (0.915, 0.4, 0.9, "COMPLETE", False), (0.85, 0.2, 0.84, "COMPLETE", False)]
    df = table({"scratch": grid})
    df.loc[1, "prune_ratio"] = 0.0
    first, second = summarise(df, n_boot=200), summarise(df, n_boot=200)
    pd.testing.assert_frame_equal(first, second)
    assert first.iloc[0]["baseline_trial"] == 1
    assert first.iloc[0]["removed_1pt"] == pytest.approx(0.6)
    assert "not marked as the baseline" in first.iloc[0]["note"]


# ------------------------------------------------------------ the public API on a trials.csv
@pytest.fixture(scope="module")
def search_dir(tmp_path_factory):
    from helpers import make_search, standard_studies

    return make_search(tmp_path_factory.mktemp("search"), standard_studies())


def test_summarise_reads_a_trials_csv_written_by_the_search_exporter(search_dir):
    """pd.read_csv of the search's trials.csv goes through the CLI's checks and column names
    and gives the same headline table as the results directory (read from its storage)."""
    from_csv = summarise(pd.read_csv(search_dir / "trials.csv"), n_boot=200)
    pd.testing.assert_frame_equal(from_csv, summarise(search_dir, n_boot=200))
    assert list(from_csv["baseline_trial"]) == [0, 0]
    assert from_csv.iloc[0]["removed_1pt"] == pytest.approx(0.91)
    assert [r.name for r in analyse(pd.read_csv(search_dir / "trials.csv"), n_boot=0)] == \
        ["demo.vgg16.digits.pretrained", "demo.vgg16.digits.scratch"]


def test_a_missing_baseline_column_is_derived_from_prune_ratio_zero(search_dir):
    trials = pd.read_csv(search_dir / "trials.csv")
    derived = summarise(trials.drop(columns="baseline"), n_boot=200)
    pd.testing.assert_frame_equal(derived, summarise(trials, n_boot=200))
    assert list(derived["baseline_trial"]) == [0, 0] and not derived["note"].any()
    with pytest.raises(UsageError, match=r"lacks column\(s\) baseline: it was not written"):
        summarise(trials.drop(columns=["baseline", "prune_ratio"]), n_boot=200)


def test_fit_front_names_the_columns_it_lacks():
    with pytest.raises(UsageError, match=r"lacks column\(s\) remaining_fraction"):
        fit_front(pd.DataFrame({"val_acc": [0.9, 0.8]}))
