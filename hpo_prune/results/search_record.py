"""search.json, typed: what a search is, written by the search and read once by whoever reads
it (``--resume``, the analysis, the export).

A record from an older version of the search lacks some keys; each field's default is what
those searches did (``baseline_seeds`` 1, no ``levels``, ``replicates`` 0 = unreplicated,
``keep_models`` front, precision bf16). A record that is not JSON, not an object, or holds a
value no search writes is a one-line UsageError naming the file, the value and ``fix``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import UsageError
from ..files import atomic_write
from ..settings import TrialConfig
from .files import SEARCH_FILE
from ..levels import FIRST_RUNS
from .record import DEFAULT_KEEP, KEEP_MODELS, queued_baselines

__all__ = ["SearchRecord", "StudyRecord", "read", "OLD_PRECISION"]

_RESOLVED = tuple(TrialConfig.field("precision").metadata["choices"][1:])  # no "auto"
OLD_PRECISION = "bf16"  # what searches recorded before --precision computed in


@dataclass(frozen=True)
class StudyRecord:
    """One study of the search: its name in the storage and what it holds."""
    name: str
    model: str | None = None
    dataset: str | None = None
    regime: str | None = None
    source: str | None = None
    replicate: int | None = None  # None: a search without replicates
    seed: int | None = None  # the base trial seed of its replicate


@dataclass(frozen=True)
class SearchRecord:
    name: str = ""
    model: str | None = None
    datasets: tuple[str, ...] = ()
    regimes: tuple[str, ...] = ()
    storage: str | None = None  # the Optuna storage URL
    seed: int = 0
    join: bool = False  # written by a driver run with --join
    seed_offset: int = 0  # that driver's own sampler-seed offset
    sampler: str = "tpe"
    trials: int = 0  # per study, the baselines included
    epochs: int | None = None
    baseline_seeds: int = 1
    confirm: int = 0
    levels: tuple[float, ...] = ()  # () = a continuous search (or a grid)
    replicates: int = 0  # 0 = one study per regime (no replicates)
    first_run: str = "sampler"  # a level's first run (levels.FIRST_RUNS); older: sampled
    keep_models: str = DEFAULT_KEEP
    early_stop: str | None = None
    preset: str | None = None
    space: str | None = None  # the search space file
    settings: dict = field(default_factory=dict)  # what shapes a result, compared on resume
    studies: tuple[StudyRecord, ...] = ()
    pooled: tuple[str, ...] = ()  # the analysis's: the searches pooled into this record

    @property
    def baselines(self) -> int:
        """The baseline runs each of its studies queued."""
        return queued_baselines(self.baseline_seeds, self.trials, self.sampler)

    @property
    def precision(self) -> str:
        """The precision every trial computed in."""
        return self.settings.get("precision", OLD_PRECISION)

    def to_json(self) -> dict:
        """search.json's object (tuples become JSON lists); ``pooled`` only where set."""
        out = asdict(self)
        if not self.pooled:
            del out["pooled"]
        return out

    def write(self, folder: Path) -> None:
        atomic_write(Path(folder) / SEARCH_FILE,
                     lambda tmp: tmp.write_text(json.dumps(self.to_json(), indent=2)))


def read(folder: Path, fix: str) -> SearchRecord | None:
    """The record of the search in ``folder``; None when it holds none. ``fix``: what the
    user should do about a broken record (the end of the error line)."""
    path = Path(folder) / SEARCH_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise UsageError(f"{path} is not valid JSON ({err}), so not a search record; "
                         f"{fix}") from None
    if not isinstance(data, dict) or not isinstance(data.get("studies", []), list):
        raise UsageError(f"{path} is not a search record (a JSON object with a 'studies' "
                         f"list); {fix}")
    return parse(data, f"{path}", fix)


def _count(data: dict, key: str, least: int, where: str, fix: str, default: int) -> int:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        shown = "a count >= 1" if least == 1 else "a count"
        raise UsageError(f"{where}: {key} {value!r} is not {shown}; {fix}")
    return value


def _one_of(value, key: str, choices, where: str, fix: str) -> str:
    if value not in choices:
        raise UsageError(f"{where}: {key} {value!r} is not one of {', '.join(choices)}; {fix}")
    return value


def parse(data: dict, where: str, fix: str) -> SearchRecord:
    """A SearchRecord of search.json's object ``data`` (``where``: its file, for errors)."""
    known = {f.name for f in fields(SearchRecord)}
    values = {key: value for key, value in data.items() if key in known and value is not None}
    values["baseline_seeds"] = _count(data, "baseline_seeds", 1, where, fix, 1)
    values["replicates"] = _count(data, "replicates", 0, where, fix, 0)
    for key in ("trials", "confirm", "seed", "seed_offset"):
        values[key] = _count(data, key, -math.inf if key == "seed" else 0, where, fix, 0)
    values["first_run"] = _one_of(data.get("first_run") or "sampler", "first_run",
                                  FIRST_RUNS, where, fix)
    values["keep_models"] = _one_of(data.get("keep_models", DEFAULT_KEEP), "keep_models",
                                    KEEP_MODELS, where, fix)
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise UsageError(f"{where}: settings {settings!r} is not an object; {fix}")
    _one_of(settings.get("precision", OLD_PRECISION), "precision", _RESOLVED, where, fix)
    values["settings"] = settings
    try:
        values["levels"] = tuple(float(x) for x in data.get("levels") or ())
        for key in ("datasets", "regimes", "pooled"):
            values[key] = tuple(str(x) for x in data.get(key) or ())
    except (TypeError, ValueError):
        raise UsageError(f"{where}: levels, datasets, regimes must be lists (levels of "
                         f"numbers); {fix}") from None
    studies = []
    for study in data.get("studies") or ():
        if not isinstance(study, dict) or not isinstance(study.get("name"), str):
            raise UsageError(f"{where}: study {study!r} has no name; {fix}")
        studies.append(StudyRecord(**{k: v for k, v in study.items()
                                      if k in StudyRecord.__dataclass_fields__}))
    values["studies"] = tuple(studies)
    return SearchRecord(**values)
