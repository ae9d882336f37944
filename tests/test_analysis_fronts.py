"""Fronts: non-dominated set vs brute force, hypervolume vs hand-computed values, the monotone
fitted front and its bootstrap band, the one percentile interval."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import fit_front, hypervolume, hypervolume_history, pareto_front
from analysis.fronts import GRID, front_curve, study_hypervolume
from analysis.intervals import percentile_interval


def brute_force_front(values: np.ndarray, directions: list[str]) -> np.ndarray:
    signs = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    losses = values * signs
    keep = np.zeros(len(values), dtype=bool)
    for i, a in enumerate(losses):
        if np.isnan(a).any():
            continue
        dominated = any((b <= a).all() and (b < a).any()
                        for j, b in enumerate(losses) if j != i and not np.isnan(b).any())
        keep[i] = not dominated
    return keep


@pytest.mark.parametrize("n", [1, 2, 7, 60])
@pytest.mark.parametrize("dims", [2, 3])
def test_front_is_exactly_the_non_dominated_set(n, dims):
    rng = np.random.default_rng(n * 10 + dims)
    # values on a coarse grid: many ties on one objective and exact duplicates
    values = rng.integers(0, 5, size=(n, dims)) / 4
    if n > 2:
        values[1] = values[0]  # a duplicate
        values[2, 0] = np.nan  # a row with a missing objective
    directions = ["max", "min", "max"][:dims]
    columns = ["val_acc", "remaining_fraction", "other"][:dims]
    df = pd.DataFrame(values, columns=columns, index=np.arange(100, 100 + n))
    front = pareto_front(df, dict(zip(columns, directions)))
    expected = df.index[brute_force_front(values, directions)]
    assert list(front.index) == list(expected)
    if n > 2 and 100 in front.index:  # duplicates of a non-dominated point are all kept
        assert 101 in front.index


def test_ties_are_decided_by_the_other_objective():
    df = pd.DataFrame({"val_acc": [0.9, 0.9, 0.8, 0.9],
                       "remaining_fraction": [0.5, 0.4, 0.4, 0.4]})
    front = pareto_front(df)  # default objectives: val_acc max, remaining_fraction min
    assert list(front.index) == [1, 3]  # 0 loses on size, 2 on accuracy; 1 and 3 are equal


def test_hypervolume_matches_hand_computed_values():
    # (val_acc, remaining_fraction) vs reference (0, 1): rectangles in (acc x removed)
    points = [[0.9, 1.0], [0.8, 0.5], [0.5, 0.2]]
    # 0.8 * 0.5 (removed 0..0.5) + 0.5 * 0.3 (removed 0.5..0.8); the unpruned point adds 0
    assert hypervolume(points, [0.0, 1.0], ["max", "min"]) == pytest.approx(0.55)
    assert hypervolume(points + [[0.4, 0.6]], [0.0, 1.0], ["max", "min"]) == pytest.approx(0.55)
    assert hypervolume([[0.5, 0.2], [0.5, 0.2]], [0.0, 1.0], ["max", "min"]) == \
        pytest.approx(0.4)
    assert hypervolume(np.empty((0, 2)), [0.0, 1.0], ["max", "min"]) == 0.0
    # a point worse than the reference on one objective adds nothing
    assert hypervolume([[0.5, 1.2]], [0.0, 1.0], ["max", "min"]) == 0.0
    # three minimised objectives: two unit-cube boxes overlapping in a quarter
    cube = hypervolume([[0.5, 0, 0], [0, 0.5, 0]], [1, 1, 1], ["min", "min", "min"])
    assert cube == pytest.approx(0.75)
    frame = pd.DataFrame(points, columns=["val_acc", "remaining_fraction"])
    assert study_hypervolume(frame) == pytest.approx(0.55)


def test_hypervolume_history_follows_trial_numbers():
    df = pd.DataFrame({"trial": [3, 0, 1, 2], "val_acc": [0.4, 0.9, 0.5, 0.8],
                       "remaining_fraction": [0.6, 1.0, 0.2, 0.5]})
    history = hypervolume_history(df)
    assert list(history["trial"]) == [0, 1, 2, 3]
    assert history["hypervolume"].tolist() == pytest.approx([0.0, 0.4, 0.55, 0.55])


def _cloud(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rem = rng.uniform(0.02, 1.0, n)
    val = 0.95 - 0.3 * (1 - rem) ** 4 - rng.uniform(0, 0.1, n)
    return pd.DataFrame({"remaining_fraction": rem, "val_acc": val})


def test_fit_is_monotone_passes_through_the_front_and_stays_in_the_data_range():
    df = _cloud(40, seed=1)
    fit = fit_front(df, n_boot=200, seed=0, name="study")
    defined = ~np.isnan(fit.fit)
    front = pareto_front(df)
    fx, fy = front["remaining_fraction"].to_numpy(), front["val_acc"].to_numpy()
    assert np.all(np.diff(fit.fit[defined]) >= -1e-12)  # non-decreasing in remaining fraction
    assert fit.fit[defined].min() >= fy.min() - 1e-12 and fit.fit[defined].max() == fy.max()
    assert np.array_equal(defined, GRID >= fx.min())  # undefined where no trial pruned so far
    assert front_curve(df["remaining_fraction"], df["val_acc"], fx) == pytest.approx(fy)
    band = ~np.isnan(fit.lower)
    assert band.any() and np.all(fit.lower[band] <= fit.upper[band])
    assert fit.n_boot == 200 and fit.n_trials == 40


def test_band_is_deterministic_and_needs_three_trials():
    df = _cloud(12, seed=2)
    a = fit_front(df, n_boot=200, seed=0, name="s")
    b = fit_front(df, n_boot=200, seed=0, name="s")
    assert np.array_equal(a.lower, b.lower, equal_nan=True)
    assert np.array_equal(a.upper, b.upper, equal_nan=True)
    few = fit_front(df.iloc[:2], n_boot=200)
    assert few.n_boot == 0 and np.isnan(few.lower).all() and not np.isnan(few.fit).all()


def test_percentile_interval_is_the_central_95_percent():
    assert percentile_interval(np.arange(1001.0)) == (25.0, 975.0)
    assert np.isnan(percentile_interval(None)).all()
    # "outward" never interpolates: a -inf sample (a front that does not reach) stays -inf
    curves = np.array([[-np.inf, 0.1]] * 3 + [[0.5, 0.2]] * 97)
    low, high = percentile_interval(curves, axis=0, method="outward")
    assert low[0] == -np.inf and high[0] == 0.5 and list(low[1:]) == [0.1]


def test_the_analysis_uses_no_private_optuna_module():
    import analysis

    for path in Path(analysis.__file__).parent.glob("*.py"):
        assert not re.search(r"optuna(\.\w+)*\._", path.read_text()), path.name
