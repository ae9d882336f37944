"""A study's unpruned reference, the val split it was measured on, and the "did it train" rules.

Reference: the mean val accuracy of the study's completed baseline trials (``baseline`` True:
the search runs K unpruned trials with consecutive seeds), together with their confirmation
runs if any; its sample standard deviation over those runs is the study's seed noise floor.
Their mean test accuracy is reported. An older search has one baseline trial: its values.

Val split: the number of val images every trial of the study was evaluated on, found by
loading the dataset with the trials' own data settings (``hpo_prune.data.datasets.load``) when
that is cheap and possible here; otherwise unknown (empty), never an error. One image is
``100 / val_images`` points of accuracy; the binomial standard error of the reference,
sqrt(p (1 - p) / val_images), says how much "within X points" can be resolved at all.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hpo_prune.objectives import CHANCE_MARGIN, at_chance, chance, classes_of
from hpo_prune.results.record import REFERENCE, originals
from hpo_prune.results.record import configurations as configurations_of

from .replicates import configurations

# A reference more than 20 points below the study's best configuration did not train: pruning
# removes capacity, so a pruned network that beats the unpruned one by that much means the
# unpruned runs failed (seed noise, at most a few points, is far smaller), and "within X points
# of the reference" would then call networks 20 points worse than the study's best "lossless".
NOT_TRAINED_GAP = 0.20
VAL_SETTINGS = ("dataset", "val_fraction", "split_seed", "train_subset", "data_dir",
                "image_size")


@dataclass
class Reference:
    frame: pd.DataFrame  # one row: the first reference run's, with the means as its values
    runs: pd.DataFrame  # the completed unpruned runs averaged
    val_images: int | None = None  # size of the val split (None: unknown here)
    val_images_note: str = ""  # why it is unknown
    untrained_reason: str = ""  # set when the reference did not train: why

    @property
    def row(self) -> pd.Series:
        return self.frame.iloc[0]

    @property
    def trained(self) -> bool:
        return not self.untrained_reason

    @property
    def untrained_note(self) -> str:
        return (f"headline not meaningful: the unpruned reference {self.untrained_reason}"
                if self.untrained_reason else "")

    @property
    def n(self) -> int:
        return len(self.runs)

    # the runs' means and sample standard deviations
    val_acc = property(lambda self: self._value("val_acc"))
    val_std = property(lambda self: self._value("val_acc_std"))
    test_acc = property(lambda self: self._value("test_acc"))
    test_std = property(lambda self: self._value("test_acc_std"))

    def _value(self, column: str) -> float:
        return float(self.row[column])

    @property
    def trials(self) -> list[int]:
        return sorted(int(t) for t in self.runs["trial"])

    @property
    def binomial_se(self) -> float:
        """sqrt(p (1 - p) / n_val) of the reference accuracy p; NaN when n_val is unknown."""
        if not self.val_images:
            return np.nan
        p = self.val_acc
        return math.sqrt(max(p * (1.0 - p), 0.0) / self.val_images)


def reference_runs(trials: pd.DataFrame, done: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    """The completed runs the reference averages and a note; None and why when there is none.

    The completed trials marked ``baseline`` and the runs confirming them (the configuration
    ``record.REFERENCE``); else (a table marking none) the first completed prune_ratio = 0
    trial and its confirmations."""
    marked = done[done["baseline"]]
    if len(marked):
        runs = done[configurations_of(done) == REFERENCE]
        others = trials[trials["baseline"] & (trials["state"] != "COMPLETE")]
        note = ""
        if len(others):
            states = ", ".join(f"#{int(r['trial'])} {r['state']}" for _, r in others.iterrows())
            note = (f"reference: mean of {len(marked)} completed baseline trial(s); "
                    f"not completed: {states}")
        return runs, note
    unpruned = done[done["prune_ratio"] == 0] if "prune_ratio" in done.columns else done[:0]
    if len(unpruned):
        first = int(unpruned.iloc[0]["trial"])
        runs = done[originals(done) == first]
        return runs, (f"baseline: trial #{first} (prune_ratio = 0; not marked as the "
                      "baseline)")
    marked = trials[trials["baseline"]]
    if len(marked):
        row = marked.iloc[0]
        reason = f" ({row['fail_reason']})" if row["fail_reason"] else ""
        return None, (f"baseline missing: the unpruned trial #{int(row['trial'])} is "
                      f"{row['state']}{reason}")
    return None, "baseline missing: the study has no unpruned (prune_ratio = 0) trial"


def study_classes(trials: pd.DataFrame, dataset: str) -> int | None:
    """The class count a study's trials recorded (``classes``), else, for a record from
    before they did, the built-in dataset's (``objectives.classes_of``)."""
    values = trials["classes"].dropna() if "classes" in trials.columns else []
    return classes_of(values.iloc[0] if len(values) else None, dataset)


def make_reference(runs: pd.DataFrame, best_val: float, classes: int | None) -> Reference:
    """The Reference of ``runs`` (all one configuration), judged against the study's best
    configuration mean val accuracy ``best_val`` and chance among ``classes``."""
    first = int(runs["trial"].min())
    frame = configurations(runs, pd.Series(first, index=runs.index))
    ref = Reference(frame, runs.reset_index(drop=True))
    ref.val_images, ref.val_images_note = val_images(runs)
    p = ref.val_acc
    if at_chance(p, classes):
        ref.untrained_reason = (f"stayed at chance (val {100 * p:.1f}% < chance "
                                f"{100 * chance(classes):.1f}% + {100 * CHANCE_MARGIN:g} points)")
    elif np.isfinite(best_val) and p < best_val - NOT_TRAINED_GAP:
        ref.untrained_reason = (f"did not train (val {100 * p:.1f}%, "
                                f"{100 * (best_val - p):.1f} points below the study's best "
                                f"configuration, {100 * best_val:.1f}%)")
    return ref


# ------------------------------------------------------------------------------- val split
_SIZES: dict[tuple, tuple[int | None, str]] = {}


def val_images(runs: pd.DataFrame) -> tuple[int | None, str]:
    """Size of the val split the ``runs`` were evaluated on, and why when it is unknown: as
    the trials recorded it (``val_images``), else (searches from before they did) counted by
    loading the dataset as a trial would."""
    if "val_images" in runs.columns:
        recorded = {int(v) for v in runs["val_images"] if _plain(v) is not None}
        if len(recorded) == 1:
            return recorded.pop(), ""
        if len(recorded) > 1:
            return None, "val split size unknown: the runs differ in their data settings"
    missing = [c for c in VAL_SETTINGS[:3] if c not in runs.columns]
    if missing:
        return None, f"val split size unknown: the table lacks {', '.join(missing)}"
    settings = {tuple(_plain(r.get(c)) for c in VAL_SETTINGS) for _, r in runs.iterrows()}
    if len(settings) != 1:
        return None, "val split size unknown: the runs differ in their data settings"
    key = settings.pop() + (os.environ.get("HPO_PRUNE_DATA"),)  # the default data root
    if key not in _SIZES:
        _SIZES[key] = _count(dict(zip(VAL_SETTINGS, key[:-1])))
    return _SIZES[key]


def _plain(value):
    return None if value is None or value is pd.NA or (isinstance(value, float)
                                                       and math.isnan(value)) else value


def _count(settings: dict) -> tuple[int | None, str]:
    """Load the dataset as a trial would (never downloading) and count its val split."""
    from hpo_prune.settings import TrialConfig

    name = settings["dataset"]
    kwargs = {k: v for k, v in settings.items() if v is not None and v != ""}
    for key, kind in (("val_fraction", float), ("split_seed", int), ("train_subset", int),
                      ("image_size", int)):
        if key in kwargs:
            kwargs[key] = kind(kwargs[key])
    try:
        from hpo_prune.data import datasets
        from hpo_prune.resolution import resolve_data

        config = resolve_data(TrialConfig(**kwargs, download=False).data)

        if name == "caltech101" and not _caltech_cached(datasets.data_root(config), config):
            return None, ("val split size unknown: counting it would decode every caltech101 "
                          "image (no cached copy here)")
        return len(datasets.load(config).val), ""
    except Exception as err:  # files absent here, a setting this version does not know, ...
        text = " ".join(str(err).split())[:160]
        return None, f"val split size unknown: {name} could not be loaded here ({text})"


def _caltech_cached(root: Path, config) -> bool:
    return any((root / "caltech101").glob(f"hpo_prune_{config.image_size}px.pt"))
