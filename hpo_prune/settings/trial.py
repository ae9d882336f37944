"""TrialConfig: the description of one trial, composed of one settings object per concern.

    config.data     DataSettings     which images, split and size
    config.net      ModelSettings    which network and head
    config.weights  SourceSettings   init regime and pre-trained source
    config.train    TrainSettings    the training recipe
    config.prune    PruneSettings    how much to remove, what and when
    config.fractal  FractalSettings  the fractal source's pre-training

Each layer takes its own part (``datasets.load(config.data)``, ``Pruner(model,
config.prune, ...)``). The records are flat: CLI flags, YAML keys, metrics.json "config",
trials.csv columns and the run hash use the fields' keys (``lr``, ``pretrain_epochs``), and
``TrialConfig(lr=..., dataset=...)`` builds one from them. Defaults are left out of the hash,
so adding a field with a default keeps every old hash. A config straight from the user holds
placeholders ('auto', 0, -1); ``hpo_prune.resolution.resolve_trial`` fills them in, once.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from ..errors import check
from .data import DataSettings
from .fields import Flags, add_flags, check_choices, coerce, flag_of, key_of
from .fractal import FractalSettings
from .model import ModelSettings, SourceSettings
from .pruning import PruneSettings
from .training import TrainSettings

__all__ = ["TrialConfig", "PARTS", "PLACEHOLDERS", "require_resolved"]

PARTS: dict[str, type] = {"data": DataSettings, "net": ModelSettings,
                          "weights": SourceSettings, "train": TrainSettings,
                          "prune": PruneSettings, "fractal": FractalSettings}
# record key -> (part, field)
_FIELDS = {key_of(f): (part, f) for part, cls in PARTS.items() for f in dataclasses.fields(cls)}
# the "use the default" values resolution fills in ('' source and 'auto' head may stay: a
# scratch run has no source, a MobileNet one head)
PLACEHOLDERS = {"optimizer": "auto", "lr": 0.0, "warmup": -1.0, "head_init": "auto",
                "augment": "auto", "criterion": "auto", "image_size": 0, "val_fraction": 0.0,
                "precision": "auto", "pretrain_epochs": -1, "pretrain_lr": 0.0}
_TITLES = {"data": "data", "model": "model and init", "train": "training", "prune": "pruning",
           "pretrain": "pre-training (the fractal source)"}


def require_resolved(who: str, *parts) -> None:
    """A ValueError naming the fields of ``parts`` that still hold a placeholder: a layer that
    reads them must not guess ('auto' is no criterion, 0 no learning rate)."""
    left = [key_of(f) for part in parts for f in dataclasses.fields(part)
            if key_of(f) in PLACEHOLDERS and getattr(part, f.name) == PLACEHOLDERS[key_of(f)]]
    if left:
        raise ValueError(f"{who} takes resolved settings (hpo_prune.resolution.resolve_trial); "
                         f"{', '.join(left)} still hold placeholders")


class TrialConfig:
    """Immutable; equal when every part is equal."""
    __slots__ = tuple(PARTS)
    data: DataSettings
    net: ModelSettings
    weights: SourceSettings
    train: TrainSettings
    prune: PruneSettings
    fractal: FractalSettings

    def __init__(self, **values: Any):
        unknown = sorted(set(values) - set(_FIELDS))
        if unknown:
            raise TypeError(f"TrialConfig has no field(s) {', '.join(unknown)}")
        own: dict[str, dict] = {part: {} for part in PARTS}
        for key, value in values.items():
            part, f = _FIELDS[key]
            own[part][f.name] = value
        for part, cls in PARTS.items():
            object.__setattr__(self, part, cls(**own[part]))

    def __setattr__(self, name, value):
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __eq__(self, other) -> bool:
        return isinstance(other, TrialConfig) and all(
            getattr(self, p) == getattr(other, p) for p in PARTS)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, p) for p in PARTS))

    def __repr__(self) -> str:
        return "TrialConfig(" + ", ".join(f"{p}={getattr(self, p)!r}" for p in PARTS) + ")"

    def __reduce__(self):  # pickles (Ray, multiprocessing) as its flat record
        return (_from_record, (self.to_dict(),))

    # ------------------------------------------------------------------ derived values
    def get(self, key: str) -> Any:
        """A field by its record key (``config.get("lr")`` is ``config.train.lr``)."""
        part, f = _FIELDS[key]
        return getattr(getattr(self, part), f.name)

    def replace(self, **changes) -> "TrialConfig":
        """This config with some fields, given by their record keys, changed (the parts
        without a change are shared: they are frozen)."""
        unknown = sorted(set(changes) - set(_FIELDS))
        if unknown:
            raise TypeError(f"TrialConfig has no field(s) {', '.join(unknown)}")
        by_part: dict[str, dict] = {}
        for key, value in changes.items():
            part, f = _FIELDS[key]
            by_part.setdefault(part, {})[f.name] = value
        new = object.__new__(TrialConfig)
        for part in PARTS:
            current = getattr(self, part)
            object.__setattr__(new, part, dataclasses.replace(current, **by_part[part])
                               if part in by_part else current)
        return new

    # ------------------------------------------------------------------ validation
    def validate(self, flags: Flags = flag_of) -> "TrialConfig":
        """Every part's own checks and the fields' fixed choices. The names registries hold
        (dataset, model, criterion, schedule) are checked where the registries live, by
        ``hpo_prune.resolution.check_names``."""
        for part in PARTS:
            check_choices(getattr(self, part), flags)
        for part in PARTS:
            getattr(self, part).check(flags)
        return self

    def require_resolved(self, who: str) -> "TrialConfig":
        """This config, if resolution left no placeholder in it (see ``require_resolved``)."""
        require_resolved(who, *(getattr(self, part) for part in PARTS))
        return self

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """The flat record: record key -> value, in the parts' order."""
        return {key: self.get(key) for key in _FIELDS}

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "config") -> "TrialConfig":
        unknown = sorted(set(values) - set(_FIELDS))
        check(not unknown, f"{where}: unknown key(s) {', '.join(unknown)}; known keys: "
              f"{', '.join(_FIELDS)}")
        return cls(**{key: coerce(_FIELDS[key][1], value, where)
                      for key, value in values.items()})

    @staticmethod
    def keys() -> list[str]:
        """Every record key, in order."""
        return list(_FIELDS)

    @staticmethod
    def field(key: str) -> dataclasses.Field:
        return _FIELDS[key][1]

    def run_hash(self) -> str:
        """Hash of the fields that change the result, defaults left out."""
        changed = {key: self.get(key) for key, (_, f) in _FIELDS.items()
                   if f.metadata["hashed"] and self.get(key) != f.default}
        blob = json.dumps(changed, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # ------------------------------------------------------------------ command line
    @classmethod
    def add_arguments(cls, parser, groups: tuple[str, ...] | None = None,
                      defaults: dict[str, Any] | None = None, skip: tuple[str, ...] = (),
                      flags: dict[str, str] | None = None) -> None:
        """Add one --flag per field (of the given groups, less the keys in `skip`) to a
        parser; `flags` renames some (key -> flag without dashes) where a command's context
        says it."""
        defaults, renamed = defaults or {}, flags or {}
        made: dict[str, Any] = {}
        for key, (_, f) in _FIELDS.items():
            group = f.metadata["group"]
            if (groups is not None and group not in groups) or key in skip:
                continue
            if group not in made:
                made[group] = parser.add_argument_group(_TITLES.get(group, group))
            add_flags(made[group], [f], defaults,
                      lambda k: renamed.get(k, flag_of(k)))

    @classmethod
    def from_args(cls, namespace) -> "TrialConfig":
        return cls(**{k: v for k, v in vars(namespace).items() if k in _FIELDS})


def _from_record(values: dict) -> TrialConfig:
    return TrialConfig(**values)
