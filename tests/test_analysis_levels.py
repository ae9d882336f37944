"""The level design's analysis (``analysis.levels``): each level chosen on the val accuracy of
its search runs and valued on its fresh-seed runs only, the accuracy kept, the paired t
interval of fine-tuned minus scratch, the per-level rows and verdicts, and the interval's
coverage on simulated searches with a known truth (a small fixed-seed run of
``benchmarks/verdict_coverage.py``)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import analyse
from analysis.compare import compare_regimes, headline_verdicts
from analysis.levels import t_interval
from hpo_prune.levels import fresh_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import verdict_coverage  # noqa: E402


def run(study, number, seed, val, test, level=None, confirms=None, regime=None):
    ratio = level or 0.0
    return {"study": study, "trial": number, "state": "COMPLETE", "model": "vgg16",
            "dataset": "digits", "regime": regime or study.rsplit(".", 1)[1], "seed": seed,
            "prune_ratio": ratio, "remaining_fraction": 1 - ratio, "val_acc": val,
            "test_acc": test, "baseline": level is None, "confirms": confirms, "level": level}


def study_rows(regime, baselines, levels) -> list[dict]:
    """``baselines``: [(val, test)] with seeds 0..; ``levels``: {level: ([search (val, test)],
    [fresh (val, test)])}: the fresh runs confirm the best search run on val."""
    name = f"s.vgg16.digits.{regime}"
    rows = [run(name, k, k, v, t) for k, (v, t) in enumerate(baselines)]
    n = 0
    for i, (level, (search, fresh)) in enumerate(sorted(levels.items())):
        numbers = []
        for v, t in search:
            numbers.append(len(rows))
            rows.append(run(name, len(rows), len(baselines) + n, v, t, level))
            n += 1
        best = numbers[int(np.argmax([v for v, _ in search]))]
        rows += [run(name, len(rows) + j, fresh_seed(0, i, j + 1), v, t, level, best)
                 for j, (v, t) in enumerate(fresh)]
    return rows


BASE_PRE = [(0.97, 0.97), (0.96, 0.98), (0.98, 0.96)]
BASE_SCR = [(0.96, 0.95), (0.95, 0.96), (0.97, 0.94)]


def table(pre_levels, scr_levels) -> pd.DataFrame:
    frame = pd.DataFrame(study_rows("pretrained", BASE_PRE, pre_levels)
                         + study_rows("scratch", BASE_SCR, scr_levels))
    frame["confirms"] = frame["confirms"].astype("Int64")
    return frame


def by_level(results, regime):
    return next(r for r in results if r.regime == regime).levels


def test_a_level_is_chosen_on_val_and_valued_on_its_fresh_runs_only():
    # two search runs at 0.9: the better one on val has the worse test accuracy; its fresh
    # runs alone value the level (the choosing run, the luckiest, is left out)
    results = analyse(table({0.9: ([(0.90, 0.70), (0.80, 0.99)], [(0.85, 0.80), (0.84, 0.82)])},
                            {0.9: ([(0.70, 0.60)], [(0.72, 0.62), (0.71, 0.64)])}), n_boot=0)
    pre = by_level(results, "pretrained")[0.9]
    assert pre.trial == 3 and pre.n == 2 and pre.n_search == 2
    assert pre.test_acc == pytest.approx(0.81) and pre.val_acc == pytest.approx(0.845)
    assert pre.kept == pytest.approx(0.81 - 0.97)
    # a single search run chose nothing: it counts with its fresh runs
    scr = by_level(results, "scratch")[0.9]
    assert scr.n == 3 and scr.test_acc == pytest.approx(0.62)


def test_the_difference_is_paired_by_seed_with_a_welch_t_interval():
    frame = table({0.9: ([(0.9, 0.80)], [(0.9, 0.84), (0.9, 0.83)])},
                  {0.9: ([(0.7, 0.60)], [(0.7, 0.66), (0.7, 0.61)])})
    row = compare_regimes(analyse(frame.sample(frac=1, random_state=3), n_boot=0)).iloc[0]
    d = np.array([0.80 - 0.60, 0.84 - 0.66, 0.83 - 0.61])  # the same seeds, level by level
    e = np.array([0.97 - 0.95, 0.98 - 0.96, 0.96 - 0.94])  # the baselines' seeds 0, 1, 2
    se2 = d.var(ddof=1) / 3 + e.var(ddof=1) / 3
    df = se2 ** 2 / ((d.var(ddof=1) / 3) ** 2 / 2 + (e.var(ddof=1) / 3) ** 2 / 2)
    half = stats.t.ppf(0.975, df) * np.sqrt(se2)
    assert row["figure"] == "kept_at_90" and bool(row["headline"])
    assert row["difference"] == pytest.approx(d.mean() - e.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((d.mean() - e.mean() - half,
                                                              d.mean() - e.mean() + half))
    assert row["method"] == "paired t" and row["n_pairs"] == 3
    assert row["pretrained"] == pytest.approx((0.80 + 0.84 + 0.83) / 3 - 0.97)
    assert row["verdict"].startswith("at 90% removed, fine-tuned keeps 18.0 points more")
    assert "95% CI" in row["verdict"]


def test_runs_that_do_not_pair_are_compared_unpaired():
    estimate, low, high, df = t_interval([(np.array([0.8, 0.82, 0.84]), 1.0),
                                          (np.array([0.6, 0.7]), -1.0)])
    assert estimate == pytest.approx(0.82 - 0.65)
    assert low < estimate < high and df > 1
    assert np.isnan(t_interval([(np.array([0.8]), 1.0)])[1])


def test_levels_rows_lead_and_within_x_is_a_description_without_interval():
    frame = table({0.8: ([(0.96, 0.96)], [(0.97, 0.97), (0.965, 0.96)]),
                   0.95: ([(0.80, 0.80)], [(0.82, 0.81), (0.79, 0.78)])},
                  {0.8: ([(0.95, 0.95)], [(0.94, 0.94), (0.95, 0.95)]),
                   0.95: ([(0.20, 0.20)], [(0.22, 0.21), (0.15, 0.16)])})
    comparison = compare_regimes(analyse(frame, n_boot=0))
    assert list(comparison["figure"][:2]) == ["kept_at_80", "kept_at_95"]
    assert comparison["headline"].tolist()[:2] == [True, True]
    within = comparison[comparison["figure"] == "removed_1pt"].iloc[0]
    assert not within["headline"] and np.isnan(within["ci_low"])
    assert within["verdict"].startswith("description: fine-tuned holds 80.0%")
    lines = headline_verdicts(comparison)
    assert lines[-1] == ("vgg16 on digits, in one line: fine-tuned clearly ahead at 95% "
                         "removed; no clear difference at 80%")


@pytest.mark.parametrize("scenario", ["identical", "gap grows"])
def test_the_interval_covers_the_truth_on_simulated_searches(scenario):
    quick = verdict_coverage.QUICK  # the default command's design
    settings = type("Settings", (), {"levels": list(quick["levels"]), "trials": quick["trials"],
                                     "baselines": quick["baseline_seeds"],
                                     "confirm": quick["confirm"], "rho": 0.0,
                                     "replicates": 150})()
    rows = verdict_coverage.run_scenario(scenario, settings, np.random.default_rng(0))
    assert len(rows) == len(quick["levels"])
    for row in rows:
        assert row["replicates"] == 150
        assert row["coverage"] >= 0.88, row
        assert row["wrong_direction"] <= 0.04, row
