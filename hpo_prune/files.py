"""The names of the files a run and an export write, and how the project writes files
(atomically).

A run folder (``python -m hpo_prune.train --out``, or a search trial's final checkpoint) holds
MODEL_FILE and METRICS_FILE; an export folder (``python -m hpo_prune.export --out``) holds
MODEL_FILE, EXPORT_FILE and, with ``--format onnx``, ONNX_FILE. A search's results folder has
its own names (``hpo_prune.results.files``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["MODEL_FILE", "METRICS_FILE", "EXPORT_FILE", "ONNX_FILE", "atomic_write",
           "remove_stale_temporaries", "CACHE_ENV", "DEFAULT_CACHE", "cache_dir", "slug"]

# a run folder
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.json"
# an export folder
EXPORT_FILE = "model.json"
ONNX_FILE = "model.onnx"
# the project's cache: pre-trained checkpoints (sources.pretrain) and each machine's
# --precision auto choice (training.precision)
CACHE_ENV = "HPO_PRUNE_CACHE"
DEFAULT_CACHE = "~/.cache/hpo_prune/pretrained"


def slug(text: str, keep: str = "") -> str:
    """``text`` made safe as a file name or a part of a study name: every run of characters
    other than letters, digits, '-', '_' (and those in ``keep``) becomes one '-', and none
    leads or trails. The one rule for every name the project derives from a user's input."""
    return re.sub(f"[^A-Za-z0-9_{re.escape(keep)}-]+", "-", text).strip("-")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file and rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(path: Path) -> int:
    """Delete what atomic_write left beside ``path`` when its process was killed mid-write
    (files named for a process that no longer runs)."""
    removed = 0
    for tmp in Path(path).parent.glob(f".{Path(path).name}.tmp*"):
        pid = tmp.name.rsplit(".tmp", 1)[1]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
