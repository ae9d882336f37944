"""One lock per study around "count its busy trials, then ask one", across drivers.

A driver asks a new trial only while finished + running trials < target. Two drivers sharing a
study (``--join``) that count at the same instant would both see room for one more and both
ask, finishing one trial too many. On PostgreSQL a session-level advisory lock, keyed by the
study's name, makes count-and-ask one step for all drivers: the next driver counts only after
the last one's RUNNING trial is committed. PostgreSQL releases the lock itself when a driver's
connection ends, so a killed driver cannot leave the study locked.

Other storages get no lock: a single driver (SQLite, in memory) needs none, and on other
server databases a study may overshoot by at most one trial per additional driver.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Iterator


class AskLock:
    """Call it for a context manager to hold while counting and asking. Picklable (Tune
    pickles the searcher that holds it): it keeps the storage, whose engine Optuna rebuilds
    after unpickling, not the engine itself."""

    def __init__(self, storage, study_name: str):
        engine = getattr(storage, "engine", None)
        postgres = engine is not None and engine.dialect.name == "postgresql"
        self.storage = storage if postgres else None
        # a stable 64-bit key (Python's hash() differs between processes)
        digest = hashlib.sha256(study_name.encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if self.storage is None:
            yield
            return
        from sqlalchemy import text

        with self.storage.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": self.key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                conn.commit()
