"""The analysis' one interval: the percentile interval of bootstrap replicates."""
from __future__ import annotations

import numpy as np

LEVEL = 0.95


def percentile_interval(samples, level: float = LEVEL, axis=None, method: str = "linear"):
    """The central ``level`` interval of ``samples`` (2.5th and 97.5th percentiles for 0.95).

    With ``axis=None`` a pair of floats, (NaN, NaN) when ``samples`` is None; else a pair of
    arrays along ``axis``. ``method`` is numpy's percentile method, or "outward" for "lower"
    at the low end and "higher" at the high end: no interpolation, so samples of -inf (e.g. a
    resampled front that does not reach a point) give -inf, never NaN.
    """
    if samples is None:
        return (np.nan, np.nan)
    tail = round(50.0 * (1.0 - level), 10)
    low_method, high_method = ("lower", "higher") if method == "outward" else (method, method)
    low = np.percentile(samples, tail, axis=axis, method=low_method)
    high = np.percentile(samples, 100.0 - tail, axis=axis, method=high_method)
    if axis is None:
        return float(low), float(high)
    return low, high
