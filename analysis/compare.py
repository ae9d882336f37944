"""Fine-tuned (pretrained) minus scratch, per (model, dataset): the paper's question with
error bars.

A search with pruning levels (``analysis.levels``) is answered level by level: per level, the
accuracy each regime keeps (its level's test accuracy minus its reference's, the mean over
replicates), their difference and its interval over the replicates and the test images, 80%
primary and the other levels Holm-adjusted, whose coverage ``benchmarks/verdict_coverage.py``
measures; these rows (figure ``kept_at_P``) are the headline. The "removed within X points" figures are then a
description (the largest level each regime holds within X points on val), without interval.

A continuous search (``--levels none``) keeps the older figures: parameters removed within
0.5 / 1 / 2 points and the hypervolume, each with the percentiles of the differences of the
two studies' bootstrap replicates (each study resampled on its own, seeds included). That
interval's coverage is not established (70-93% for a nominal 95% in docs/analysis.md's simulation),
so it is called a bootstrap interval, not a 95% one. The verdict names a regime only when the
interval excludes 0; otherwise "no clear difference". When either study's unpruned reference
did not train (``reference.make_reference``), the figures measured against it say "not
meaningful" instead (the hypervolume, which does not use the reference, keeps its verdict).
The continuous design's headline verdict uses ``VERDICT_TOLERANCE``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from hpo_prune.levels import KEPT_AT, figure_name
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
    verdict, headline (True on the rows whose verdict answers the question), then the level
    rows' own columns (COLUMNS)."""
    by_key: dict[tuple, dict[str, dict[str, StudyResult]]] = {}
    for r in results:
        by_key.setdefault((r.model, r.dataset), {}).setdefault(r.unit, {})[r.regime] = r
    rows = []
    for (model, dataset), units in sorted(by_key.items()):
        leveled = any(r.levels for unit in units.values() for r in unit.values())
        if leveled:
            rows += _level_rows(model, dataset, units)
            rows += _described_rows(model, dataset, units)
            continue
        last = list(units.values())[-1]  # a continuous design has one study per regime
        rows += _continuous_rows(model, dataset, last.get(FINE_TUNED), last.get(SCRATCH))
    return pd.DataFrame(rows, columns=COLUMNS)


def _continuous_rows(model: str, dataset: str, pre: StudyResult | None,
                     scr: StudyResult | None) -> list[dict]:
    """A continuous search's rows: removed within each tolerance, and the hypervolume, each
    with the bootstrap interval of the two studies' differences (see the top)."""
    rows = []
    for i, tol in enumerate(s.tolerance for s in (pre or scr).selections):
        a = pre.selections[i] if pre else None
        b = scr.selections[i] if scr else None
        missing = _missing(pre, scr, needs_baseline=True)
        diff = a.removed - b.removed if a and b else np.nan
        low, high = _interval(a.replicates, b.replicates) if a and b else (np.nan, np.nan)
        rows.append({"model": model, "dataset": dataset, "figure": f"removed_{tol_label(tol)}",
                     FINE_TUNED: a.removed if a else np.nan,
                     SCRATCH: b.removed if b else np.nan, "difference": diff,
                     "ci_low": low, "ci_high": high, "verdict": verdict(diff, low, high, missing),
                     "headline": bool(np.isclose(tol, VERDICT_TOLERANCE))})
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
    return rows


# the level rows' own columns come after the ones every row has
COLUMNS = ["model", "dataset", "figure", FINE_TUNED, SCRATCH, "difference", "ci_low",
           "ci_high", "verdict", "headline", "level", f"{FINE_TUNED}_test_acc",
           f"{SCRATCH}_test_acc", f"{FINE_TUNED}_test_std", f"{SCRATCH}_test_std",
           f"{FINE_TUNED}_runs", f"{SCRATCH}_runs", "n_pairs", "df", "method",
           "raw_difference", "primary", "p_value", "p_adjusted", "confidence", "named",
           "replicate_se", "image_se", "dropped"]
METHOD = "replicates t"  # comparison.csv's method of a level row (analysis.levels)


def _mean(values) -> float:
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else np.nan


def _described_rows(model: str, dataset: str, units: dict[str, dict[str, StudyResult]]
                    ) -> list[dict]:
    """A level design's "removed within X" and hypervolume rows: descriptions (means over
    the replicates), without interval; the per-level verdicts carry the intervals."""
    pairs = [(u.get(FINE_TUNED), u.get(SCRATCH)) for u in units.values()]
    first = next(r for pair in pairs for r in pair if r is not None)
    rows = []
    for i, tol in enumerate(s.tolerance for s in first.selections):
        a = _mean(pre.selections[i].removed for pre, _ in pairs if pre)
        b = _mean(scr.selections[i].removed for _, scr in pairs if scr)
        rows.append({"model": model, "dataset": dataset, "figure": f"removed_{tol_label(tol)}",
                     FINE_TUNED: a, SCRATCH: b, "difference": a - b, "ci_low": np.nan,
                     "ci_high": np.nan, "verdict": _described(a, b, tol, len(pairs)),
                     "headline": False})
    a = _mean(pre.hypervolume for pre, _ in pairs if pre)
    b = _mean(scr.hypervolume for _, scr in pairs if scr)
    rows.append({"model": model, "dataset": dataset, "figure": "hypervolume",
                 FINE_TUNED: a, SCRATCH: b, "difference": a - b, "ci_low": np.nan,
                 "ci_high": np.nan, "headline": False,
                 "verdict": f"description: mean hypervolume over {len(pairs)} replicate(s), "
                 f"fine-tuned {a:.3f}, scratch {b:.3f} (no interval)"})
    return rows


def _described(pre: float, scr: float, tolerance: float, replicates: int) -> str:
    return (f"description: fine-tuned holds {100 * pre:.1f}% of the parameters removed within "
            f"{100 * tolerance:g} point(s) of its reference on val, scratch {100 * scr:.1f}% "
            f"(the largest level each holds, mean over {replicates} replicate(s); the "
            "per-level verdicts carry the intervals)")


def _arm(r: StudyResult | None, level: float, regime: str) -> by_level.Arm:
    if r is None:
        return by_level.Arm(None, None, f"the {regime} regime was not searched")
    ref = r.reference
    if ref is None:
        return by_level.Arm(None, None, r.baseline_note or "no completed baseline")
    if not ref.trained:
        return by_level.Arm(None, None, f"its reference {ref.untrained_reason}")
    return by_level.Arm(r.levels.get(level), ref.runs)


def _level_rows(model: str, dataset: str, units: dict[str, dict[str, StudyResult]]
                ) -> list[dict]:
    """One row per level: kept accuracy of each regime (means over replicates), their
    difference with its interval over replicates and the verdict (``analysis.levels``)."""
    studies = [r for u in units.values() for r in u.values()]
    levels = sorted({level for r in studies for level in r.levels})
    comparisons = []
    for level in levels:
        replicates = [(unit, _arm(u.get(FINE_TUNED), level, "fine-tuned"),
                       _arm(u.get(SCRATCH), level, "scratch")) for unit, u in units.items()]
        comparisons.append((level, replicates, by_level.compare_level(level, replicates)))
    by_level.adjust([c for _, _, c in comparisons])
    rows = []
    for level, replicates, c in comparisons:
        row = {"model": model, "dataset": dataset, "figure": figure_name(level),
               "verdict": by_level.verdict(c), "headline": True, "level": level,
               "difference": c.difference, "ci_low": c.low, "ci_high": c.high,
               "n_pairs": c.n_replicates, "df": c.df, "method": METHOD,
               "raw_difference": c.raw_difference, "primary": c.primary,
               "p_value": c.p_value, "p_adjusted": c.p_adjusted, "confidence": c.confidence,
               "named": c.named, "replicate_se": c.replicate_se, "image_se": c.image_se,
               "dropped": "; ".join(c.dropped)}
        paired = [rep for rep in replicates if rep[0] in c.used]  # dropped: from both
        for regime, k in ((FINE_TUNED, 1), (SCRATCH, 2)):
            used = [rep[k] for rep in paired]
            tests = [arm.value.test_acc for arm in used]
            row[regime] = _mean(arm.kept for arm in used)
            row[f"{regime}_test_acc"] = _mean(tests)
            row[f"{regime}_test_std"] = float(np.std(tests, ddof=1)) if len(tests) > 1 \
                else np.nan
            row[f"{regime}_runs"] = sum(arm.value.n for arm in used)
        rows.append(row)
    return rows


def headline_verdicts(comparison: pd.DataFrame) -> list[str]:
    """The answer's lines: per level of a level design, "vgg16 on digits: at 90% removed,
    fine-tuned keeps ..." and one line saying where one regime is clearly ahead; per
    (model, dataset) of a continuous search, its within-1-point verdict."""
    lines = []
    headline = comparison[comparison["headline"]]
    for (model, dataset), group in headline.groupby(["model", "dataset"], sort=False):
        leveled = group["figure"].str.startswith(KEPT_AT)
        for _, row in group[leveled].iterrows():
            lines.append(f"{model} on {dataset}: {row['verdict']}")
        if leveled.any():
            lines.append(f"{model} on {dataset}, in one line: " + by_level.ahead(
                zip(group.loc[leveled, "level"], group.loc[leveled, "named"].fillna(""))))
        for _, row in group[~leveled].iterrows():
            lines.append(f"{model} on {dataset} (within {VERDICT_TOLERANCE * 100:g} point of "
                         f"unpruned val accuracy): {row['verdict']}")
    return lines
