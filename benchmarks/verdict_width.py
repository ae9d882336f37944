"""How many trials does a verdict of +-10 points need? The analysis' own interval, on simulated
searches.

    python benchmarks/verdict_width.py [--configs 5 8 12 16 24] [--replicates 40]
        [--seed-sd 0.5] [--config-sd 0.5] [--val-images 288] [--design uniform|stratified]
        [--ratio-low 0] [--ratio-high 0.95] [--baselines 3] [--confirm 1]

Each replicate is one simulated search of the quick preset's design: per regime 3 unpruned
baselines (--baselines), N sampled configurations whose pruning ratios are uniform on [0, 0.95]
(see --design) and shared by both studies (one sampler seed), one confirmation run (--confirm)
of every main-front configuration that did not stay at chance. A run's val accuracy is the regime's accuracy
curve at its removed fraction, plus a configuration effect (its lr and schedule: normal,
--config-sd points, the same quantile in both studies) and seed noise (normal, --seed-sd
points), rounded to whole val images. The trials table goes through ``analysis.analyse`` and
``analysis.compare_regimes`` unchanged, so the figures are those of the report's headline
("removed within 1 point", fine-tuned minus scratch, its 95% bootstrap interval).

The curves (--pretrained / --scratch, "removed:val" points, linear between them) default to val
accuracies measured on digits: the default command's seed-0 run (unpruned, 52% and 92% removed;
README, The default command) and benchmarks/lr_sweep.py's 80% AGP runs (docs/training.md); the 0.95 points are guesses below the 92% ones. The seed noise default is the spread
of the baselines' val accuracy over seeds (0.0-0.9 points, six studies). The true difference is
the distance between the curves' own 1-point crossings.

Printed per N: the headline difference's mean and spread over replicates, the interval's mean
distance below and above the estimate, the share of replicates whose interval is within 10
points on each side (the goal for the default command), and the share that covers the true
difference.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from analysis import analyse
from analysis.compare import compare_regimes
from hpo_prune.objectives import FINE_TUNED, SCRATCH, at_chance, non_dominated

PRETRAINED = "0:0.972 0.52:0.967 0.8:0.964 0.92:0.68 0.95:0.40"
SCRATCH_CURVE = "0:0.963 0.52:0.965 0.8:0.943 0.92:0.23 0.95:0.15"
TOLERANCE = 0.01
DATASET = "digits"


def curve(points: str):
    pairs = sorted(tuple(map(float, p.split(":"))) for p in points.split())
    x, y = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    return lambda removed: np.interp(removed, x, y)


def crossing(acc, tolerance: float = TOLERANCE) -> float:
    grid = np.linspace(0.0, 0.95, 9501)
    return float(grid[acc(grid) >= acc(0.0) - tolerance - 1e-12].max())


def study_rows(regime: str, acc, ratios, effects, args, rng) -> list[dict]:
    def run(trial, ratio, effect, seed, confirms=None):
        val = acc(ratio) + effect + rng.normal(0.0, args.seed_sd / 100)
        val = float(np.clip(np.round(val * args.val_images), 0, args.val_images)
                    / args.val_images)
        return {"study": f"sim.{regime}", "trial": trial, "state": "COMPLETE",
                "baseline": trial < args.baselines, "confirms": confirms, "regime": regime,
                "model": "vgg16", "dataset": DATASET, "val_acc": val, "test_acc": val,
                "remaining_fraction": 1.0 - ratio, "seed": seed}

    baselines = args.baselines
    rows = [run(t, 0.0, 0.0, t) for t in range(baselines)]
    rows += [run(baselines + k, r, e, 0) for k, (r, e) in enumerate(zip(ratios, effects))]
    points = np.array([[r["val_acc"], r["remaining_fraction"]] for r in rows])
    front = non_dominated(points)
    trained = not at_chance(float(np.mean(points[:baselines, 0])), DATASET)
    number = len(rows)
    for i in np.flatnonzero(front):
        if rows[i]["baseline"] or (trained and at_chance(rows[i]["val_acc"], DATASET)):
            continue
        k = i - baselines
        for seed in range(1, args.confirm + 1):
            rows.append(run(number, ratios[k], effects[k], seed, confirms=i))
            number += 1
    return rows


def sample_ratios(n: int, args, rng) -> np.ndarray:
    """``uniform`` on [--ratio-low, --ratio-high] (TPE's start-up trials), or ``stratified``:
    one uniform draw in each of n equal bins (a 1-d Latin hypercube)."""
    u = rng.uniform(0.0, 1.0, n)
    if args.design == "stratified":
        u = rng.permutation((np.arange(n) + u) / n)
    return args.ratio_low + (args.ratio_high - args.ratio_low) * u


def replicate(n: int, curves, args, rng) -> tuple[float, float, float, int]:
    ratios = sample_ratios(n, args, rng)
    effects = rng.normal(0.0, args.config_sd / 100, n)
    rows = []
    for regime, acc in curves.items():
        rows += study_rows(regime, acc, ratios, effects, args, rng)
    table = pd.DataFrame(rows)
    comparison = compare_regimes(analyse(table, n_boot=args.n_boot))
    head = comparison[comparison["headline"]].iloc[0]
    return float(head["difference"]), float(head["ci_low"]), float(head["ci_high"]), len(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", type=int, nargs="+", default=[5, 8, 12, 16, 24],
                   help="sampled configurations per study (the quick preset: 5)")
    p.add_argument("--replicates", type=int, default=40, help="simulated searches per row")
    p.add_argument("--seed-sd", type=float, default=0.5, help="seed noise of val accuracy, "
                   "points")
    p.add_argument("--config-sd", type=float, default=0.5, help="configuration effect (lr, "
                   "schedule) on val accuracy, points")
    p.add_argument("--val-images", type=int, default=288)
    p.add_argument("--baselines", type=int, default=3, help="unpruned baselines per study "
                   "(the search's --baseline-seeds: 3)")
    p.add_argument("--confirm", type=int, default=1, help="extra seeds per front "
                   "configuration (the search's --confirm: 1)")
    p.add_argument("--design", choices=("uniform", "stratified"), default="uniform",
                   help="how the pruning ratios are drawn (the search's TPE: uniform)")
    p.add_argument("--ratio-low", type=float, default=0.0, help="(vgg.yaml: 0)")
    p.add_argument("--ratio-high", type=float, default=0.95, help="(vgg.yaml: 0.95)")
    p.add_argument("--pretrained", default=PRETRAINED, help="'removed:val ...' points")
    p.add_argument("--scratch", default=SCRATCH_CURVE, help="'removed:val ...' points")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    curves = {FINE_TUNED: curve(args.pretrained), SCRATCH: curve(args.scratch)}
    truth = crossing(curves[FINE_TUNED]) - crossing(curves[SCRATCH])
    print(f"true difference of the 1-point crossings: {100 * truth:+.1f} points "
          f"({args.replicates} simulated searches per row, {args.design} pruning ratios in "
          f"[{args.ratio_low}, {args.ratio_high}], seed sd {args.seed_sd} pt, config sd "
          f"{args.config_sd} pt, {args.val_images} val images, {args.baselines} baselines, "
          f"{args.confirm} confirmation seeds per front configuration)")
    print("| configurations per study | trials per study | difference, mean +- sd over "
          "searches | interval below / above the estimate (mean) | within 10 each side | "
          "covers the truth |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(args.seed)
    for n in args.configs:
        started = time.perf_counter()
        out = np.array([replicate(n, curves, args, rng) for _ in range(args.replicates)])
        diff, low, high, count = out.T
        within = np.mean((diff - low <= 0.1 + 1e-9) & (high - diff <= 0.1 + 1e-9))
        covers = np.mean((low <= truth + 1e-9) & (truth <= high + 1e-9))
        print(f"| {n} | {count.mean() / 2:.1f} | {100 * diff.mean():+.1f} +- "
              f"{100 * diff.std(ddof=1):.1f} | -{100 * (diff - low).mean():.1f} / "
              f"+{100 * (high - diff).mean():.1f} | {within:.0%} | {covers:.0%} |", flush=True)
        print(f"  ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
