"""The trials table: one row per trial across the studies of a search, exported from the Optuna
storage (the source of truth). The search rewrites it atomically as ``trials.csv`` as trials
finish; the analysis reads a storage through the same ``frame``.

Columns: COLUMNS (docs/search.md lists them). ``level`` is the pruning level a run of a level design
was assigned (``hpo_prune.levels``; empty for baselines and continuous searches), ``replicate``
the replicate its study belongs to (empty for searches without replicates). ``test_correct``
is the run's per-image test correctness (``objectives.pack_correct``). A trial's
measurements are the user attributes the searcher sets (MEASURED, RECORDED); its settings
come from its ``config`` attribute and its Optuna parameters (and ``seed`` from the user
attribute a queued trial carries). ``confirms`` is the number of the trial a confirmation run
repeats with another seed (``record`` holds what ``baseline`` and ``confirms`` mean).
``model_kept`` says whether the trial's model file is there (``--keep-models`` removes
dominated ones), looked up on disk when the table is made, relative to the results folder it
is given (empty without one, and for trials that never had a model); ``front_keeps`` whether
``--keep-models front`` keeps it, as the search recorded (``record.front_keeps``).
"""
from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd

from ..settings import TrialConfig
from ..files import atomic_write
from ..levels import LEVEL, REPLICATE
from ..objectives import METRICS, TEST_CORRECT
from .files import model_file
from .study_names import parse
from .record import (BASELINE, CONFIRMS, FRONT_KEEPS, confirms_of, front_keeps,
                     marked_baseline)

# user attributes the searcher copies from a trial's reports (epochs_run from its "epoch")
MEASURED = ("test_acc", "params_total", "params_remaining", "macs_dense", "macs_remaining",
            "achieved_sparsity", "requested_sparsity", "val_acc_before_pruning", "epochs_run",
            "seconds", "wall_seconds", "val_images", "test_images", "classes", TEST_CORRECT)
RUN_INFO = ("resumed_from_epoch", "params_loaded", "node")  # how it ran: in the storage only
RECORDED = ("driver", "fail_reason", "model_dir")  # what the searcher adds itself
KEPT = "model_kept"  # whether model_dir still holds the model (looked up on disk)
STUDY = ("model", "dataset", "regime", "source", REPLICATE)  # study attributes, on every row
LEADING = ["study", "trial", "state", BASELINE, CONFIRMS, LEVEL, *STUDY, METRICS[0],
           MEASURED[0], METRICS[1],
           *MEASURED[1:], *RECORDED, KEPT, FRONT_KEEPS]
CONFIG = [key for key in TrialConfig.keys() if key not in ("model", "dataset", "source")]
COLUMNS = LEADING + CONFIG
# the types of the leading columns (the trial settings' are TrialConfig's); every reader
# gives them these (analysis.schema.normalise)
FLOATS = (LEVEL, "val_acc", "remaining_fraction", "test_acc", "achieved_sparsity",
          "requested_sparsity", "val_acc_before_pruning", "seconds", "wall_seconds")
INTS = ("trial", CONFIRMS, "params_total", "params_remaining", "macs_dense", "macs_remaining",
        "epochs_run", "val_images", "test_images", "classes", REPLICATE)
TEXT = ("study", "model", "dataset", "regime", "source", "driver", "fail_reason", "model_dir",
        TEST_CORRECT)
BOOLS = (KEPT, FRONT_KEEPS)  # True / False, empty where unknown


def study_info(study: optuna.Study, attrs: dict | None = None) -> dict:
    """The study's STUDY attributes (``attrs``: its user attributes, read once by the caller);
    model, dataset and regime read from its name (``search.model.dataset.regime``) when the
    attributes are not (yet) set."""
    attrs = study.user_attrs if attrs is None else attrs
    info = {key: attrs.get(key) for key in STUDY}
    parts = parse(study.study_name)
    if not all(info[k] for k in STUDY[:3]) and parts is not None:
        info.update(model=parts.model, dataset=parts.dataset, regime=parts.regime)
    return info


def row(study: optuna.Study, info: dict, trial: optuna.trial.FrozenTrial,
        folder: Path | None = None, study_attrs: dict | None = None) -> dict:
    """One trial as a row of the table (missing values None); ``folder``: the results folder
    its model_dir is relative to; ``study_attrs``: the study's user attributes."""
    attrs = trial.user_attrs
    names = study.metric_names or METRICS
    values = dict(zip(names, trial.values)) if trial.values else {}
    out = {"study": study.study_name, "trial": trial.number, "state": trial.state.name,
           BASELINE: marked_baseline(trial), CONFIRMS: confirms_of(trial),
           LEVEL: attrs.get(LEVEL),
           **info,
           **{metric: values.get(metric) for metric in METRICS}}
    for key in MEASURED + RECORDED:
        out[key] = attrs.get(key)
    out["fail_reason"] = attrs.get("fail_reason") or trial.system_attrs.get("fail_reason")
    path = model_file(attrs.get("model_dir"), folder)
    out[KEPT] = path.is_file() if path is not None else None
    out[FRONT_KEEPS] = front_keeps(study_attrs or {}, trial)
    config = {"init": info["regime"], **(attrs.get("config") or {}), **trial.params}
    if attrs.get("seed") is not None:  # the seed a queued trial runs with (its config's, once run)
        config["seed"] = attrs["seed"]
    for key in CONFIG:
        out[key] = config.get(key)
    return out


def rows(study: optuna.Study, folder: Path | None = None) -> list[dict]:
    attrs = study.user_attrs
    info = study_info(study, attrs)
    return [row(study, info, trial, folder, attrs) for trial in study.get_trials(deepcopy=False)]


def frame(studies: list[optuna.Study], folder: Path | None = None) -> pd.DataFrame:
    """The table of every trial of ``studies``, in COLUMNS (``folder``: the results folder,
    for model_kept)."""
    data = [r for study in studies for r in rows(study, folder)]
    table = pd.DataFrame(data, columns=COLUMNS)
    table["confirms"] = table["confirms"].astype("Int64")  # a trial number, or empty
    table[KEPT] = table[KEPT].astype("boolean")
    table[FRONT_KEEPS] = table[FRONT_KEEPS].astype("boolean")
    return table


def write(path: Path, studies: list[optuna.Study]) -> pd.DataFrame:
    """Write the table to ``path`` (CSV, atomically; model_kept looked up relative to the
    folder it is in) and return it."""
    table = frame(studies, Path(path).parent)
    atomic_write(Path(path), lambda tmp: table.to_csv(tmp, index=False))
    return table
