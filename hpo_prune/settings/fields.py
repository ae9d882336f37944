"""What every settings class is made of: fields that carry their help text, accepted values,
whether they change a result (``hashed``) and their key in the flat records (metrics.json
"config", trials.csv, YAML spaces); their flags, their types.

A settings class is a frozen dataclass of ``option`` fields; a field's ``key`` is its name
unless it says otherwise (the fractal pre-training's ``epochs`` is ``pretrain_epochs`` in a
trial's record). Nothing here imports a registry: names are checked against their registries
where those live, when a trial's settings are resolved (``hpo_prune.resolution``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any, Callable

from ..errors import UsageError, check

__all__ = ["option", "key_of", "flag_of", "add_flags", "check_choices", "coerce", "Flags"]

Flags = Callable[[str], str]  # a field's key -> its flag in the command at hand (no dashes)


def option(default, help: str, choices: tuple | None = None, hashed: bool = True,
           group: str = "trial", key: str | None = None):
    return field(default=default, metadata={"help": help, "choices": choices,
                                            "hashed": hashed, "group": group, "key": key})


def key_of(f: dataclasses.Field) -> str:
    """The field's name in the flat records."""
    return f.metadata.get("key") or f.name


def flag_of(key: str) -> str:
    """The flag of a record key, without dashes: lr_schedule -> lr-schedule."""
    return key.replace("_", "-")


def check_choices(settings, flags: Flags = flag_of) -> None:
    """Every field of ``settings`` with fixed choices holds one of them."""
    for f in dataclasses.fields(settings):
        choices, value = f.metadata.get("choices"), getattr(settings, f.name)
        check(choices is None or value in choices, f"unknown {key_of(f)} {value!r}: use one "
              f"of {', '.join(map(str, choices or ()))} (--{flags(key_of(f))})")


def coerce(f: dataclasses.Field, value: Any, where: str) -> Any:
    """``value`` read from a file as the field's type, or a UsageError naming ``where``."""
    kind = str(f.type)
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            raise ValueError
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {key_of(f)} must be of type {kind}, got {value!r}") \
            from None


def add_flags(group, fields: list[dataclasses.Field], defaults: dict[str, Any],
              flags: Flags) -> None:
    """One --flag per field on an argparse group; ``dest`` is the field's record key."""
    for f in fields:
        key = key_of(f)
        kwargs: dict[str, Any] = {"dest": key, "default": defaults.get(key, f.default)}
        if f.type in ("bool", bool):
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = {"int": int, "float": float}.get(str(f.type), str)
            kwargs["metavar"] = key.upper()
        help_text = f.metadata["help"]
        choices = f.metadata.get("choices")
        if choices is not None:
            help_text += f" {{{', '.join(map(str, choices))}}}"
        if not kwargs.get("action"):
            help_text += " (default: %(default)s)"
        group.add_argument(f"--{flags(key)}", help=help_text.replace("%", "%%")
                           .replace("%%(default)s", "%(default)s"), **kwargs)
