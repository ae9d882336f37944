"""Pruning levels: the design that answers the question at fixed fractions of weights removed.

A search with levels (``--levels 0.8 0.9 0.95``) gives every pruned trial one of the levels as
its ``prune_ratio``; the sampler chooses everything else (learning rate, schedule, ...). The
rules below are the design's, in one place: the search assigns and confirms by them, the
analysis reads the runs back by them.

- **Assignment.** The n-th pruned main trial of a study (n = 0, 1, ... in the order the study
  asks them; a trial interrupted and queued again keeps its place) gets the level with the
  fewest runs that did not fail, ties to the level listed first: round robin in the order
  given, the same in both regimes' studies. Its trial seed is ``seed + baselines + n``, so at
  a level the k-th run of both regimes uses the same seed (the same init draw and data order).
- **The first run.** With ``--first-run recipe`` each level's first search run is the model
  family's recipe (the learning rate and schedule a trial runs when none is sampled; a failed
  one is retried as the recipe); the sampler draws the later runs. With one run per level the
  design is "no tuning"; with n it is the recipe and n - 1 sampled runs, the best on val
  chosen. With ``--first-run sampler`` the sampler draws every run.
- **Choosing and valuing.** Once a level's search runs have all ended, the run with the best
  *val* accuracy is its configuration (ties: the lower trial number); it is re-run on
  ``--confirm`` K fresh seeds ``seed + FRESH_OFFSET * (i + 1) + j`` (i the level's index, j = 1
  .. K), the same seeds in both regimes. The level's accuracy is the mean over the fresh runs
  only: the run that chose is not counted (it was the luckiest of the level's runs), except
  where the level had a single run, which chose nothing and counts with its fresh runs.
  Val chooses, test is reported.
- **Replicates.** ``--replicates R`` runs the whole pipeline above R times per regime, each
  replicate in its own studies (one per regime) with its own baselines, sampler seed and trial
  seeds: replicate r (1 .. R) of a search with ``--seed S`` draws every seed from the block
  ``BLOCK * (S * R + r)`` .. + BLOCK - 1 (its base seed is the block's start, the seeds
  above are offsets from it). Both regimes of a replicate share the block (the pairing);
  replicates share nothing. Block 0 (seeds 0 .. BLOCK - 1) is never used: it holds the seeds
  the recipe sweeps chose the defaults on (``benchmarks/lr_sweep.py`` uses 0 .. 5), and the
  searches ``--seed 0, 1, 2`` of the same R use disjoint blocks, so they pool
  (``python -m analysis --results A B C``). The verdict's unit is the replicate
  (``analysis.levels``).
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

__all__ = ["LEVEL", "REPLICATE", "FRESH_OFFSET", "BLOCK", "PRIMARY", "check_levels",
           "check_replicates", "next_level", "search_seed", "fresh_seed", "replicate_seed",
           "planned_runs", "choose", "percent", "figure_name", "FIRST_RUNS"]

LEVEL = "level"  # the user attribute / trials.csv column holding a run's assigned level
REPLICATE = "replicate"  # the study attribute / trials.csv column: its replicate, 1 .. R
FRESH_OFFSET = 1000  # fresh seeds of level i: seed + FRESH_OFFSET * (i + 1) + 1 .. + K
BLOCK = 100_000  # seeds of one replicate (more than FRESH_OFFSET * (levels + 1) + K)
FIRST_RUNS = ("recipe", "sampler")  # --first-run: each level's first run, recipe or sampled
PRIMARY = 0.8  # the pre-specified primary level (the reference study's); others: Holm


def check_levels(levels: Sequence[float], pruned_trials: int, sampler: str, confirm: int
                 ) -> tuple[float, ...]:
    """The levels as a tuple, or a UsageError naming the value and what is accepted."""
    from .errors import UsageError

    for level in levels:
        if not (math.isfinite(level) and 0 < level < 1):
            raise UsageError(f"--levels {level:g} is not a fraction of weights removed: give "
                             "values in (0, 1), e.g. --levels 0.5 0.8 0.9 0.95, or --levels "
                             "none")
    repeated = sorted({x for x in levels if list(levels).count(x) > 1})
    if repeated:
        raise UsageError(f"--levels lists {repeated[0]:g} twice: list each level once")
    if sampler == "grid":
        raise UsageError("--levels does not apply to --sampler grid (the grid fixes its own "
                         "ratios): pass --levels none, or another --sampler")
    if confirm < 1 and pruned_trials > len(levels):
        raise UsageError(f"--confirm {confirm} with {pruned_trials} pruned trials for "
                         f"{len(levels)} level(s): the best of a level's runs would value "
                         "itself (the luckiest run); pass --confirm 2 or more, or --trials "
                         "leaving one pruned trial per level")
    if len(levels) > pruned_trials:
        raise UsageError(f"--levels gives {len(levels)} levels but --trials leaves "
                         f"{max(pruned_trials, 0)} pruned trial(s) per study once the "
                         "baselines are run: raise --trials to at least the baselines plus "
                         "one per level, or give fewer levels")
    return tuple(float(x) for x in levels)


def check_replicates(replicates: int, levels: Sequence[float], sampler: str, seed: int) -> int:
    """The replicate count, or a UsageError naming the value and what is accepted."""
    from .errors import UsageError

    if replicates < 1:
        raise UsageError(f"--replicates {replicates} is not a count: give 1 or more (each "
                         "replicate runs the whole level design once more per regime)")
    if replicates > 1 and not levels:
        design = "--sampler grid" if sampler == "grid" else "--levels none"
        raise UsageError(f"--replicates {replicates} applies to the level design only, not "
                         f"to {design}: give --levels (e.g. --levels 0.8 0.95) or drop "
                         "--replicates")
    if levels and seed < 0:
        raise UsageError(f"--seed {seed} is negative: a level design draws its seeds from "
                         "blocks numbered from the seed; give 0 or more")
    return replicates


def replicate_seed(seed: int, replicates: int, replicate: int) -> int:
    """The base seed of replicate ``replicate`` (1 .. R) of a search with ``--seed seed`` and
    R replicates: the start of block seed * R + replicate (see the top)."""
    return BLOCK * (seed * replicates + replicate)


def next_level(levels: Sequence[float], runs: Iterable[float]) -> float:
    """The level of the next pruned trial: the one with the fewest ``runs`` (the levels of the
    study's pruned main trials that did not fail), ties to the level listed first."""
    counts = {level: 0 for level in levels}
    for level in runs:
        if level in counts:
            counts[level] += 1
    return min(levels, key=lambda level: (counts[level], list(levels).index(level)))


def search_seed(seed: int, baselines: int, n: int) -> int:
    """The trial seed of the n-th pruned main trial (after the baselines' seed .. + B - 1)."""
    return seed + baselines + n


def fresh_seed(seed: int, index: int, j: int) -> int:
    """The j-th (1-based) fresh seed of the level at ``index``: never a search run's seed (a
    search has fewer than FRESH_OFFSET trials per study)."""
    return seed + FRESH_OFFSET * (index + 1) + j


def planned_runs(levels: Sequence[float], pruned_trials: int) -> dict[float, int]:
    """Search runs each level gets when ``pruned_trials`` are assigned round robin."""
    count = len(levels)
    return {level: pruned_trials // count + (1 if i < pruned_trials % count else 0)
            for i, level in enumerate(levels)}


def choose(runs: Iterable[tuple[int, float]]) -> int | None:
    """The trial number of the best (trial number, val accuracy) pair: highest val, ties to
    the lower number; None when there is none."""
    runs = [(number, val) for number, val in runs if val is not None and math.isfinite(val)]
    if not runs:
        return None
    return min(runs, key=lambda r: (-r[1], r[0]))[0]


def percent(level: float) -> str:
    """A level as a percentage without trailing zeros: 0.9 -> '90', 0.875 -> '87.5'."""
    return f"{round(100 * level, 6):g}"


KEPT_AT = "kept_at_"  # the prefix of a level's figure (comparison.csv) and column (summary.csv)


def figure_name(level: float) -> str:
    """comparison.csv's figure of a level: 'kept_at_90'."""
    return f"{KEPT_AT}{percent(level)}"
