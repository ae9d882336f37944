"""The trials table: one row per trial across the studies of a search, exported from the Optuna
storage (the source of truth). The search rewrites it atomically as ``trials.csv`` as trials
finish; the analysis reads a storage through the same ``frame``.

Columns: COLUMNS (README lists them). A trial's measurements are the user attributes the
searcher sets (MEASURED, RECORDED); its settings come from its ``config`` attribute and its
Optuna parameters (and ``seed`` from the user attribute a queued trial carries). ``confirms`` is
the number of the trial a confirmation run repeats with another seed.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pandas as pd

from ..config import TrialConfig
from ..files import atomic_write
from ..objectives import METRICS

# user attributes the searcher copies from a trial's reports (epochs_run from its "epoch")
MEASURED = ("test_acc", "params_total", "params_remaining", "macs_dense", "macs_remaining",
            "achieved_sparsity", "requested_sparsity", "val_acc_before_pruning", "epochs_run",
            "seconds", "wall_seconds")
RUN_INFO = ("resumed_from_epoch", "params_loaded", "node")  # how it ran: in the storage only
RECORDED = ("driver", "fail_reason", "model_dir")  # what the searcher adds itself
STUDY = ("model", "dataset", "regime", "source")  # study attributes, on every row
LEADING = ["study", "trial", "state", "baseline", "confirms", *STUDY, METRICS[0], MEASURED[0], METRICS[1],
           *MEASURED[1:], *RECORDED]
CONFIG = [f.name for f in dataclasses.fields(TrialConfig)
          if f.name not in ("model", "dataset", "source")]
COLUMNS = LEADING + CONFIG


def study_info(study: optuna.Study) -> dict:
    """The study's STUDY attributes; model, dataset and regime read from its name
    (``search.model.dataset.regime``) when the attributes are not (yet) set."""
    attrs = study.user_attrs
    info = {key: attrs.get(key) for key in STUDY}
    parts = study.study_name.split(".")
    if not all(info[k] for k in STUDY[:3]) and len(parts) >= 4:
        info.update(model=parts[-3], dataset=parts[-2], regime=parts[-1])
    return info


def row(study: optuna.Study, info: dict, trial: optuna.trial.FrozenTrial) -> dict:
    """One trial as a row of the table (missing values None)."""
    attrs = trial.user_attrs
    names = study.metric_names or METRICS
    values = dict(zip(names, trial.values)) if trial.values else {}
    out = {"study": study.study_name, "trial": trial.number, "state": trial.state.name,
           "baseline": bool(attrs.get("baseline", False)), "confirms": attrs.get("confirms"),
           **info,
           **{metric: values.get(metric) for metric in METRICS}}
    for key in MEASURED + RECORDED:
        out[key] = attrs.get(key)
    out["fail_reason"] = attrs.get("fail_reason") or trial.system_attrs.get("fail_reason")
    config = {"init": info["regime"], **(attrs.get("config") or {}), **trial.params}
    if attrs.get("seed") is not None:  # the seed a queued trial runs with (its config's, once run)
        config["seed"] = attrs["seed"]
    for key in CONFIG:
        out[key] = config.get(key)
    return out


def rows(study: optuna.Study) -> list[dict]:
    info = study_info(study)
    return [row(study, info, trial) for trial in study.get_trials(deepcopy=False)]


def frame(studies: list[optuna.Study]) -> pd.DataFrame:
    """The table of every trial of ``studies``, in COLUMNS."""
    data = [r for study in studies for r in rows(study)]
    table = pd.DataFrame(data, columns=COLUMNS)
    table["confirms"] = table["confirms"].astype("Int64")  # a trial number, or empty
    return table


def write(path: Path, studies: list[optuna.Study]) -> pd.DataFrame:
    """Write the table to ``path`` (CSV, atomically) and return it."""
    table = frame(studies)
    atomic_write(Path(path), lambda tmp: table.to_csv(tmp, index=False))
    return table
