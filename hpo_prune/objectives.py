"""What a search optimises and compares: its two objectives and its two init regimes.

Every part that names an objective or a regime imports it from here: the studies (Optuna's
directions and metric names), the trial table, the progress view and the analysis.
"""
from __future__ import annotations

import numpy as np

__all__ = ["OBJECTIVES", "METRICS", "DIRECTIONS", "REGIMES", "FINE_TUNED", "SCRATCH",
           "CHANCE_MARGIN", "CLASSES", "TEST_CORRECT", "at_chance", "chance", "classes_of", "minimised",
           "non_dominated", "pack_correct", "unpack_correct"]

# (name, direction), in the order of an Optuna study's values
OBJECTIVES: tuple[tuple[str, str], ...] = (("val_acc", "maximize"),
                                           ("remaining_fraction", "minimize"))
METRICS: list[str] = [name for name, _ in OBJECTIVES]
DIRECTIONS: list[str] = [direction for _, direction in OBJECTIVES]

FINE_TUNED = "pretrained"  # pre-trained weights, then fine-tuned (with pruning)
SCRATCH = "scratch"        # the library's seeded init
REGIMES: tuple[str, ...] = (FINE_TUNED, SCRATCH)

# classes of the built-in datasets, for records written before every trial recorded its own
# class count (``classes`` in trials.csv and metrics.json; ``classes_of``)
CLASSES = {"digits": 10, "cifar10": 10, "svhn": 10, "cifar100": 100, "caltech101": 101}
# A trial "stayed at chance" below chance + 10 points. Why 10 points: (1) a network that
# guesses scores chance plus binomial noise, which on the smallest val split used (digits, 288
# images, 10 classes) has a standard error of 1.8 points, so 10 points is > 5 SE; (2) a network
# that collapsed to one output scores the majority class's share, above 1 / classes on
# imbalanced data (svhn: digit 1 is 18.9% of the training split; caltech101: the largest class
# is 9.2%); both stay below the line. A network 10 points above chance on a 10-class problem
# learned something; on cifar100 (chance 1%), 11% is far from trained all the same.
CHANCE_MARGIN = 0.10


def classes_of(recorded, dataset: str) -> int | None:
    """The class count of a study's trials: the one they recorded, else (a record from before
    trials recorded it) the built-in dataset's; None when neither is known."""
    if recorded is not None and np.isfinite(float(recorded)) and int(recorded) > 0:
        return int(recorded)
    return CLASSES.get(dataset)


def chance(classes: int | None) -> float:
    """1 / classes; NaN when the class count is unknown."""
    return 1.0 / classes if classes else np.nan


def at_chance(val_acc, classes: int | None) -> np.ndarray:
    """Which accuracies stayed at chance among ``classes`` classes (``classes_of``; False when
    unknown): the analysis counts them (``n_untrained``), the search does not confirm them
    beside trained baselines."""
    values = np.asarray(val_acc, dtype=float)
    limit = chance(classes) + CHANCE_MARGIN
    return values < limit if np.isfinite(limit) else np.zeros(values.shape, dtype=bool)


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


# A trial's per-image test correctness (in the test split's order), packed 8 images a byte as
# hex: 90 characters for the 360 images of digits. The verdict's interval counts the test
# set's own sampling with it (analysis.levels).
TEST_CORRECT = "test_correct"


def pack_correct(correct) -> str:
    """Hex text of a boolean vector (1 = the image was classified right)."""
    return np.packbits(np.asarray(correct, dtype=bool)).tobytes().hex()


def unpack_correct(text: str, images: int) -> np.ndarray:
    """The boolean vector of ``images`` entries that ``pack_correct`` wrote as ``text``."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))
    if len(bits) < images or bits[images:].any():
        raise ValueError(f"{TEST_CORRECT} holds {len(bits)} bits, not {images} images")
    return bits[:images].astype(bool)
