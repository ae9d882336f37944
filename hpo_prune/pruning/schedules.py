"""Sparsity schedules: pure functions ``f(pos, start, end) -> sparsity`` of the position
``pos`` in [0, 1] inside the pruning window, rising from ``start`` to ``end`` (fasterai's shape).

``sparsity_at`` places a schedule in a window [window_start, window_end] of the whole training
run (fractions of all optimizer steps): sparsity is 0 before the window and the target after it.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable

from ..errors import UsageError

Schedule = Callable[..., float]


def one_shot(pos: float, start: float, end: float) -> float:
    """The whole target at the window's start."""
    return end


def iterative(pos: float, start: float, end: float, steps: int = 3) -> float:
    """``steps`` equal jumps, the first at the window's start, the k-th at pos = (k-1)/steps."""
    k = min(math.floor(pos * steps + 1e-9) + 1, steps)  # 1e-9: pos = 2/3 is step 3 of 3
    return start + (end - start) * k / steps


def agp(pos: float, start: float, end: float) -> float:
    """Automated gradual pruning (Zhu & Gupta 2017): s_f + (s_i - s_f)(1 - pos)^3."""
    return end + (start - end) * (1 - pos) ** 3


def one_cycle(pos: float, start: float, end: float, a: float = 14.0, b: float = 6.0) -> float:
    """fasterai's logistic ramp: start + (end-start)(1+e^(-a+b))/(1+e^(-a pos+b))."""
    return start + (end - start) * (1 + math.exp(-a + b)) / (1 + math.exp(-a * pos + b))


def cos(pos: float, start: float, end: float) -> float:
    """Half a cosine from start to end."""
    return start + (end - start) * (1 - math.cos(math.pi * pos)) / 2


def lin(pos: float, start: float, end: float) -> float:
    """Linear from start to end."""
    return start + (end - start) * pos


SCHEDULES: dict[str, Schedule] = {"one_shot": one_shot, "iterative": iterative, "agp": agp,
                                  "one_cycle": one_cycle, "cos": cos, "lin": lin}


# Settings each schedule takes, and the PruneSettings field that sets it in a trial.
SETTINGS: dict[str, dict[str, str]] = {"iterative": {"steps": "prune_steps"}}


def settings_of(config) -> dict:
    """The schedule settings of a PruneSettings, e.g. ``{"steps": 3}`` for 'iterative'."""
    return {name: getattr(config, field)
            for name, field in SETTINGS.get(config.schedule, {}).items()}


def sparsity_at(schedule: str, progress: float, target: float, start: float = 0.0,
                end: float = 0.5, **settings) -> float:
    """Target sparsity after ``progress`` (in [0, 1]) of training, for a schedule that prunes
    to ``target`` inside the window [start, end]. ``settings`` go to the schedule (e.g.
    ``steps`` for 'iterative', ``a``/``b`` for 'one_cycle')."""
    try:
        fn = SCHEDULES[schedule]
    except KeyError:
        raise UsageError(f"unknown schedule {schedule!r}: use one of "
                         f"{', '.join(SCHEDULES)}") from None
    if not 0 <= start < end <= 1:
        raise UsageError(f"the pruning window [{start}, {end}] must satisfy "
                         "0 <= start < end <= 1")
    if not 0 <= target < 1:
        raise UsageError(f"target sparsity must be in [0, 1), got {target}")
    accepted = tuple(inspect.signature(fn).parameters)[3:]
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise UsageError(f"schedule {schedule!r} has no setting {', '.join(unknown)}: "
                         f"its settings are {', '.join(accepted) or 'none'}")
    if settings.get("steps", 1) < 1:
        raise UsageError(f"'iterative' needs steps >= 1, got {settings['steps']}")
    if progress < start:
        return 0.0
    if progress >= end:
        return float(target)
    value = fn((progress - start) / (end - start), 0.0, float(target), **settings)
    return min(max(value, 0.0), float(target))
