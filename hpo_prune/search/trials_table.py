"""trials.csv: one row per trial across all studies of a search, exported from the Optuna
storage (the source of truth) and rewritten atomically as trials finish."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pandas as pd

from ..files import atomic_write
from ..config import TrialConfig

LEADING = ["study", "trial", "state", "baseline", "model", "dataset", "regime", "source",
           "val_acc", "test_acc", "remaining_fraction", "params_total", "params_remaining",
           "macs_dense", "macs_remaining", "achieved_sparsity", "requested_sparsity",
           "val_acc_before_pruning", "epochs_run", "seconds", "wall_seconds", "driver",
           "fail_reason", "model_dir"]
CONFIG = [f.name for f in dataclasses.fields(TrialConfig)
          if f.name not in ("model", "dataset", "source")]
COLUMNS = LEADING + CONFIG


def rows(study: optuna.Study) -> list[dict]:
    out = []
    attrs = study.user_attrs
    for trial in study.get_trials(deepcopy=False):
        config = {**trial.user_attrs.get("config", {}), **trial.params}
        values = trial.values or [None, None]
        row = {"study": study.study_name, "trial": trial.number, "state": trial.state.name,
               "baseline": bool(trial.user_attrs.get("baseline", False)),
               "model": attrs.get("model"), "dataset": attrs.get("dataset"),
               "regime": attrs.get("regime"), "source": attrs.get("source"),
               "val_acc": values[0], "remaining_fraction": values[1]}
        for key in LEADING:
            if key not in row:
                row[key] = trial.user_attrs.get(key)
        for key in CONFIG:
            row[key] = config.get(key)
        out.append(row)
    return out


def frame(studies: list[optuna.Study]) -> pd.DataFrame:
    data = [row for study in studies for row in rows(study)]
    return pd.DataFrame(data, columns=COLUMNS)


def write(path: Path, studies: list[optuna.Study]) -> pd.DataFrame:
    table = frame(studies)
    atomic_write(Path(path), lambda tmp: table.to_csv(tmp, index=False))
    return table
