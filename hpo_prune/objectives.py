"""What a search optimises and compares: its two objectives and its two init regimes.

Every part that names an objective or a regime imports it from here: the studies (Optuna's
directions and metric names), the trial table, the progress view and the analysis.
"""
from __future__ import annotations

import numpy as np

__all__ = ["OBJECTIVES", "METRICS", "DIRECTIONS", "REGIMES", "FINE_TUNED", "SCRATCH",
           "minimised", "non_dominated"]

# (name, direction), in the order of an Optuna study's values
OBJECTIVES: tuple[tuple[str, str], ...] = (("val_acc", "maximize"),
                                           ("remaining_fraction", "minimize"))
METRICS: list[str] = [name for name, _ in OBJECTIVES]
DIRECTIONS: list[str] = [direction for _, direction in OBJECTIVES]

FINE_TUNED = "pretrained"  # pre-trained weights, then fine-tuned (with pruning)
SCRATCH = "scratch"        # the library's seeded init
REGIMES: tuple[str, ...] = (FINE_TUNED, SCRATCH)


def minimised(values) -> list[float]:
    """Objective values (in OBJECTIVES' order) as quantities to minimise (maximised ones
    negated): the form non-dominated sorting and hypervolume take."""
    return [-float(v) if d == "maximize" else float(v) for v, d in zip(values, DIRECTIONS)]


def non_dominated(values, maximise=None) -> np.ndarray:
    """Mask of the non-dominated rows of ``values`` (n x k; by default k = 2, in OBJECTIVES'
    order; else ``maximise`` says, per column, whether it is maximised).

    The one Pareto rule of the project (the search's progress view and the analysis): a row
    dominates another when it is at least as good on every objective and strictly better on
    one, so ties on one objective are decided by the others and exact duplicates of a
    non-dominated point are all kept. Rows with a missing (non-finite) value are never on it.
    """
    import moocore

    if maximise is None:
        maximise = [d == "maximize" for d in DIRECTIONS]
    maximise = [bool(m) for m in maximise]
    values = np.asarray(values, dtype=float).reshape(-1, len(maximise))
    keep = np.isfinite(values).all(axis=1)
    mask = np.zeros(len(values), dtype=bool)
    if keep.any():
        mask[keep] = moocore.is_nondominated(values[keep], maximise=maximise, keep_weakly=True)
    return mask
