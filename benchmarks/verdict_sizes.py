"""How informative is the default command's verdict, for designs of about its size? Searches
simulated from the table of real trainings.

    python benchmarks/verdict_sizes.py [--searches 300] [--designs 5x1 4x1 6x1 3x2 4x2]
        [--levels 0.8 0.95] [--sampler tpe] [--first-run recipe sampler] [--json PATH]

A design ``RxN`` is R replicates per regime, each a study of one unpruned baseline and N runs
per level at ``--levels``, each level's first run the family's recipe or the sampler's
(``--first-run``, as the search's flag) (the quick preset's shape: ``python -m hpo_prune.search
--replicates R --trials 1+N*L``). Each replicate is the replay's levels study
(``benchmarks/replay.py``: the search's own space, sampler, design and choice of a level's
run), its runs drawn from the table's cells and seeds. As in the quick preset (no
confirmation seeds) the chosen run values itself (its own seed's test accuracy) and the
baseline's own test accuracy is the reference, so a collapse drawn by the sampler counts as
it would in the product. The two regimes of a replicate share the sampler seed and the seed
draws; replicates share nothing.

The verdict per level is the analysis's own (``analysis.levels.compare_level`` and
``adjust``: 80% primary, the other levels Holm-adjusted) over the R replicates. The table
stores no per-image test correctness, so that interval leaves out the test set's sampling;
the second set of columns adds it in quadrature, at the size the README's default run
measured (``--image-se``, points), with R - 1 degrees of freedom (a slight overstatement of
the width). A search is *informative* at a level when its interval excludes 0 or is at most
5 points wide on each side (issue's aim: in at least 80% of searches at 80% and 95%).

The truth these searches estimate, the expectation of D over the design, is approximated by
the mean D over every simulated replicate (``mean D``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from replay import SAMPLERS
from replay_levels import level_search
from replay_table import DEFAULT_TABLE, REGIMES, Table

# the test set's sampling (se of D, points) at the quick preset's levels, measured by the
# analysis of the README's --seed 0 run (5 replicates; comparison.csv, image_se)
IMAGE_SE = {0.8: 0.88, 0.95: 1.48}
HALF_WIDTH = 5.0  # points: an interval this narrow on each side is informative


def replicate(table, sampler: str, seed: int, levels: tuple, runs: int,
              first_run: str = "sampler") -> dict:
    """regime -> level -> (the chosen run's test accuracy, the reference's) for one
    replicate of the design: each value is its own run's, on the seed it drew."""
    out = {}
    for regime in REGIMES:
        found = level_search(table, sampler, regime, seed, levels, runs,
                             first_run=first_run)
        rows = {number: table.cells[key][s] for number, (key, s) in found.drawn.items()}
        reference = rows.get(0)  # the queued baseline is trial 0
        out[regime] = {level: (rows[t.number], reference)
                       for level, t in found.chosen(runs, levels).items()}
    return out


def arm(level: float, pair):
    """The analysis's view of one regime of one replicate at ``level``."""
    from analysis.levels import Arm, LevelValue

    if pair is None or pair[1] is None:
        return Arm(None, None, "no trained reference")
    run, reference = pair
    runs = pd.DataFrame([{"trial": 1, "seed": run["seed"], "val_acc": run["val_acc"],
                          "test_acc": run["test_acc"],
                          "remaining_fraction": run["remaining_fraction"]}])
    return Arm(LevelValue(level, 1, 1, runs, reference["test_acc"]),
               pd.DataFrame([{"test_acc": reference["test_acc"]}]))


def search(table, sampler: str, first_seed: int, levels: tuple, replicates: int,
           runs: int, image_se: dict, first_run: str = "sampler") -> list[dict]:
    """One simulated search: per level its verdict, with and without the image term."""
    from analysis.levels import adjust, compare_level

    found = [replicate(table, sampler, first_seed + r, levels, runs, first_run)
             for r in range(replicates)]
    comparisons = [compare_level(level, [(f"r{r}", arm(level, rep["pretrained"].get(level)),
                                          arm(level, rep["scratch"].get(level)))
                                         for r, rep in enumerate(found)])
                   for level in levels]
    adjust(comparisons)
    out = []
    for c in comparisons:
        half = wide = np.nan
        if np.isfinite(c.low):  # a verdict (2+ replicates, some spread)
            half = (c.high - c.low) / 2 * 100
            # the image term added in quadrature, at the level's confidence (Holm's step)
            t = stats.t.ppf(0.5 + c.confidence / 2, c.n_replicates - 1)
            wide = t * np.hypot(c.replicate_se * 100, image_se.get(c.level, 0.0))
        d = c.difference * 100
        out.append({"level": c.level, "d": d, "half": half, "named": c.named,
                    "half_images": wide,
                    "named_images": ("neither" if not np.isfinite(wide) or abs(d) <= wide
                                     else "fine-tuned" if d > 0 else "scratch")})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    p.add_argument("--searches", type=int, default=300)
    p.add_argument("--designs", nargs="+", default=["5x1", "4x1", "6x1", "3x2", "4x2"],
                   help="RxN: R replicates of one baseline and N runs per level")
    p.add_argument("--levels", nargs="+", type=float, default=[0.8, 0.95])
    p.add_argument("--sampler", default="tpe", choices=SAMPLERS)
    p.add_argument("--first-run", nargs="+", default=["recipe", "sampler"],
                   choices=("recipe", "sampler"), help="each level's first run, as the "
                   "search's --first-run; each one given is simulated (default: both)")
    p.add_argument("--image-se", nargs="+", type=float, default=None,
                   help="the test set's sampling per level (se of D, points; default: "
                   "the README run's, 0.88 at 0.8 and 1.48 at 0.95)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    started = time.perf_counter()
    table = Table.read(args.table)
    levels = tuple(args.levels)
    image_se = (dict(zip(levels, args.image_se)) if args.image_se else IMAGE_SE)
    designs = []
    for text in args.designs:
        try:
            r, n = (int(x) for x in text.lower().split("x"))
        except ValueError:
            print(f"error: --designs {text!r}: write RxN, e.g. 5x1", file=sys.stderr)
            return 2
        designs.append((r, n))
    print(f"table {args.table.name}: {len(table.frame)} trainings; {args.searches} simulated "
          f"searches per design; levels {' '.join(f'{x:g}' for x in levels)}; sampler "
          f"{args.sampler}", flush=True)
    print("\n| design | first run | trainings | level | mean D | informative | named | mean "
          "half-width "
          "| informative, images counted | named, images counted | mean half-width, images "
          "counted |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for (r, n), first_run in [(d, f) for d in designs for f in args.first_run]:
        results = [search(table, args.sampler, 1_000 * s + 10 * r + n, levels, r, n, image_se,
                          first_run) for s in range(args.searches)]
        for i, level in enumerate(levels):
            part = pd.DataFrame([res[i] for res in results])
            named = part["named"].isin(["fine-tuned", "scratch"])
            named_images = part["named_images"].isin(["fine-tuned", "scratch"])
            row = {"design": f"{r}x{n}", "first_run": first_run, "replicates": r,
                   "runs_per_level": n,
                   "trainings": 2 * r * (1 + n * len(levels)), "level": level,
                   "mean_difference": float(part["d"].mean()),
                   "informative": float((named | (part["half"] <= HALF_WIDTH)).mean()),
                   "named": float(named.mean()),
                   "named_fine_tuned": float((part["named"] == "fine-tuned").mean()),
                   "named_scratch": float((part["named"] == "scratch").mean()),
                   "half_width": float(part["half"].mean()),
                   "informative_images": float((named_images
                                                | (part["half_images"] <= HALF_WIDTH)).mean()),
                   "named_images": float(named_images.mean()),
                   "half_width_images": float(part["half_images"].mean())}
            rows.append(row)
            print(f"| {row['design']} | {first_run} | {row['trainings']} | {level:g} | "
                  f"{row['mean_difference']:+.1f} | {row['informative']:.2f} | "
                  f"{row['named']:.2f} | {row['half_width']:.1f} | "
                  f"{row['informative_images']:.2f} | {row['named_images']:.2f} | "
                  f"{row['half_width_images']:.1f} |", flush=True)
    print(f"\n({time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"table": args.table.name, "searches": args.searches,
                                         "sampler": args.sampler, "image_se": image_se,
                                         "designs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
