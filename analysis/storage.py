"""Reading the search's Optuna storage into the trials table (see ``schema``).

Works while the search runs (RUNNING / WAITING trials come back with empty values) and on
failed trials. An SQLite file is checked to be an Optuna storage before Optuna opens it, so a
wrong path is never turned into a new, empty database.
"""
from __future__ import annotations

import math
import sqlite3
import warnings
from pathlib import Path

import optuna
import pandas as pd
from optuna.study import StudyDirection

from hpo_prune.errors import UsageError

from .schema import CONFIG_FIELDS, FIXED, normalise

METRICS = ["val_acc", "remaining_fraction"]
DIRECTIONS = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
ATTRS = [c for c in FIXED if c not in ("study", "number", "state", "baseline", "regime",
                                       "val_acc", "remaining_fraction", "fail_reason")]


def sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def open_storage(url: str):
    """An Optuna storage for ``url``; UsageError when it cannot be one."""
    path = sqlite_path(url)
    if path is not None:
        if not path.is_file():
            raise UsageError(f"Optuna storage {url}: no such file; pass the storage URL the "
                             "search printed (e.g. sqlite:///results/NAME/optuna.db)")
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
                tables = {r[0] for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as err:
            raise UsageError(f"{path} is not an SQLite database ({err}); pass the optuna.db "
                             "written by python -m hpo_prune.search") from None
        if not {"studies", "trials", "version_info"} <= tables:
            raise UsageError(f"{path} is an SQLite database but not an Optuna storage; pass "
                             "the optuna.db written by python -m hpo_prune.search")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as err:  # sqlalchemy / version errors: the URL is the user's input
        message = " ".join((str(err).strip().splitlines() or [""])[0].split())[:200]
        raise UsageError(f"cannot open the Optuna storage {url}: {type(err).__name__}: "
                         f"{message}; check the URL") from None


def study_names(storage) -> list[str]:
    return sorted(optuna.get_all_study_names(storage=storage))


def _study_info(study: optuna.Study) -> dict[str, str]:
    attrs = dict(study.user_attrs)
    if study.directions != DIRECTIONS:
        raise UsageError(f"study {study.study_name} has directions "
                         f"{[d.name.lower() for d in study.directions]}, not [maximize "
                         "val_acc, minimize remaining_fraction]: it was not written by "
                         "python -m hpo_prune.search")
    parts = study.study_name.split(".")
    if not all(attrs.get(k) for k in ("model", "dataset", "regime")):
        if len(parts) < 4:
            raise UsageError(f"study {study.study_name} has no model / dataset / regime "
                             "attributes: it was not written by python -m hpo_prune.search")
        attrs.update(model=parts[-3], dataset=parts[-2], regime=parts[-1])
    return attrs


def trial_row(study_name: str, info: dict, trial: optuna.trial.FrozenTrial,
              metric_index: dict[str, int]) -> dict:
    attrs = trial.user_attrs
    values = trial.values
    row = {"study": study_name, "number": trial.number, "state": trial.state.name,
           "baseline": bool(attrs.get("baseline", False)), "regime": info["regime"]}
    for metric in METRICS:
        row[metric] = values[metric_index[metric]] if values else math.nan
    for key in ATTRS:
        row[key] = attrs.get(key)
    row["fail_reason"] = str(attrs.get("fail_reason") or
                             trial.system_attrs.get("fail_reason") or "")
    row.update({k: v for k, v in attrs.items()  # attributes added after this was written
                if k not in row and k != "config" and isinstance(v, (str, int, float, bool))})
    config = dict(attrs.get("config") or {})
    if not config:  # e.g. a trial the search has not started: what Optuna knows
        config = {"model": info["model"], "dataset": info["dataset"], "init": info["regime"],
                  "source": info.get("source", "")}
    for key, value in trial.params.items():
        config.setdefault(key, value)
    for key in CONFIG_FIELDS:
        row[key] = config.pop(key, None)
    row.update({k: v for k, v in config.items() if k not in row})
    return row


def load_studies(url: str, names: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The trials of the named studies (all studies when ``names`` is None) and the names."""
    storage = open_storage(url)
    available = study_names(storage)
    if names is None:
        names = available
    unknown = [n for n in names if n not in available]
    if unknown:
        listed = ", ".join(available[:8]) + (" ..." if len(available) > 8 else "")
        raise UsageError(f"unknown study {unknown[0]!r} in {url}: use one of "
                         f"{listed or '(none: the storage holds no study)'}")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for name in names:
            study = optuna.load_study(study_name=name, storage=storage)
            info = _study_info(study)
            metric_names = study.metric_names or METRICS
            if sorted(metric_names) != sorted(METRICS):
                raise UsageError(f"study {name} reports {metric_names}, not {METRICS}: it was "
                                 "not written by python -m hpo_prune.search")
            index = {m: metric_names.index(m) for m in METRICS}
            rows += [trial_row(name, info, t, index) for t in study.get_trials(deepcopy=False)]
    frame = pd.DataFrame(rows, columns=list(FIXED) if not rows else None)
    for column in ("model", "dataset"):
        if column not in frame.columns:
            frame[column] = ""
    return normalise(frame, f"Optuna storage {url}"), list(names)
