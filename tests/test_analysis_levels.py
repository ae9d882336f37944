"""The level design's analysis (``analysis.levels``): each level chosen on the val accuracy of
its search runs and valued on its fresh-seed runs only, the accuracy kept, the interval of
fine-tuned minus scratch over replicates and test images, the failed-run rule, Holm, the
per-level rows and verdicts, and the interval's coverage on simulated searches with a known
truth (a small fixed-seed run of ``benchmarks/verdict_coverage.py``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import analyse
from analysis.compare import compare_regimes, headline_verdicts
from analysis.levels import LevelComparison, adjust, estimand
from analysis.__main__ import main as analysis_main
from hpo_prune.levels import fresh_seed
from hpo_prune.objectives import pack_correct
from hpo_prune.results.search_record import SearchRecord

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import verdict_coverage  # noqa: E402
from helpers import replicated_search  # noqa: E402


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


def replicated(kept_diffs, level=0.9, correct=None, dropped=()) -> pd.DataFrame:
    """A replicated search: replicate r's fine-tuned run at ``level`` scores 0.60 +
    kept_diffs[r] test, scratch 0.60, both references 0.95 (one baseline each); ``correct``:
    per replicate, the four runs' per-image correctness (fine-tuned level, fine-tuned
    baseline, scratch level, scratch baseline); ``dropped``: (replicate, regime) whose level
    run failed."""
    rows = []
    for r, diff in enumerate(kept_diffs, start=1):
        for k, regime in enumerate(("pretrained", "scratch")):
            name = f"s.r{r}.vgg16.digits.{regime}"
            level_test = 0.60 + diff * (k == 0)
            base = run(name, 0, 100_000 * r, 0.95, 0.95, regime=regime)
            lev = run(name, 1, 100_000 * r + 1, level_test, level_test, level, regime=regime)
            if (r, regime) in dropped:
                lev.update(state="FAIL", val_acc=None, test_acc=None)
            for i, row in enumerate((lev, base)):
                row["replicate"] = r
                if correct is not None:
                    bits = np.asarray(correct[r - 1][2 * k + i], dtype=bool)
                    row.update(test_correct=pack_correct(bits), test_images=len(bits),
                               test_acc=bits.mean())
            rows += [base, lev]
    frame = pd.DataFrame(rows)
    frame["confirms"] = frame["confirms"].astype("Int64")
    return frame


def test_the_interval_is_over_replicates_and_says_the_test_images_are_not_counted():
    d = np.array([0.18, 0.22, 0.20, 0.25])
    row = compare_regimes(analyse(replicated(d), n_boot=0)).iloc[0]
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert row["figure"] == "kept_at_90" and bool(row["headline"])
    assert row["difference"] == pytest.approx(d.mean())
    assert row["raw_difference"] == pytest.approx(d.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert row["df"] == pytest.approx(3) and row["n_pairs"] == 4
    assert row["method"] == "replicates t" and row["named"] == "fine-tuned"
    assert row["pretrained"] == pytest.approx(0.60 + d.mean() - 0.95)
    assert row["verdict"].startswith("at 90% removed, fine-tuned keeps 21.3 points more")
    assert "95% CI" in row["verdict"] and "4 replicates" in row["verdict"]
    assert row["verdict"].endswith("the test set's sampling is not counted: some runs lack "
                                   "their per-image test correctness")


def test_the_test_images_sampling_is_added_to_the_replicates_spread():
    rng = np.random.default_rng(0)
    images = 40
    correct = [[rng.random(images) < p for p in (0.9, 0.95, 0.6, 0.95)] for _ in range(3)]
    row = compare_regimes(analyse(replicated([0, 0, 0], correct=correct), n_boot=0)).iloc[0]
    per = [(c[0].astype(float) - c[1]) - (c[2].astype(float) - c[3]) for c in correct]
    kept = np.array([x.mean() for x in per])
    d = np.mean(per, axis=0)  # the per-image score of the mean over replicates
    between, within = kept.var(ddof=1) / 3, d.var(ddof=1) / images
    df = (between + within) ** 2 / (between ** 2 / 2 + within ** 2 / (images - 1))
    half = stats.t.ppf(0.975, df) * np.sqrt(between + within)
    assert row["difference"] == pytest.approx(kept.mean())
    assert row["image_se"] == pytest.approx(np.sqrt(within))
    assert row["replicate_se"] == pytest.approx(np.sqrt(between))
    assert row["df"] == pytest.approx(df)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((kept.mean() - half,
                                                              kept.mean() + half))


def test_a_replicate_whose_run_failed_is_dropped_from_both_regimes_and_listed():
    frame = replicated([0.10, 0.12, 0.50], dropped={(3, "scratch")})
    row = compare_regimes(analyse(frame, n_boot=0)).iloc[0]
    assert row["n_pairs"] == 2 and row["difference"] == pytest.approx(0.11)
    assert row["pretrained"] == pytest.approx(0.60 + 0.11 - 0.95)  # replicate 3 left out
    assert row["dropped"] == "s.r3: scratch: no valued run at the level"
    assert "1 dropped" in row["verdict"]


@pytest.mark.parametrize("diffs, why", [([0.2], "1 replicate(s) valued the level"),
                                        ([0.2, 0.2, 0.2], "zero variance")])
def test_a_degenerate_interval_is_never_a_verdict(diffs, why):
    row = compare_regimes(analyse(replicated(diffs), n_boot=0)).iloc[0]
    assert np.isnan(row["ci_low"]) and row["named"] == ""
    assert why in row["verdict"] and "no verdict" in row["verdict"]
    lines = headline_verdicts(compare_regimes(analyse(replicated(diffs), n_boot=0)))
    assert lines[-1].endswith("no verdict at 90%")


def test_80_percent_is_primary_and_the_other_levels_are_holm_adjusted():
    def c(level, p):
        out = LevelComparison(level, 0.1, 0.1, np.nan, np.nan, 10.0, 4, p_value=p,
                              replicate_se=0.02)
        return out

    comparisons = [c(0.8, 0.04), c(0.5, 0.03), c(0.9, 0.01), c(0.95, 0.02)]
    adjust(comparisons)
    primary, half, ninety, most = comparisons
    assert primary.primary and primary.p_adjusted == 0.04 and primary.confidence == 0.95
    assert primary.named == "fine-tuned"
    # the other three, smallest p first: 3 x 0.01, max(that, 2 x 0.02), max(that, 0.03)
    assert ninety.p_adjusted == pytest.approx(0.03) and ninety.confidence == pytest.approx(
        1 - 0.05 / 3)
    assert most.p_adjusted == pytest.approx(0.04) and most.confidence == pytest.approx(0.975)
    assert half.p_adjusted == pytest.approx(0.04) and half.confidence == pytest.approx(0.95)
    t = stats.t.ppf(1 - 0.05 / 6, 10.0)
    assert (ninety.low, ninety.high) == pytest.approx((0.1 - t * 0.02, 0.1 + t * 0.02))
    # a level whose own p passes but whose Holm-adjusted p does not is not named
    late = [c(0.8, 0.5), c(0.9, 0.03), c(0.95, 0.04)]
    adjust(late)
    assert late[1].p_adjusted == pytest.approx(0.06) and late[1].named == "neither"


def test_the_estimand_is_stated_in_words():
    text = estimand(SearchRecord(levels=(0.8, 0.95), trials=3, baseline_seeds=1, confirm=0,
                                 replicates=4, sampler="tpe",
                                 settings={"source": "", "pretrain_seed": 0}))
    assert "tuned by 1 tpe run(s) per level" in text and "4 independent replicate(s)" in text
    assert "pre-training seed 0" in text and "80% is the primary level" in text
    assert estimand(SearchRecord(levels=())) == "" and estimand(None) == ""
    # --first-run recipe: one run per level is the recipe, more runs are the recipe + draws
    untuned = estimand(SearchRecord(levels=(0.8, 0.95), trials=3, replicates=5,
                                    first_run="recipe"))
    assert "trained with the model family's recipe at each level" in untuned
    tuned = estimand(SearchRecord(levels=(0.8, 0.95), trials=9, replicates=5,
                                  first_run="recipe"))
    assert "tuned by 4 run(s) per level, the family's recipe first, then the tpe" in tuned


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
    # one run of the design (no replicates) says nothing about the regimes
    assert comparison["verdict"][0].startswith("at 80% removed (primary): no verdict: 1 "
                                               "replicate(s)")
    lines = headline_verdicts(comparison)
    assert lines[-1] == "vgg16 on digits, in one line: no verdict at 80%, 95%"


def simulation(searches: int):
    quick = verdict_coverage.QUICK  # the default command's design
    return argparse.Namespace(levels=list(quick["levels"]), trials=quick["trials"],
                              baselines=quick["baseline_seeds"], confirm=quick["confirm"],
                              replicates=quick["replicates"], searches=searches)


def test_the_simulators_truth_is_the_pipelines_expectation_not_one_draw():
    args = simulation(1)
    scenarios = verdict_coverage.SCENARIOS
    # identical regimes: 0 exactly, whatever the configurations one search draws
    assert verdict_coverage.truth(scenarios["identical, config spread rho 0.5"], args) == {
        0.8: 0.0, 0.95: 0.0}
    # one run per level, no choice: the curves' difference (the configuration effect averages
    # out), up to the Monte Carlo error and the clipping at 100%
    gap = verdict_coverage.truth(scenarios["gap grows"], args)
    assert gap[0.8] == pytest.approx((0.965 - 0.975) - (0.940 - 0.965), abs=0.003)
    # simulating searches draws configurations; the truth does not move with them
    verdict_coverage.simulate(scenarios["gap grows"], args, np.random.default_rng(1))
    assert verdict_coverage.truth(scenarios["gap grows"], args) == gap


@pytest.mark.parametrize("scenario", ["identical, config spread", "gap grows"])
def test_the_interval_covers_the_truth_on_simulated_searches(scenario):
    rows = verdict_coverage.run_scenario(scenario, simulation(60), np.random.default_rng(0))
    assert len(rows) == len(verdict_coverage.QUICK["levels"])
    for row in rows:
        assert row["searches"] == 60
        assert row["coverage"] >= 0.88, row  # 0.95 nominal; 60 searches are noisy
        if row["true_difference"] == 0:  # identical regimes: 5% nominal
            assert row["named"] <= 0.10, row
        else:
            assert row["wrong_direction"] <= 0.04, row


def test_searches_of_one_design_pool_into_one_verdict(tmp_path, capsys):
    # three default-like runs, --seed 0, 1, 2 (the same --name in three results folders)
    dirs = [replicated_search(tmp_path / f"run{seed}" / "quick", seed) for seed in range(3)]
    code = analysis_main(["--results", *map(str, dirs), "--out", str(tmp_path / "pooled"),
                          "--no-optuna-pages", "--bootstrap", "100"])
    assert code == 0
    row = pd.read_csv(tmp_path / "pooled" / "comparison.csv").iloc[0]
    assert row["figure"] == "kept_at_90" and row["n_pairs"] == 6
    diffs = np.array([0.11, 0.12] * 3)  # gain + 0.01 * replicate, per search
    assert row["difference"] == pytest.approx(diffs.mean())
    half = stats.t.ppf(0.975, 5) * diffs.std(ddof=1) / np.sqrt(6)
    assert row["ci_high"] - row["difference"] == pytest.approx(half)
    out = capsys.readouterr().out
    assert "6 independent replicate(s)" in out


@pytest.mark.parametrize("second, message", [
    ({"seed": 0}, "share trial seed 100000"),
    ({"seed": 1, "trials": 3}, "differs from"),
    ({"seed": 1, "precision": "fp32"}, "in precision (fp32 vs bf16)")])
def test_searches_that_cannot_pool_are_refused(tmp_path, capsys, second, message):
    a = replicated_search(tmp_path / "a", 0)
    seed = second.pop("seed")
    settings = {"seed": seed, "precision": second.pop("precision", "bf16"), "source": "",
                "pretrain_seed": 0}
    b = replicated_search(tmp_path / "b", seed, settings=settings, **second)
    with pytest.raises(SystemExit) as exit_:
        analysis_main(["--results", str(a), str(b), "--out", str(tmp_path / "o"),
                       "--no-optuna-pages"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
