"""The headline figure: the largest parameter reduction that stays within X points of the
unpruned accuracy, SELECTED on validation accuracy and REPORTED with its test accuracy.

Rule: among the completed configurations (a trial and its confirmation runs, see
``replicates``) whose mean val_acc >= the reference's mean val_acc - X (X = 0.005, 0.01, 0.02
for 0.5 / 1 / 2 points; the reference is the mean of the baseline runs, see ``reference``),
take the one that removes the largest fraction of parameters (1 - remaining_fraction); ties go
to the higher val_acc, then the lower trial number. A configuration that was not confirmed
competes with its single run's value: only the search's Pareto front is re-run, and a
configuration off the front was dominated on the very numbers it would compete with. (The
front's single values were the luckiest; their means regress, so a confirmed configuration can
lose to an unconfirmed one that was not put to the same test; the report says which the
selected one is.) The reference itself always qualifies, so the answer is 0 when no pruned
configuration does. Test accuracy (the selected configuration's seed mean, with its spread)
never takes part in the choice.

Bootstrap: the pruned configurations are resampled with replacement, and the seeds inside each
drawn configuration (and the reference's baseline runs) are resampled too (see
``replicates.resample_seeds``); the rule is applied to each resample, and the 2.5th / 97.5th
percentiles are the 95% interval, reported as they come out. The point estimate is a maximum,
so it often sits at the top of its interval.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .intervals import percentile_interval

N_BOOT = 1000  # bootstrap resamples
TOLERANCES = (0.005, 0.01, 0.02)  # accuracy drops allowed, as fractions (0.5 / 1 / 2 points)
EPS = 1e-9  # accuracies are ratios of counts; guard the comparison against rounding
CANDIDATE = ("trial", "val_acc", "test_acc", "remaining_fraction", "test_acc_std", "n_seeds")


@dataclass
class Selection:
    tolerance: float
    removed: float  # fraction of parameters removed by the selected trial (NaN: no baseline)
    trial: int | None  # its number
    val_acc: float
    test_acc: float
    replicates: np.ndarray | None  # bootstrap values of `removed`; None: too few trials
    test_std: float = np.nan  # spread of the selected configuration's test accuracy over seeds
    n_seeds: int = 0  # seeds the selected configuration was measured on

    def interval(self) -> tuple[float, float]:
        return percentile_interval(self.replicates)


def select_within(pruned: pd.DataFrame, baseline: pd.Series, tolerance: float) -> pd.Series:
    """The row chosen by the rule (the baseline when no pruned configuration qualifies)."""
    floor = baseline["val_acc"] - tolerance - EPS
    columns = [c for c in CANDIDATE if c in pruned.columns and c in baseline.index]
    candidates = pd.concat([pruned.loc[pruned["val_acc"] >= floor, columns],
                            baseline[columns].to_frame().T])
    candidates = candidates.assign(_removed=1.0 - candidates["remaining_fraction"].astype(float))
    order = candidates.sort_values(["_removed", "val_acc", "trial"],
                                   ascending=[False, False, True], kind="stable")
    return order.iloc[0]


def removed_replicates(val: np.ndarray, remaining: np.ndarray, reference: np.ndarray,
                       tolerances) -> dict[float, np.ndarray]:
    """Bootstrap values of the reduction for each tolerance: ``val`` and ``remaining`` are the
    resampled configurations' values (n_boot, n), ``reference`` the resampled reference
    val accuracy (n_boot,)."""
    removed = 1.0 - remaining
    out = {}
    for tol in tolerances:
        ok = val >= reference[:, None] - tol - EPS
        out[tol] = np.maximum(np.where(ok, removed, 0.0).max(axis=1), 0.0)
    return out


def selections(pruned: pd.DataFrame, baseline: pd.Series | None, tolerances=TOLERANCES,
               replicates: tuple | None = None) -> list[Selection]:
    """One Selection per tolerance; NaN everywhere without a baseline. ``replicates``:
    (val, remaining, reference) bootstrap arrays for ``removed_replicates``, or None."""
    if baseline is None:
        return [Selection(t, np.nan, None, np.nan, np.nan, None) for t in tolerances]
    reps = removed_replicates(*replicates, tolerances) if replicates is not None else {}
    out = []
    for tol in tolerances:
        row = select_within(pruned, baseline, tol)
        out.append(Selection(tol, float(row["_removed"]), int(row["trial"]),
                             float(row["val_acc"]), float(row["test_acc"]), reps.get(tol),
                             float(row.get("test_acc_std", np.nan)),
                             int(row.get("n_seeds", 1))))
    return out
