"""One live driver per results folder.

Two drivers writing one RESULTS/NAME folder would pick the same Tune run folder
(``tune/run-K``) and overwrite each other's search.json, and a ``--resume`` started while the
first driver still runs would mark that driver's live trials interrupted. Drivers that share a
search (``--join``) therefore each use their own ``--results``; this lock turns a second driver
on a folder into a one-line error instead. It is an OS file lock, released when the driver
exits or is killed, so a dead driver never leaves the folder locked.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import UsageError
from ..results.files import LOCK_FILE



@contextlib.contextmanager
def one_driver(folder: Path):
    lock = FileLock(str(Path(folder) / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError(f"{folder} is in use by another driver of this search: wait for it, "
                         "or give this driver its own --results (with --join to share the "
                         "search's studies)") from None
    try:
        yield
    finally:
        lock.release()
