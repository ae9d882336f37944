"""Does the per-level verdict's 95% interval cover the truth? Simulated searches of the level
design, with a known truth, through the analysis unchanged.

    python benchmarks/verdict_coverage.py [--quick] [--replicates 1000] [--json PATH]
        [--levels 0.8 0.95] [--trials 5] [--baselines 3] [--confirm 3] [--rho 0]

Each replicate is one search of the design ``python -m hpo_prune.search`` runs (the quick
preset's by default): per regime ``--baselines`` unpruned runs (seeds 0 .. B-1), the pruned
trials assigned to the levels round robin with the seeds ``levels.search_seed``, each level's
best run on val re-run on ``--confirm`` fresh seeds (``levels.fresh_seed``). A run is a model
whose true accuracy is the scenario's curve of its regime at its level, plus a configuration
effect (its sampled lr and schedule; normal, drawn per regime and configuration) and a seed
effect (normal; correlated ``--rho`` between the two regimes' runs of one seed), held between
chance and 100%. Its test accuracy is that accuracy on the test split's 360 images (the seed
spreads below are spreads of test accuracy measured over seeds, so they already hold the
test split's own sampling), its val accuracy a binomial draw on the 288 val images (val
chooses with that much extra noise). The trials table goes through ``analysis.analyse`` and
``analysis.compare_regimes`` as the report does.

The truth at a level is what the interval estimates: the true accuracy of the configuration
each regime chose, minus its true reference accuracy, fine-tuned minus scratch. Printed per
scenario and level: ``coverage`` (share of 95% intervals holding the truth; target >= 0.90),
``wrong_direction`` (share of verdicts naming the regime that is in truth behind, or either
regime when the truth is exactly 0; target <= 0.025), ``named`` (share of verdicts naming a
regime at all), ``half_width`` (mean, points) and ``informative`` (share that exclude 0 or are
at most 5 points wide on each side). ``--json PATH`` writes ``{"scenarios": [{"name", "level",
"coverage", "wrong_direction", "half_width", ...}]}``.

Scenarios (test accuracy at 0% and at 80 / 90 / 95% of the weights removed, per regime; seed
spread per level in points) are in SCENARIOS: identical regimes; a gap that grows with
pruning; a cliff at a different level for each regime; and the curves measured on digits by
the default command (README).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np
import pandas as pd

from analysis import analyse
from analysis.compare import compare_regimes
from hpo_prune.levels import fresh_seed, next_level, search_seed
from hpo_prune.objectives import FINE_TUNED, SCRATCH
from hpo_prune.search.cli import PRESETS

QUICK = PRESETS["quick"]  # the design simulated by default: the README's main command's

VAL_IMAGES, TEST_IMAGES, CHANCE = 288, 360, 0.10
# name -> {regime: {level: mean accuracy}}, {level: seed sd (points)}, {level: config sd}
SCENARIOS = {
    "identical": ({FINE_TUNED: {0: .970, .8: .950, .9: .880, .95: .600},
                   SCRATCH: {0: .970, .8: .950, .9: .880, .95: .600}},
                  {0: 0.6, .8: 1.0, .9: 3.0, .95: 8.0}, {.8: 0.5, .9: 2.0, .95: 5.0}),
    "gap grows": ({FINE_TUNED: {0: .975, .8: .965, .9: .930, .95: .820},
                   SCRATCH: {0: .965, .8: .940, .9: .860, .95: .550}},
                  {0: 0.6, .8: 1.0, .9: 3.0, .95: 8.0}, {.8: 0.5, .9: 2.0, .95: 5.0}),
    "cliffs": ({FINE_TUNED: {0: .970, .8: .960, .9: .940, .95: .300},
                SCRATCH: {0: .965, .8: .950, .9: .250, .95: .120}},
               {0: 0.6, .8: 1.0, .9: 10.0, .95: 10.0}, {.8: 0.5, .9: 5.0, .95: 5.0}),
    "identical, collapses": ({FINE_TUNED: {0: .970, .8: .950, .9: .880, .95: .700},
                              SCRATCH: {0: .970, .8: .950, .9: .880, .95: .700}},
                             {0: 0.6, .8: 1.0, .9: 3.0, .95: 8.0}, {.8: 0.5, .9: 2.0, .95: 5.0},
                             {FINE_TUNED: {0: 0, .8: 0, .9: .3, .95: .4},
                              SCRATCH: {0: 0, .8: 0, .9: .3, .95: .4}}),
    # the default command's seeds 0-2 (README): means over their runs, seed sd within a run
    "digits": ({FINE_TUNED: {0: .972, .8: .942, .95: .743},
                SCRATCH: {0: .982, .8: .918, .95: .330}},
               {0: 0.3, .8: 1.4, .95: 9.3}, {.8: 1.0, .95: 8.0}),
}


def _interp(points: dict, level: float) -> float:
    xs = sorted(points)
    return float(np.interp(level, xs, [points[x] for x in xs]))


def _collapse(scenario: tuple, regime: str, level: float) -> float:
    """The chance that one run of the regime at the level stays at chance (a seed's collapse)."""
    return _interp(scenario[3][regime], level) if len(scenario) > 3 else 0.0


def simulate(scenario: tuple, args, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """One search's trials table and the true difference per level."""
    curves, seed_sd, config_sd = scenario[:3]
    levels, b = tuple(args.levels), args.baselines
    assigned = []
    for _ in range(args.trials - b):
        assigned.append(next_level(levels, assigned))
    z = {}

    def seed_effect(seed: int, regime: str, level: float) -> float:
        if seed not in z:
            shared = rng.standard_normal()
            own = rng.standard_normal(2)
            z[seed] = [np.sqrt(args.rho) * shared + np.sqrt(1 - args.rho) * o for o in own]
        k = 0 if regime == FINE_TUNED else 1
        return z[seed][k] * _interp(seed_sd, level) / 100

    rows, truth = [], {}
    for regime in (FINE_TUNED, SCRATCH):
        study = f"sim.vgg16.digits.{regime}"
        number = 0

        def run(ratio: float, seed: int, effect: float, **extra) -> dict:
            nonlocal number
            true = np.clip(_interp(curves[regime], ratio) + effect
                           + seed_effect(seed, regime, ratio), CHANCE, 1.0)
            if rng.random() < _collapse(scenario, regime, ratio):
                true = CHANCE
            row = {"study": study, "trial": number, "state": "COMPLETE", "model": "vgg16",
                   "dataset": "digits", "regime": regime, "seed": seed,
                   "prune_ratio": ratio, "remaining_fraction": 1 - 0.9995 * ratio,
                   "val_acc": rng.binomial(VAL_IMAGES, true) / VAL_IMAGES,
                   "test_acc": np.round(true * TEST_IMAGES) / TEST_IMAGES,
                   "baseline": ratio == 0, "confirms": None, "level": None, **extra}
            number += 1
            rows.append(row)
            return row

        for k in range(b):
            run(0.0, k, 0.0)
        effects = {}
        for n, level in enumerate(assigned):
            effect = rng.normal(0, _interp(config_sd, level) / 100)
            row = run(level, search_seed(0, b, n), effect, level=level)
            effects[row["trial"]] = effect
        true_kept = {}
        for i, level in enumerate(levels):
            search = [r for r in rows if r["study"] == study and r["level"] == level]
            chosen = min(search, key=lambda r: (-r["val_acc"], r["trial"]))
            for j in range(1, args.confirm + 1):
                run(level, fresh_seed(0, i, j), effects[chosen["trial"]],
                    level=level, confirms=chosen["trial"])
            p = _collapse(scenario, regime, level)  # the expected accuracy over seeds
            true_kept[level] = ((1 - p) * np.clip(_interp(curves[regime], level)
                                                  + effects[chosen["trial"]], CHANCE, 1.0)
                                + p * CHANCE - _interp(curves[regime], 0))
        truth[regime] = true_kept
    table = pd.DataFrame(rows)
    table["confirms"] = table["confirms"].astype("Int64")
    return table, {level: truth[FINE_TUNED][level] - truth[SCRATCH][level] for level in levels}


def run_scenario(name: str, args, rng) -> list[dict]:
    found: dict[float, list] = {level: [] for level in args.levels}
    for _ in range(args.replicates):
        table, truth = simulate(SCENARIOS[name], args, rng)
        comparison = compare_regimes(analyse(table, n_boot=0))
        for _, row in comparison[comparison["figure"].str.startswith("kept_at_")].iterrows():
            found[row["level"]].append((truth[row["level"]], row["difference"], row["ci_low"],
                                        row["ci_high"]))
    out = []
    for level, hits in found.items():
        t, d, low, high = (np.array(x, dtype=float) for x in zip(*hits))
        valid = np.isfinite(low)
        t, d, low, high = t[valid], d[valid], low[valid], high[valid]
        named_pre, named_scr = low > 0, high < 0
        wrong = (named_pre & (t <= 0)) | (named_scr & (t >= 0))
        half = (high - low) / 2
        out.append({"name": name, "level": level, "replicates": int(valid.sum()),
                    "coverage": float(np.mean((low <= t) & (t <= high))),
                    "wrong_direction": float(np.mean(wrong)),
                    "named": float(np.mean(named_pre | named_scr)),
                    "half_width": float(100 * half.mean()),
                    "informative": float(np.mean(named_pre | named_scr | (half <= 0.05))),
                    "true_difference": float(100 * t.mean()),
                    "mean_difference": float(100 * d.mean())})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="200 replicates per scenario (a few minutes on 2 cores)")
    p.add_argument("--replicates", type=int, default=1000)
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    p.add_argument("--levels", nargs="+", type=float, default=list(QUICK["levels"]))
    p.add_argument("--trials", type=int, default=QUICK["trials"],
                   help="per study, the baselines included (default: the quick preset's)")
    p.add_argument("--baselines", type=int, default=QUICK["baseline_seeds"])
    p.add_argument("--confirm", type=int, default=QUICK["confirm"])
    p.add_argument("--rho", type=float, default=0.0,
                   help="correlation of one seed's effect between the regimes (default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the table as JSON here")
    args = p.parse_args(argv)
    if args.quick:
        args.replicates = 200
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    results = []
    print(f"{args.replicates} simulated searches per scenario: {args.trials} trials per study "
          f"({args.baselines} baselines), levels {' '.join(map(str, args.levels))}, "
          f"{args.confirm} fresh seeds, rho {args.rho}")
    print("| scenario | level | coverage (>= 0.90) | wrong direction (<= 0.025) | named | "
          "half-width (pts) | informative | true difference (pts) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.scenarios:
        for r in run_scenario(name, args, rng):
            results.append(r)
            print(f"| {name} | {100 * r['level']:g}% | {r['coverage']:.3f} | "
                  f"{r['wrong_direction']:.3f} | {r['named']:.3f} | {r['half_width']:.1f} | "
                  f"{r['informative']:.2f} | {r['true_difference']:+.1f} |", flush=True)
    print(f"({time.perf_counter() - started:.0f}s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"scenarios": results, "settings": {
                k: v for k, v in vars(args).items() if k != "json"}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
