"""Fine-tuned (pretrained) minus scratch, per (model, dataset): the paper's question with
error bars.

A search with pruning levels (``analysis.levels``) is answered level by level: per level, the
accuracy each regime keeps (its level's test accuracy minus its reference's), their difference
and a paired t interval whose coverage ``benchmarks/verdict_coverage.py`` measures; these rows
(figure ``kept_at_P``) are the headline. The "removed within X points" figures are then a
description (the largest level each regime holds within X points on val), without interval.

A continuous search (``--levels none``) keeps the older figures: parameters removed within
0.5 / 1 / 2 points and the hypervolume, each with the percentiles of the differences of the
two studies' bootstrap replicates (each study resampled on its own, seeds included). That
interval's coverage is not established (70-93% for a nominal 95% in the README's simulation),
so it is called a bootstrap interval, not a 95% one. The verdict names a regime only when the
interval excludes 0; otherwise "no clear difference". When either study's unpruned reference
did not train (``reference.make_reference``), the figures measured against it say "not
meaningful" instead (the hypervolume, which does not use the reference, keeps its verdict).
The continuous design's headline verdict uses ``VERDICT_TOLERANCE``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from hpo_prune.levels import figure_name
from hpo_prune.objectives import FINE_TUNED, SCRATCH

from . import levels as by_level
from .intervals import percentile_interval
from .summary import StudyResult, tol_label

VERDICT_TOLERANCE = 0.01  # the headline verdict: within 1 point of the unpruned accuracy


def _interval(a: np.ndarray | None, b: np.ndarray | None) -> tuple[float, float]:
    """The interval of the differences of two studies' bootstrap replicates."""
    return percentile_interval(None if a is None or b is None else a - b)


def verdict(difference: float, low: float, high: float, missing: str = "",
            hypervolume: bool = False) -> str:
    """One line for a fine-tuned minus scratch difference (fractions; text in points)."""
    if missing:
        return missing
    if np.isnan(low):
        return "insufficient trials"
    if low <= 0 <= high:
        if hypervolume:
            return (f"no clear difference (fine-tuned minus scratch {difference:+.3f}, "
                    f"bootstrap interval {low:+.3f} to {high:+.3f})")
        return (f"no clear difference (fine-tuned minus scratch {100 * difference:+.1f} "
                f"points, bootstrap interval {100 * low:+.1f} to {100 * high:+.1f})")
    winner, sign = ("fine-tuned", 1.0) if low > 0 else ("scratch", -1.0)
    a, b = sorted((sign * low, sign * high))
    if hypervolume:
        return (f"{winner} has the larger hypervolume by {sign * difference:.3f} "
                f"(bootstrap interval {a:.3f} to {b:.3f})")
    return (f"{winner} prunes {100 * sign * difference:.1f} points further "
            f"(bootstrap interval {100 * a:.1f} to {100 * b:.1f})")


def _missing(pre: StudyResult | None, scr: StudyResult | None, needs_baseline: bool,
             needs_trials: bool = True) -> str:
    for regime, r in ((FINE_TUNED, pre), (SCRATCH, scr)):
        if r is None:
            return f"no verdict: the {regime} regime was not searched"
    for regime, r in ((FINE_TUNED, pre), (SCRATCH, scr)):
        if needs_baseline and r.baseline is None:
            return f"no verdict: the {regime} study has no completed baseline"
    for regime, r in ((FINE_TUNED, pre), (SCRATCH, scr)):
        if needs_baseline and not r.meaningful:
            return (f"not meaningful: the {regime} study's unpruned reference "
                    f"{r.reference.untrained_reason}")
    if needs_trials and not (pre.sufficient and scr.sufficient):
        return (f"insufficient trials (fine-tuned: {len(pre.pruned)}, scratch: "
                f"{len(scr.pruned)} completed pruned trials)")
    return ""


def compare_regimes(results: list[StudyResult]) -> pd.DataFrame:
    """Long table: model, dataset, figure, pretrained, scratch, difference, ci_low, ci_high,
    verdict, headline (True on the row whose verdict answers the question)."""
    by_key: dict[tuple, dict[str, StudyResult]] = {}
    for r in results:
        by_key.setdefault((r.model, r.dataset), {})[r.regime] = r
    rows = []
    for (model, dataset), regimes in sorted(by_key.items()):
        pre, scr = regimes.get(FINE_TUNED), regimes.get(SCRATCH)
        leveled = any(r is not None and r.levels for r in (pre, scr))
        if leveled:
            rows += _level_rows(model, dataset, pre, scr)
        tolerances = [s.tolerance for s in (pre or scr).selections]
        for i, tol in enumerate(tolerances):
            a = pre.selections[i] if pre else None
            b = scr.selections[i] if scr else None
            missing = _missing(pre, scr, needs_baseline=True, needs_trials=not leveled)
            diff = a.removed - b.removed if a and b else np.nan
            low, high = ((np.nan, np.nan) if leveled or not (a and b)
                         else _interval(a.replicates, b.replicates))
            text = (missing or _described(a.removed, b.removed, tol)) if leveled else \
                verdict(diff, low, high, missing)
            rows.append({"model": model, "dataset": dataset, "figure": f"removed_{tol_label(tol)}",
                         FINE_TUNED: a.removed if a else np.nan,
                         SCRATCH: b.removed if b else np.nan, "difference": diff,
                         "ci_low": low, "ci_high": high, "verdict": text,
                         "headline": not leveled and bool(np.isclose(tol, VERDICT_TOLERANCE))})
        missing = _missing(pre, scr, needs_baseline=False)
        diff = pre.hypervolume - scr.hypervolume if pre and scr else np.nan
        low, high = (_interval(pre.hv_replicates, scr.hv_replicates) if pre and scr
                     else (np.nan, np.nan))
        rows.append({"model": model, "dataset": dataset, "figure": "hypervolume",
                     FINE_TUNED: pre.hypervolume if pre else np.nan,
                     SCRATCH: scr.hypervolume if scr else np.nan, "difference": diff,
                     "ci_low": low, "ci_high": high,
                     "verdict": verdict(diff, low, high, missing, hypervolume=True),
                     "headline": False})
    return pd.DataFrame(rows, columns=COLUMNS)


# the level rows' own columns come after the ones every row has
COLUMNS = ["model", "dataset", "figure", FINE_TUNED, SCRATCH, "difference", "ci_low",
           "ci_high", "verdict", "headline", "level", f"{FINE_TUNED}_test_acc",
           f"{SCRATCH}_test_acc", f"{FINE_TUNED}_test_std", f"{SCRATCH}_test_std",
           f"{FINE_TUNED}_runs", f"{SCRATCH}_runs", "n_pairs", "df",
           "method"]


def _described(pre: float, scr: float, tolerance: float) -> str:
    return (f"description: fine-tuned holds {100 * pre:.1f}% of the parameters removed within "
            f"{100 * tolerance:g} point(s) of its reference on val, scratch {100 * scr:.1f}% "
            "(the largest level each holds; the per-level verdicts carry the intervals)")


def _level_rows(model: str, dataset: str, pre: StudyResult | None,
                scr: StudyResult | None) -> list[dict]:
    """One row per level: kept accuracy of each regime, their difference, the paired t
    interval and the verdict (``analysis.levels``)."""
    rows = []
    levels = sorted(set(pre.levels if pre else ()) | set(scr.levels if scr else ()))
    study_missing = _missing(pre, scr, needs_baseline=True, needs_trials=False)
    for level in levels:
        a = pre.levels.get(level) if pre else None
        b = scr.levels.get(level) if scr else None
        missing = study_missing
        if not missing:
            lacking = [name for name, v in (("fine-tuned", a), ("scratch", b))
                       if v is None or not v.n]
            if lacking:
                missing = (f"no valued run in the {' and '.join(lacking)} stud"
                           f"{'ies' if len(lacking) > 1 else 'y'} at this level")
        c = (by_level.compare_level(a, b, pre.reference.runs, scr.reference.runs)
             if not missing else None)
        rows.append({"model": model, "dataset": dataset, "figure": figure_name(level),
                     FINE_TUNED: a.kept if a else np.nan, SCRATCH: b.kept if b else np.nan,
                     "difference": c.difference if c else np.nan,
                     "ci_low": c.low if c else np.nan, "ci_high": c.high if c else np.nan,
                     "verdict": by_level.verdict(c, missing) if c else
                     by_level.verdict(by_level.LevelComparison(
                         level, np.nan, np.nan, np.nan, np.nan, 0, 0, ""), missing),
                     "headline": True, "level": level,
                     f"{FINE_TUNED}_test_acc": a.test_acc if a else np.nan,
                     f"{SCRATCH}_test_acc": b.test_acc if b else np.nan,
                     f"{FINE_TUNED}_test_std": a.test_std if a else np.nan,
                     f"{SCRATCH}_test_std": b.test_std if b else np.nan,
                     f"{FINE_TUNED}_runs": a.n if a else 0, f"{SCRATCH}_runs": b.n if b else 0,
                     "n_pairs": c.n_pairs if c else 0, "df": c.df if c else np.nan,
                     "method": c.method if c else ""})
    return rows


def headline_verdicts(comparison: pd.DataFrame) -> list[str]:
    """The answer's lines: per level of a level design, "vgg16 on digits: at 90% removed,
    fine-tuned keeps ..." and one line saying where one regime is clearly ahead; per
    (model, dataset) of a continuous search, its within-1-point verdict."""
    lines = []
    headline = comparison[comparison["headline"]]
    for (model, dataset), group in headline.groupby(["model", "dataset"], sort=False):
        leveled = group["figure"].str.startswith("kept_at_")
        for _, row in group[leveled].iterrows():
            lines.append(f"{model} on {dataset}: {row['verdict']}")
        if leveled.any():
            lines.append(f"{model} on {dataset}, in one line: " + by_level.ahead(
                zip(group.loc[leveled, "level"], group.loc[leveled, "ci_low"],
                    group.loc[leveled, "ci_high"])))
        for _, row in group[~leveled].iterrows():
            lines.append(f"{model} on {dataset} (within {VERDICT_TOLERANCE * 100:g} point of "
                         f"unpruned val accuracy): {row['verdict']}")
    return lines
