"""Sparsity schedules: values at known points, monotonicity, window placement, bad input."""
import math

import pytest

from hpo_prune.settings import TrialConfig
from hpo_prune.errors import UsageError
from hpo_prune.pruning import SCHEDULES, sparsity_at
from hpo_prune.pruning.schedules import settings_of

T = 0.8  # target sparsity used throughout


@pytest.mark.parametrize("schedule, pos, expected", [
    ("one_shot", 0.0, T),
    ("one_shot", 0.5, T),
    ("iterative", 0.0, T / 3),
    ("iterative", 0.34, 2 * T / 3),
    ("iterative", 2 / 3, T),  # the third of three steps, despite 2/3 * 3 < 2 in floats
    ("agp", 0.0, 0.0),
    ("agp", 0.5, T + (0 - T) * 0.5 ** 3),  # s_f + (s_i - s_f)(1 - pos)^3
    ("agp", 0.25, T - T * 0.75 ** 3),
    ("one_cycle", 0.0, T * (1 + math.exp(-8)) / (1 + math.exp(6))),
    ("one_cycle", 0.5, T * (1 + math.exp(-8)) / (1 + math.exp(-1))),
    ("cos", 0.5, T / 2),
    ("cos", 0.25, T * (1 - math.cos(math.pi / 4)) / 2),
    ("lin", 0.25, T / 4),
    ("lin", 0.75, 3 * T / 4),
])
def test_known_points(schedule, pos, expected):
    assert sparsity_at(schedule, pos, T, start=0.0, end=1.0) == pytest.approx(expected, abs=1e-12)


def test_iterative_steps_setting():
    values = [sparsity_at("iterative", p / 100, 0.5, 0.0, 1.0, steps=5) for p in range(100)]
    assert sorted(set(round(v, 12) for v in values)) == [0.1, 0.2, 0.3, 0.4, 0.5]


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_monotone_bounded_and_reaching_target(schedule):
    grid = [i / 400 for i in range(401)]
    values = [sparsity_at(schedule, p, T, start=0.2, end=0.7) for p in grid]
    assert all(b >= a for a, b in zip(values, values[1:])), "sparsity must never decrease"
    assert all(0.0 <= v <= T for v in values)
    assert values[0] == 0.0  # before the window
    assert all(v == T for p, v in zip(grid, values) if p >= 0.7)  # after it: the target


def test_window_placement():
    # lin over [0.2, 0.6]: progress 0.3 is a quarter of the way through the window
    assert sparsity_at("lin", 0.3, T, start=0.2, end=0.6) == pytest.approx(T / 4)
    assert sparsity_at("lin", 0.1, T, start=0.2, end=0.6) == 0.0
    assert sparsity_at("agp", 0.6, T, start=0.2, end=0.6) == T
    assert sparsity_at("agp", 0.35, 0.0, start=0.2, end=0.6) == 0.0  # target 0: nothing


def test_settings_from_config():
    assert settings_of(TrialConfig(schedule="iterative", prune_steps=4).prune) == {"steps": 4}
    assert settings_of(TrialConfig(schedule="agp").prune) == {}


@pytest.mark.parametrize("call, words", [
    (lambda: sparsity_at("exp", 0.5, T), ["unknown schedule 'exp'", "agp"]),
    (lambda: sparsity_at("agp", 0.5, T, start=0.5, end=0.5), ["window [0.5, 0.5]"]),
    (lambda: sparsity_at("agp", 0.5, T, start=-0.1, end=0.5), ["window [-0.1, 0.5]"]),
    (lambda: sparsity_at("agp", 0.5, T, start=0.1, end=1.5), ["window [0.1, 1.5]"]),
    (lambda: sparsity_at("agp", 0.5, 1.0), ["in [0, 1)", "1.0"]),
    (lambda: sparsity_at("agp", 0.5, T, steps=3), ["no setting steps", "none"]),
    (lambda: sparsity_at("iterative", 0.5, T, steps=0), ["steps >= 1"]),
])
def test_bad_input_is_one_line_usage_error(call, words):
    with pytest.raises(UsageError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message
