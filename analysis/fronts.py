"""Pareto fronts, the fitted monotone front with its bootstrap band, and hypervolume.

Non-dominated sorting is the project's one Pareto rule (``hpo_prune.objectives``, on moocore),
hypervolume is moocore's; the monotone fit is scikit-learn's isotonic regression.

Conventions (the study's objectives: ``val_acc`` maximised, ``remaining_fraction`` minimised):

- A row dominates another when it is at least as good on every objective and strictly better on
  one. Ties on one objective are therefore decided by the other; exact duplicates of a
  non-dominated point are all kept. Rows with a missing objective are never on the front.
- The hypervolume's reference point is ``REFERENCE`` = (val_acc 0, remaining_fraction 1): the
  area, in the (accuracy, fraction removed) unit square, that the front dominates. A trial that
  removes nothing adds no area; 1.0 would be 100% accuracy with every parameter removed.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from hpo_prune.objectives import OBJECTIVES, non_dominated

from .intervals import percentile_interval
from .schema import require

# the study's objectives as column -> "max" / "min" (the form pareto_front takes)
DIRECTIONS = {name: {"maximize": "max", "minimize": "min"}[d] for name, d in OBJECTIVES}
REFERENCE = {"val_acc": 0.0, "remaining_fraction": 1.0}
MIN_TRIALS = 3  # fewer completed trials than this: "insufficient trials", no interval
GRID = np.linspace(0.0, 1.0, 201)  # remaining fractions at which fitted fronts are evaluated


def _maximise(directions: Sequence[str]) -> list[bool]:
    bad = [d for d in directions if d not in ("max", "min")]
    if bad:
        raise ValueError(f"directions must be 'max' or 'min', got {bad}")
    return [d == "max" for d in directions]


def pareto_front(df: pd.DataFrame, objectives: Mapping[str, str] = DIRECTIONS) -> pd.DataFrame:
    """The non-dominated rows of ``df`` (in their original order, index kept).

    ``objectives`` maps a column name to "max" or "min". Duplicated non-dominated points are
    all returned; rows with a missing (NaN) objective are left out.
    """
    columns = list(objectives)
    maximise = _maximise(list(objectives.values()))
    values = df[columns].to_numpy(dtype=float) if len(df) else np.empty((0, len(columns)))
    return df[non_dominated(values, maximise)]


def hypervolume(points, reference: Sequence[float], directions: Sequence[str]) -> float:
    """Hypervolume of ``points`` (n x d) with respect to ``reference`` (d,).

    ``directions[i]`` says whether objective i is maximised ("max") or minimised ("min").
    Points that are not at least as good as the reference on every objective add nothing.
    """
    import moocore

    maximise = _maximise(directions)
    signs = np.where(maximise, -1.0, 1.0)
    values = np.asarray(points, dtype=float).reshape(-1, len(signs))
    ref = np.asarray(reference, dtype=float)
    inside = (np.isfinite(values).all(axis=1)
              & (values * signs <= ref * signs).all(axis=1))
    if not inside.any():
        return 0.0
    return float(moocore.hypervolume(values[inside], ref=ref, maximise=maximise))


def study_hypervolume(df: pd.DataFrame) -> float:
    """Hypervolume of a study's trials on (val_acc, remaining_fraction) w.r.t. REFERENCE."""
    return hypervolume(df[list(DIRECTIONS)].to_numpy(dtype=float),
                       [REFERENCE[c] for c in DIRECTIONS], list(DIRECTIONS.values()))


def hypervolume_history(df: pd.DataFrame) -> pd.DataFrame:
    """Hypervolume of the trials up to and including each trial number (rows sorted by it)."""
    ordered = df.sort_values("trial", kind="stable")
    history = [study_hypervolume(ordered.iloc[: i + 1]) for i in range(len(ordered))]
    return pd.DataFrame({"trial": ordered["trial"].to_numpy(), "hypervolume": history})


def front_curve(remaining: np.ndarray, acc: np.ndarray, grid: np.ndarray = GRID) -> np.ndarray:
    """Accuracy of the fitted front at each remaining fraction of ``grid``.

    Isotonic (non-decreasing) regression of accuracy on remaining fraction through the
    non-dominated points, linear between them. Above the largest remaining fraction the curve
    stays at the best accuracy (a larger network can reuse that configuration); below the
    smallest it is NaN (no trial removed that much).
    """
    remaining, acc = np.asarray(remaining, float), np.asarray(acc, float)
    on = non_dominated(np.column_stack([acc, remaining]))  # in OBJECTIVES' order
    x, y = remaining[on], acc[on]
    curve = np.full(len(grid), np.nan)
    if len(x) == 0:
        return curve
    if np.unique(x).size == 1:
        curve[grid >= x.min()] = y.max()
        return curve
    model = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(x, y)
    curve = model.predict(grid)
    curve[grid < x.min()] = np.nan
    return curve


@dataclass
class FrontFit:
    """A fitted front on ``grid`` with its pointwise bootstrap 95% band (NaN where undefined)."""

    grid: np.ndarray  # remaining fraction
    fit: np.ndarray  # accuracy
    lower: np.ndarray
    upper: np.ndarray
    n_trials: int  # trials that were resampled
    n_boot: int  # 0 when there were too few trials for a band

    def removed_percent(self) -> np.ndarray:
        return 100.0 * (1.0 - self.grid)


def rng_for(seed: int, name: str) -> np.random.Generator:
    """A generator fixed by the seed and the study's name (independent of study order)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def fit_front(df: pd.DataFrame, fixed: pd.DataFrame | None = None, n_boot: int = 1000,
              seed: int = 0, name: str = "", grid: np.ndarray = GRID,
              replicates: tuple[np.ndarray, np.ndarray] | None = None) -> FrontFit:
    """Fit the front of ``df`` (val_acc vs remaining_fraction) with a bootstrap band.

    The band resamples the rows of ``df`` with replacement ``n_boot`` times (the rows of
    ``fixed``, e.g. the unpruned baseline, are in every resample), refits the front and takes
    the 2.5th and 97.5th percentiles at each grid point. Where a resampled front does not reach
    a grid point it counts as below every other value, so the band is only drawn where at least
    97.5% of the resampled fronts reach. Fewer than ``MIN_TRIALS`` rows: no band.
    ``replicates`` = (remaining_fraction, val_acc) arrays (n_boot, m) gives the resampled
    points instead (``fixed``'s included), e.g. with seeds resampled too (``replicates``).
    """
    require(df, list(DIRECTIONS), "fit_front's table")
    fixed = fixed if fixed is not None else df.iloc[:0]
    x = df["remaining_fraction"].to_numpy(float)
    y = df["val_acc"].to_numpy(float)
    fx = fixed["remaining_fraction"].to_numpy(float)
    fy = fixed["val_acc"].to_numpy(float)
    fit = front_curve(np.concatenate([x, fx]), np.concatenate([y, fy]), grid)
    lower = np.full(len(grid), np.nan)
    upper = np.full(len(grid), np.nan)
    if len(df) < MIN_TRIALS or n_boot <= 0:
        return FrontFit(grid, fit, lower, upper, len(df), 0)
    if replicates is None:
        idx = rng_for(seed, name).integers(0, len(df), size=(n_boot, len(df)))
        n_fixed = len(fx)
        replicates = (np.hstack([x[idx], np.broadcast_to(fx, (n_boot, n_fixed))]),
                      np.hstack([y[idx], np.broadcast_to(fy, (n_boot, n_fixed))]))
    xs, ys = replicates
    n_boot = len(xs)
    curves = np.empty((n_boot, len(grid)))
    for b in range(n_boot):
        curves[b] = front_curve(xs[b], ys[b], grid)
    curves = np.where(np.isnan(curves), -np.inf, curves)
    lower, upper = percentile_interval(curves, axis=0, method="outward")
    undefined = ~np.isfinite(lower)
    lower[undefined] = upper[undefined] = np.nan
    return FrontFit(grid, fit, lower, upper, len(df), n_boot)
