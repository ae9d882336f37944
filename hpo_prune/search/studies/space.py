"""Search spaces: YAML files under search_spaces/ that say what Optuna samples per trial.

    models: [vgg16, vgg16_bn]            # the models the file is for
    params:                              # sampled, in this order (define-by-run)
      prune_ratio: {type: float, low: 0.0, high: 0.95}
      schedule: {type: categorical, choices: [one_shot, agp]}
      prune_steps: {type: int, low: 2, high: 5, when: {schedule: iterative}}   # conditional
      lr: {type: float, log: true, low: 0.003, high: 0.05,
           regimes: {pretrained: {low: 0.0005, high: 0.01}},                  # per regime
           optimizers: {adamw: {low: 0.0001, high: 0.001,                     # per optimizer
                                regimes: {pretrained: {low: 0.00005, high: 0.0005}}}},
           models: {vgg16_bn: {optimizers: {adamw: {low: 0.0005, high: 0.002}}}}}  # per model
    fixed: {granularity: weight}          # the same in every trial
    grid:                                 # values of the `grid` sampler (the paper's protocol)
      prune_ratio: [0.0, 0.5, 0.8]
      lr: {scratch: [0.01], pretrained: [0.002]}

A param's ``models`` entry is merged into it first for the model being searched (the same keys
as the param: a range, ``regimes``, ``optimizers``), so one file holds each model's measured
ranges. A range is then looked up from the general one, then the regime's, then the trial's
optimizer's (sampled earlier in ``params``, set under ``fixed``, else the model family's
default), then that optimizer's regime's: each overrides what it names.
Every name is a TrialConfig key; every value is checked by the settings' own validation, so a
malformed or out-of-range file is one error naming the file, the key and what is allowed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ...library_models import is_library
from ...resolution import check_names
from ...settings import OPTIMIZERS, TrialConfig
from ...errors import UsageError
from ...objectives import REGIMES

# shipped inside the installed package (search_spaces/ at the repository's top level)
SPACES_DIR = Path(str(importlib.resources.files("search_spaces")))
GENERIC_SPACE = "generic.yaml"  # any timm / torchvision model (library_models)
DEFAULT_SPACE = {"vgg16": "vgg.yaml", "vgg16_bn": "vgg.yaml", "mobilenet_v1": "mobilenet.yaml",
                 "mobilenet_v2": "mobilenet.yaml"}
# set by the search itself for every trial of a study (its flags), never by a space: the data
# and the pre-training are prepared once per search, and the epochs bound early stopping
RESERVED = {key for key in TrialConfig.keys()
            if TrialConfig.field(key).metadata["group"] in ("data", "pretrain")} | {
    "model", "init", "source", "seed", "device", "epochs"}
TOP_KEYS = {"description", "models", "params", "fixed", "grid"}
OVERRIDES = ("regimes", "when", "optimizers", "models")  # keys of a param spec, not its range
TYPES = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"},
         "categorical": {"choices"}}


@dataclass
class SearchSpace:
    path: Path
    params: dict[str, dict]
    fixed: dict[str, Any]
    grid: dict[str, Any]

    def with_levels(self, levels: tuple[float, ...]) -> "SearchSpace":
        """This space for a search with pruning levels (``hpo_prune.levels``): ``prune_ratio``
        becomes a categorical over 0 (the baselines) and the levels, sampled first. The search
        queues every pruned trial with its level, so the sampler never draws it; Optuna's
        plots show the levels as the discrete values they are."""
        if not levels:
            return self
        if "prune_ratio" in self.fixed:
            raise UsageError(f"{self.path}: fixed.prune_ratio: a space that fixes the ratio "
                             "cannot take --levels; pass --levels none, or sample prune_ratio")
        params = {"prune_ratio": {"type": "categorical", "choices": [0.0, *levels]}}
        params.update((k, v) for k, v in self.params.items() if k != "prune_ratio")
        return dataclasses.replace(self, params=params)

    def digest(self) -> str:
        """A digest of what the space samples and fixes (not of its comments or layout):
        a resumed search must sample from the space it was started with."""
        blob = json.dumps({"params": self.params, "fixed": self.fixed, "grid": self.grid},
                          sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # ---------------------------------------------------------------- sampling
    def spec(self, name: str, regime: str, optimizer: str | None = None) -> dict:
        return _merged(self.params[name], regime, optimizer)

    def optimizer(self, values: dict[str, Any], default: str | None) -> str | None:
        """The optimizer of a trial: sampled, fixed by the space, or the family's default."""
        return values.get("optimizer", self.fixed.get("optimizer", default))

    def suggest(self, trial, regime: str, optimizer: str | None = None) -> dict[str, Any]:
        """Sample one configuration on an Optuna trial (define-by-run, conditions honoured);
        ``optimizer``: the model family's default one, whose ranges apply unless the space
        samples or fixes another."""
        values: dict[str, Any] = {}
        for name, raw in self.params.items():
            if not _holds(raw.get("when"), values):
                continue
            spec = self.spec(name, regime, self.optimizer(values, optimizer))
            kind = spec["type"]
            if kind == "categorical":
                values[name] = trial.suggest_categorical(name, spec["choices"])
            elif kind == "float":
                values[name] = trial.suggest_float(name, spec["low"], spec["high"],
                                                   log=spec.get("log", False),
                                                   step=spec.get("step"))
            else:
                values[name] = trial.suggest_int(name, spec["low"], spec["high"],
                                                 log=spec.get("log", False),
                                                 step=spec.get("step", 1))
        return values

    def suggest_grid(self, trial, regime: str) -> dict[str, Any]:
        grid = self.grid_values(regime)
        return {name: trial.suggest_categorical(name, values) for name, values in grid.items()}

    def grid_points(self, regime: str) -> list[dict[str, Any]]:
        """Every combination of the grid's values, in the file's order."""
        values = self.grid_values(regime)
        return [dict(zip(values, combo)) for combo in itertools.product(*values.values())]

    def grid_values(self, regime: str) -> dict[str, list]:
        if not self.grid:
            raise UsageError(f"{self.path}: the grid sampler needs a 'grid' section (e.g. grid: "
                             "{prune_ratio: [0.0, 0.5, 0.8]})")
        return {name: (v[regime] if isinstance(v, dict) else v) for name, v in self.grid.items()}

    def point(self, config: TrialConfig) -> dict[str, Any]:
        """The parameters this space samples, at a resolved ``config``'s values (conditions
        honoured): the point a queued trial must give to run exactly ``config``. A categorical
        whose value is not among the space's choices is an error (Optuna cannot queue it); a
        number outside its range runs as it is."""
        values: dict[str, Any] = {}
        regime = config.weights.init
        for name, raw in self.params.items():
            if not _holds(raw.get("when"), values):
                continue
            spec = self.spec(name, regime, self.optimizer(values, config.train.optimizer))
            value = config.get(name)
            if spec["type"] == "categorical" and value not in spec["choices"]:
                raise UsageError(f"{self.path}: {name} {value!r} (the model family's recipe) "
                                 f"is not among its choices {spec['choices']}: add it, or "
                                 "pass --first-run sampler")
            values[name] = value
        return values

    def baseline(self, regime: str, optimizer: str | None = None) -> dict[str, Any]:
        """Parameters of the unpruned reference trial enqueued in every study: prune_ratio 0,
        a range's middle (geometric for log ranges), a categorical's first choice."""
        values: dict[str, Any] = {}
        for name, raw in self.params.items():
            if not _holds(raw.get("when"), values):
                continue
            spec = self.spec(name, regime, self.optimizer(values, optimizer))
            if name == "prune_ratio":
                values[name] = 0.0
            elif spec["type"] == "categorical":
                values[name] = spec["choices"][0]
            elif spec.get("step") is not None or spec["type"] == "int":
                values[name] = spec["low"]
            elif spec.get("log"):
                values[name] = math.sqrt(spec["low"] * spec["high"])
            else:
                values[name] = (spec["low"] + spec["high"]) / 2
        return values


def _merged(raw: dict, regime: str, optimizer: str | None) -> dict:
    spec = {k: v for k, v in raw.items() if k not in OVERRIDES}
    spec.update((raw.get("regimes") or {}).get(regime) or {})
    by_optimizer = (raw.get("optimizers") or {}).get(optimizer) or {}
    spec.update({k: v for k, v in by_optimizer.items() if k != "regimes"})
    spec.update((by_optimizer.get("regimes") or {}).get(regime) or {})
    return spec


def _holds(when: dict | None, values: dict) -> bool:
    if not when:
        return True
    for name, wanted in when.items():
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if values.get(name) not in allowed:
            return False
    return True


def resolve_path(space: str | None, model: str) -> Path:
    name = space or DEFAULT_SPACE.get(model, GENERIC_SPACE if is_library(model) else "vgg.yaml")
    path = Path(name).expanduser()
    if path.is_file():
        return path
    for candidate in (SPACES_DIR / name, SPACES_DIR / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.name for p in SPACES_DIR.glob("*.yaml")))
    raise UsageError(f"search space {name!r} not found: pass a YAML file or one of {known}")


def load(space: str | None, model: str) -> SearchSpace:
    path = resolve_path(space, model)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise UsageError(f"{path}{where}: {problem}; the file must be plain YAML (see "
                         "search_spaces/vgg.yaml)") from None
    except OSError as err:
        raise UsageError(f"cannot read search space {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise UsageError(f"{path} is not a text file ({err.reason} at byte {err.start}); the "
                         "file must be plain YAML (see search_spaces/vgg.yaml)") from None
    return _validate(path, doc, model)


def _for_model(spec: dict, model: str) -> dict:
    """A param spec with its ``models`` entry for ``model`` merged in (nested mappings, such
    as ``optimizers`` and ``regimes``, merged key by key)."""
    def merge(base: dict, over: dict) -> dict:
        out = dict(base)
        for key, value in over.items():
            out[key] = (merge(out[key], value) if isinstance(value, dict)
                        and isinstance(out.get(key), dict) else value)
        return out

    over = (spec.get("models") or {}).get(model) or {}
    return merge({k: v for k, v in spec.items() if k != "models"}, over)


def _validate(path: Path, doc: Any, model: str = "vgg16") -> SearchSpace:
    def fail(key: str, message: str) -> UsageError:
        return UsageError(f"{path}: {key}: {message}")

    if not isinstance(doc, dict):
        raise fail("(top level)", "must be a mapping with keys params, fixed, grid")
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise fail(sorted(unknown)[0], f"unknown key; allowed: {', '.join(sorted(TOP_KEYS))}")
    fields = set(TrialConfig.keys()) - RESERVED
    params, fixed, grid = doc.get("params") or {}, doc.get("fixed") or {}, doc.get("grid") or {}
    for section, value in (("params", params), ("fixed", fixed), ("grid", grid)):
        if not isinstance(value, dict):
            raise fail(section, "must be a mapping of TrialConfig fields")
        for name in value:
            if name not in fields:
                raise fail(f"{section}.{name}", "not a searchable setting; allowed: "
                           f"{', '.join(sorted(fields))}")
    if not params and not grid:
        raise fail("params", "the space samples nothing: give params (or a grid)")
    for name in fixed:
        if name in params or name in grid:
            raise fail(f"fixed.{name}", "also sampled under params or grid: keep it in one "
                       "place")
    seen: list[str] = []
    merged_params = {}
    for name, raw in params.items():
        by_model = raw.get("models") if isinstance(raw, dict) else None
        if by_model is not None and (not isinstance(by_model, dict) or not all(
                isinstance(v, dict) for v in by_model.values())):
            raise fail(f"params.{name}.models", "must map model names to overrides (mappings "
                       "of low/high/regimes/optimizers)")
        for other in [m for m in (by_model or {}) if m != model] + [model]:
            spec = _for_model(raw, other) if isinstance(raw, dict) else raw
            _check_param(name, spec, seen, fail)
        merged_params[name] = spec
        seen.append(name)
    params = merged_params
    for name, value in fixed.items():
        _check_value(name, value, fail, f"fixed.{name}")
    for name, values in grid.items():
        per_regime = values if isinstance(values, dict) else {r: values for r in REGIMES}
        if set(per_regime) != set(REGIMES) or not all(
                isinstance(v, list) and v for v in per_regime.values()):
            raise fail(f"grid.{name}", "must be a non-empty list of values, or a mapping "
                       "scratch/pretrained -> list")
        for regime_values in per_regime.values():
            for value in regime_values:
                _check_value(name, value, fail, f"grid.{name}")
    return SearchSpace(path, params, fixed, grid)


def _check_param(name: str, spec, seen: list[str], fail) -> None:
    """One param's spec (a model's overrides merged in): its type, keys, ranges for every
    regime and optimizer, values and condition; ``seen``: the params before it."""
    key = f"params.{name}"
    if not isinstance(spec, dict) or spec.get("type") not in TYPES:
        raise fail(key, f"needs 'type' one of {', '.join(TYPES)}")
    allowed = TYPES[spec["type"]] | {"type", *OVERRIDES}
    extra = set(spec) - allowed
    if extra:
        raise fail(f"{key}.{sorted(extra)[0]}", f"unknown key; allowed for a "
                   f"{spec['type']}: {', '.join(sorted(allowed))}")
    _check_overrides(spec.get("regimes"), REGIMES, "regimes", fail, key)
    by_optimizer = spec.get("optimizers") or {}
    _check_overrides(by_optimizer, OPTIMIZERS, "optimizers", fail, key)
    for optimizer, override in by_optimizer.items():
        where = f"{key}.optimizers.{optimizer}"
        extra = set(override or {}) - (TYPES[spec["type"]] | {"regimes"})
        if extra:
            raise fail(f"{where}.{sorted(extra)[0]}", "unknown key; an optimizer's override "
                       f"takes {', '.join(sorted(TYPES[spec['type']] | {'regimes'}))}")
        _check_overrides((override or {}).get("regimes"), REGIMES, "regimes", fail, where)
    for regime in REGIMES:
        for optimizer in OPTIMIZERS:  # a trial may run with either (fixed, or default)
            where = key
            if optimizer in by_optimizer:
                where = f"{key}.optimizers.{optimizer}"
                if regime in (by_optimizer[optimizer].get("regimes") or {}):
                    where += f".regimes.{regime}"
            elif spec["type"] != "categorical" and not {"low", "high"} <= set(spec):
                raise fail(key, f"no range for optimizer {optimizer}: give low and high, "
                           f"or optimizers.{optimizer}: {{low: ..., high: ...}}")
            merged = _merged(spec, regime, optimizer)
            for value in _check_spec(name, merged, fail, where):
                _check_value(name, value, fail, where)
    when = spec.get("when")
    if when is not None:
        if not isinstance(when, dict) or not set(when) <= set(seen):
            raise fail(f"{key}.when", "must map earlier params to the value(s) that enable "
                       f"this one; earlier params: {', '.join(seen) or 'none'}")


def _check_overrides(overrides, accepted, what: str, fail, key) -> None:
    if overrides is None:
        return
    if not isinstance(overrides, dict) or set(overrides) - set(accepted) or not all(
            isinstance(v, dict) for v in overrides.values()):
        raise fail(f"{key}.{what}", f"must map {what} ({', '.join(accepted)}) to overrides "
                   "(mappings of low/high/...)")


def _check_spec(name, spec, fail, key) -> list:
    kind = spec["type"]
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise fail(f"{key}.choices", "must be a non-empty list")
        return choices
    low, high = spec.get("low"), spec.get("high")
    number = int if kind == "int" else (int, float)
    for bound, value in (("low", low), ("high", high)):
        if not isinstance(value, number) or isinstance(value, bool):
            raise fail(f"{key}.{bound}", f"must be a{'n int' if kind == 'int' else ' number'}")
    if not low < high:
        raise fail(key, f"empty range: low ({low}) must be < high ({high})")
    if spec.get("log") and low <= 0:
        raise fail(f"{key}.low", "must be > 0 for a log range")
    if not isinstance(spec.get("log", False), bool):
        raise fail(f"{key}.log", "must be true or false")
    return [low, high]


def _check_value(name, value, fail, key) -> None:
    try:
        check_names(TrialConfig.from_dict({name: value}, where=key).validate())
    except UsageError as err:
        raise fail(key, f"value {value!r} not allowed: {err}") from None
