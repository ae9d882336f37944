"""Reading the search's Optuna storage into the trials table (see ``schema``).

The storage is opened read-only (``hpo_prune.results.storage``: a wrong SQLite path is never
turned into a new, empty database) and exported by the search's own ``trials_table``. Works
while the search runs (RUNNING / WAITING trials come back with empty values) and on failed
trials.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import optuna
import pandas as pd

from hpo_prune.errors import UsageError
from hpo_prune.objectives import DIRECTIONS, METRICS
from hpo_prune.results import trials_table
from hpo_prune.results.storage import open_storage

from .schema import normalise

SEARCH = "it was not written by python -m hpo_prune.search"


def study_names(storage) -> list[str]:
    return sorted(optuna.get_all_study_names(storage=storage))


def check_study(study: optuna.Study) -> None:
    """UsageError unless ``study`` has the search's objectives, metric names and attributes."""
    directions = [d.name.lower() for d in study.directions]
    if directions != DIRECTIONS:
        raise UsageError(f"study {study.study_name} has directions {directions}, not "
                         f"[maximize val_acc, minimize remaining_fraction]: {SEARCH}")
    names = study.metric_names or METRICS
    if sorted(names) != sorted(METRICS):
        raise UsageError(f"study {study.study_name} reports {names}, not {METRICS}: {SEARCH}")
    info = trials_table.study_info(study)
    if not all(info[k] for k in ("model", "dataset", "regime")):
        raise UsageError(f"study {study.study_name} has no model / dataset / regime "
                         f"attributes: {SEARCH}")


def load_studies(url: str, names: list[str] | None = None,
                 folder: Path | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The trials of the named studies (all studies when ``names`` is None) and the names;
    ``folder``: the search's results folder, where the trials' models are looked up."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url, create=False)
    available = study_names(storage)
    if names is None:
        names = available
    unknown = [n for n in names if n not in available]
    if unknown:
        listed = ", ".join(available[:8]) + (" ..." if len(available) > 8 else "")
        raise UsageError(f"unknown study {unknown[0]!r} in {url}: use one of "
                         f"{listed or '(none: the storage holds no study)'}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        studies = [optuna.load_study(study_name=name, storage=storage) for name in names]
        for study in studies:
            check_study(study)
        frame = trials_table.frame(studies, folder)
    return normalise(frame, f"Optuna storage {url}"), list(names)
