"""Opening an Optuna RDB storage (sqlite:///..., postgresql://...): the one opener of the
search (which creates Optuna's tables) and the analysis (which only reads).

Every failure is a one-line UsageError naming the URL: a missing database driver, an
unreachable or foreign database, and, for a reader, an SQLite path that does not exist or is
not an Optuna storage (never turned into a new, empty database).
"""
from __future__ import annotations

import contextlib
import sqlite3
import time
import warnings
from pathlib import Path

import optuna

from ..errors import UsageError

__all__ = ["open_storage", "sqlite_path"]

OPTUNA_TABLES = {"studies", "trials", "version_info"}


def sqlite_path(url: str) -> Path | None:
    """The file of an ``sqlite:///`` URL; None for other URLs."""
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def open_storage(url: str, create: bool = True, attempts: int = 5):
    """An Optuna RDBStorage for ``url``, or a one-line UsageError.

    ``create``: the search's way (Optuna creates its tables in an empty database). Drivers
    started at the same moment on one database race to create them and all but one fail on a
    duplicate key; the tables exist once the winner is done, so the others try again.
    ``create=False``: the analysis' way; an SQLite file must already be an Optuna storage.
    """
    if not create:
        _check_sqlite(url)
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(1, attempts + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return optuna.storages.RDBStorage(url, heartbeat_interval=None)
        except (IntegrityError, ProgrammingError) as err:  # the race, or a real problem
            if attempt == attempts:
                raise _cannot_open(url, err, create) from None
            time.sleep(0.2 * attempt)
        except ImportError as err:  # Optuna wraps the driver's ModuleNotFoundError
            missing = getattr(err.__cause__, "name", None) or err.name or "its module"
            raise UsageError(f"--storage {url}: the database driver is missing ({missing}); "
                             "install it (for PostgreSQL: pip install 'psycopg[binary]' "
                             "psycopg2-binary)") from None
        except Exception as err:  # sqlalchemy / version errors: the URL is the user's input
            raise _cannot_open(url, err, create) from None


def _check_sqlite(url: str) -> None:
    """An sqlite URL must name an existing Optuna storage (read without writing to it)."""
    path = sqlite_path(url)
    if path is None:
        return
    if not path.is_file():
        raise UsageError(f"Optuna storage {url}: no such file; pass the storage URL the "
                         "search printed (e.g. sqlite:///results/NAME/optuna.db)")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            tables = {r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as err:
        raise UsageError(f"{path} is not an SQLite database ({err}); pass the optuna.db "
                         "written by python -m hpo_prune.search") from None
    if not OPTUNA_TABLES <= tables:
        raise UsageError(f"{path} is an SQLite database but not an Optuna storage; pass "
                         "the optuna.db written by python -m hpo_prune.search")


def _cannot_open(url: str, err: Exception, create: bool) -> UsageError:
    first = " ".join((str(err).strip().splitlines() or [type(err).__name__])[0].split())
    what = "--storage" if create else "the Optuna storage"
    return UsageError(f"cannot open {what} {url}: {first[:300].rstrip('.')}; check the URL "
                      "and that the database is reachable")
