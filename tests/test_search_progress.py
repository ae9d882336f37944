"""The progress view's front (hpo_prune.search.tuning.progress.front): the same Pareto rule as the
analysis (analysis.pareto_front), on (val_acc, remaining_fraction) values of trials."""
from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pandas as pd
import pytest

from analysis import pareto_front
from hpo_prune.search.tuning.progress import front


def trials(points):
    return [SimpleNamespace(values=None if p is None else list(p)) for p in points]


def analysis_front(points) -> list[tuple[float, float]]:
    """The analysis' front of the same points, in the progress view's order."""
    rows = [p for p in points if p is not None]
    df = pd.DataFrame(rows, columns=["val_acc", "remaining_fraction"])
    kept = pareto_front(df)
    return sorted(((float(a), float(r)) for a, r in
                   zip(kept.val_acc, kept.remaining_fraction)), key=lambda p: (-p[1], -p[0]))


POINTS = [
    (0.90, 0.50), (0.90, 0.50),  # an exact duplicate on the front: both kept
    (0.90, 0.60),                # same accuracy, more parameters: dominated
    (0.80, 0.50),                # same size, less accurate: dominated
    (0.95, 1.00),                # the unpruned baseline: most accurate, densest
    (0.50, 0.10), (0.40, 0.10),  # a tie on size: the less accurate one dropped
    (0.70, 0.30),
    (0.60, 0.40),                # dominated by (0.70, 0.30)
    None,                        # a PRUNED / FAIL trial: no values
    (math.nan, 0.05),            # a missing value is never on the front
]


def test_front_keeps_duplicates_drops_dominated_points_densest_first():
    assert front(trials(POINTS)) == [(0.95, 1.00), (0.90, 0.50), (0.90, 0.50), (0.70, 0.30),
                                     (0.50, 0.10)]


def test_front_agrees_with_the_analysis_on_the_same_points():
    assert front(trials(POINTS)) == analysis_front(POINTS)


@pytest.mark.parametrize("seed", range(20))
def test_front_agrees_with_the_analysis_on_random_points_with_ties(seed):
    rng = random.Random(seed)
    # coarse values, so that ties on one objective and exact duplicates are common
    points = [(rng.randint(0, 10) / 10, rng.randint(0, 10) / 10)
              for _ in range(rng.randint(1, 30))]
    assert front(trials(points)) == analysis_front(points)


def test_front_of_no_finished_trials_is_empty():
    assert front([]) == []
    assert front(trials([None, None])) == []
    assert analysis_front([]) == []
