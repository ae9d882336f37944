"""The headline figure: the largest parameter reduction that stays within X points of the
unpruned accuracy, SELECTED on validation accuracy and REPORTED with its test accuracy.

Rule: among the completed trials whose val_acc >= unpruned val_acc - X (X = 0.005, 0.01, 0.02
for 0.5 / 1 / 2 points), take the one that removes the largest fraction of parameters
(1 - remaining_fraction); ties go to the higher val_acc, then the lower trial number. The
unpruned baseline itself always qualifies, so the answer is 0 when no pruned trial does. Test
accuracy never takes part in the choice.

Bootstrap: the pruned trials are resampled with replacement (the baseline is the fixed
reference), the rule is applied to each resample, and the 2.5th / 97.5th percentiles are the
95% interval, reported as they come out. The point estimate is a maximum, so it often sits at
the top of its interval.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .intervals import percentile_interval

N_BOOT = 1000  # bootstrap resamples
TOLERANCES = (0.005, 0.01, 0.02)  # accuracy drops allowed, as fractions (0.5 / 1 / 2 points)
EPS = 1e-9  # accuracies are ratios of counts; guard the comparison against rounding


@dataclass
class Selection:
    tolerance: float
    removed: float  # fraction of parameters removed by the selected trial (NaN: no baseline)
    trial: int | None  # its number
    val_acc: float
    test_acc: float
    replicates: np.ndarray | None  # bootstrap values of `removed`; None: too few trials

    def interval(self) -> tuple[float, float]:
        return percentile_interval(self.replicates)


def select_within(pruned: pd.DataFrame, baseline: pd.Series, tolerance: float) -> pd.Series:
    """The row chosen by the rule (the baseline when no pruned trial qualifies)."""
    floor = baseline["val_acc"] - tolerance - EPS
    candidates = pd.concat([pruned[pruned["val_acc"] >= floor], baseline.to_frame().T])
    candidates = candidates.assign(_removed=1.0 - candidates["remaining_fraction"].astype(float))
    order = candidates.sort_values(["_removed", "val_acc", "trial"],
                                   ascending=[False, False, True], kind="stable")
    return order.iloc[0]


def removed_replicates(pruned: pd.DataFrame, baseline_val: float, tolerances, index: np.ndarray
                       ) -> dict[float, np.ndarray]:
    """Bootstrap values of the reduction for each tolerance; ``index`` is (n_boot, n)."""
    val = pruned["val_acc"].to_numpy(float)[index]
    removed = 1.0 - pruned["remaining_fraction"].to_numpy(float)[index]
    out = {}
    for tol in tolerances:
        ok = val >= baseline_val - tol - EPS
        out[tol] = np.maximum(np.where(ok, removed, 0.0).max(axis=1), 0.0)
    return out


def selections(pruned: pd.DataFrame, baseline: pd.Series | None, tolerances=TOLERANCES,
               index: np.ndarray | None = None) -> list[Selection]:
    """One Selection per tolerance; NaN everywhere without a baseline."""
    if baseline is None:
        return [Selection(t, np.nan, None, np.nan, np.nan, None) for t in tolerances]
    reps = (removed_replicates(pruned, float(baseline["val_acc"]), tolerances, index)
            if index is not None else {})
    out = []
    for tol in tolerances:
        row = select_within(pruned, baseline, tol)
        out.append(Selection(tol, float(row["_removed"]), int(row["trial"]),
                             float(row["val_acc"]), float(row["test_acc"]), reps.get(tol)))
    return out
