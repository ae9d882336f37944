"""The names of what a search's results folder holds, in one place.

``python -m hpo_prune.search`` writes RESULTS/NAME/ with SEARCH_FILE (what the search is:
``search_record``), STORAGE_FILE (the Optuna storage, unless --storage points elsewhere),
TRIALS_FILE (``trials_table``), TUNE_DIR/run-K/ (one Tune experiment per driver run, which holds
each trial's checkpoints: its ``model_dir``) and LOCK_FILE while a driver runs.
"""
from __future__ import annotations

from pathlib import Path

from ..files import MODEL_FILE

__all__ = ["SEARCH_FILE", "STORAGE_FILE", "TRIALS_FILE", "TUNE_DIR", "LOCK_FILE", "model_file"]

SEARCH_FILE = "search.json"
STORAGE_FILE = "optuna.db"
TRIALS_FILE = "trials.csv"
TUNE_DIR = "tune"
LOCK_FILE = ".driver.lock"


def model_file(model_dir: str | None, folder: Path | None) -> Path | None:
    """Where a trial's model file is (``model_dir`` is relative to the results ``folder``, or
    absolute for drivers run with --join); None when that can't be told."""
    if not model_dir:
        return None
    path = Path(model_dir)
    if not path.is_absolute():
        if folder is None:
            return None
        path = Path(folder) / path
    return path / MODEL_FILE
