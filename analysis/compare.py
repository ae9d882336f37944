"""Fine-tuned (pretrained) minus scratch, per (model, dataset): the paper's question with
error bars.

For each headline figure (parameters removed within 0.5 / 1 / 2 points, hypervolume) the
difference of the two studies' point estimates, and a 95% interval from the percentiles of the
differences of their bootstrap replicates (each study resampled on its own, seeds included).
The verdict says "fine-tuned prunes X points further (95% CI a to b)" (or "scratch ...") only
when the interval excludes 0; otherwise "no clear difference". When either study's unpruned
reference did not train (``reference.make_reference``), the figures measured against it say
"not meaningful" instead (the hypervolume, which does not use the reference, keeps its
verdict). The headline verdict uses ``VERDICT_TOLERANCE``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from hpo_prune.objectives import FINE_TUNED, SCRATCH

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
                    f"95% CI {low:+.3f} to {high:+.3f})")
        return (f"no clear difference (fine-tuned minus scratch {100 * difference:+.1f} "
                f"points, 95% CI {100 * low:+.1f} to {100 * high:+.1f})")
    winner, sign = ("fine-tuned", 1.0) if low > 0 else ("scratch", -1.0)
    a, b = sorted((sign * low, sign * high))
    if hypervolume:
        return (f"{winner} has the larger hypervolume by {sign * difference:.3f} "
                f"(95% CI {a:.3f} to {b:.3f})")
    return (f"{winner} prunes {100 * sign * difference:.1f} points further "
            f"(95% CI {100 * a:.1f} to {100 * b:.1f})")


def _missing(pre: StudyResult | None, scr: StudyResult | None, needs_baseline: bool) -> str:
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
    if not (pre.sufficient and scr.sufficient):
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
        tolerances = [s.tolerance for s in (pre or scr).selections]
        for i, tol in enumerate(tolerances):
            a = pre.selections[i] if pre else None
            b = scr.selections[i] if scr else None
            missing = _missing(pre, scr, needs_baseline=True)
            diff = a.removed - b.removed if a and b else np.nan
            low, high = _interval(a.replicates, b.replicates) if a and b else (np.nan, np.nan)
            rows.append({"model": model, "dataset": dataset, "figure": f"removed_{tol_label(tol)}",
                         FINE_TUNED: a.removed if a else np.nan,
                         SCRATCH: b.removed if b else np.nan, "difference": diff,
                         "ci_low": low, "ci_high": high,
                         "verdict": verdict(diff, low, high, missing),
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
    columns = ["model", "dataset", "figure", FINE_TUNED, SCRATCH, "difference", "ci_low",
               "ci_high", "verdict", "headline"]
    return pd.DataFrame(rows, columns=columns)


def headline_verdicts(comparison: pd.DataFrame) -> list[str]:
    """One line per (model, dataset): "vgg16 on cifar10: fine-tuned prunes ... further"."""
    lines = []
    for _, row in comparison[comparison["headline"]].iterrows():
        lines.append(f"{row['model']} on {row['dataset']} (within "
                     f"{VERDICT_TOLERANCE * 100:g} point of unpruned val accuracy): "
                     f"{row['verdict']}")
    return lines
