"""Loading a search's trials: a results directory, a ``trials.csv`` or an Optuna storage.

A results directory (written by ``python -m hpo_prune.search``; file names from
``hpo_prune.results.files``) holds ``search.json``, the Optuna storage (``optuna.db`` unless
search.json names another) and ``trials.csv``. The storage is read when it can be (it is
live: a running search shows whatever has finished); otherwise ``trials.csv``. Either way the
result is one DataFrame in the trials.csv schema.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hpo_prune.errors import UsageError
from hpo_prune.results import search_record
from hpo_prune.results.files import STORAGE_FILE, TRIALS_FILE
from hpo_prune.results.search_record import SearchRecord
from hpo_prune.results.storage import open_storage, sqlite_path

from .schema import normalise
from .storage import load_studies, study_names

NOT_A_SEARCH = "pass the results directory written by python -m hpo_prune.search"


@dataclass
class Results:
    trials: pd.DataFrame
    origin: str  # where the trials were read from, for the report
    storage: str | None = None  # Optuna storage URL of the studies (for Optuna's pages)
    studies: list[str] = field(default_factory=list)
    search: SearchRecord | None = None  # search.json, when there is one
    directory: Path | None = None
    notes: list[str] = field(default_factory=list)


def load_csv(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist; {NOT_A_SEARCH}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        message = " ".join(str(err).split()) or "empty file"
        raise UsageError(f"{path} is not a readable CSV ({message}); {NOT_A_SEARCH}") from None
    return normalise(frame, str(path))


def _storage_url(directory: Path, search: SearchRecord | None) -> str | None:
    """The storage URL: the directory's own optuna.db when it has one (so a copied or moved
    results folder reads its own copy), else search.json's (e.g. a PostgreSQL server)."""
    url = search.storage if search else None
    local = directory / STORAGE_FILE
    if local.is_file():
        return f"sqlite:///{local}"
    if url:
        path = sqlite_path(url)
        if path is None or path.is_file():
            return url
    return None


def _study_names(search: SearchRecord | None) -> list[str] | None:
    if search is None:
        return None
    return [s.name for s in search.studies if s.name] or None


def load_results(directory: str | Path, prefer: str = "auto") -> Results:
    """The trials of a results directory. ``prefer``: "auto" (storage, else trials.csv),
    "storage" or "csv"."""
    directory = Path(directory)
    if not directory.exists():
        raise UsageError(f"results directory {directory} does not exist; {NOT_A_SEARCH}")
    if not directory.is_dir():
        raise UsageError(f"{directory} is a file, not a results directory; {NOT_A_SEARCH}")
    search = search_record.read(directory, fix=NOT_A_SEARCH)
    url = _storage_url(directory, search)
    csv = directory / TRIALS_FILE
    if url is None and not csv.is_file():
        raise UsageError(f"{directory} holds neither {TRIALS_FILE} nor an Optuna storage "
                         f"({STORAGE_FILE}); {NOT_A_SEARCH}")
    if prefer == "csv" or (prefer == "auto" and url is None):
        if not csv.is_file():
            raise UsageError(f"{directory} has no {TRIALS_FILE} (the search writes it as "
                             "trials finish); use the storage instead (drop --trials-from csv)")
        trials = load_csv(csv)
        result = Results(trials, str(csv), url, sorted(set(trials["study"])), search, directory)
    else:
        if url is None:
            raise UsageError(f"{directory} has no Optuna storage ({STORAGE_FILE}); read "
                             f"{TRIALS_FILE} instead (--trials-from csv)")
        wanted = _study_names(search)
        names = wanted
        if wanted is not None:  # a study the search has not created yet has no trials yet
            present = set(study_names(open_storage(url, create=False)))
            names = [n for n in wanted if n in present]
        trials, names = load_studies(url, names, directory)
        result = Results(trials, f"Optuna storage {url}", url, names, search, directory)
        if wanted is not None and len(names) < len(wanted):
            missing = sorted(set(wanted) - set(names))
            result.notes.append(f"not started yet: {', '.join(missing)}")
    if result.trials.empty:
        raise UsageError(f"{directory} holds no trials yet: run the analysis when the search "
                         "has finished some trials")
    return result


def load_storage(url: str, studies: list[str] | None = None) -> Results:
    """The trials of the named studies of an Optuna storage (all of its studies if None)."""
    trials, names = load_studies(url, studies)
    if trials.empty:
        raise UsageError(f"the studies {', '.join(names) or '(none)'} in {url} hold no trials "
                         "yet: run the analysis when the search has finished some trials")
    return Results(trials, f"Optuna storage {url}", url, names)
