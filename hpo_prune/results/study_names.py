"""A study's name, built and read in this one place.

``SEARCH.MODEL.DATASET.REGIME``, or ``SEARCH.rN.MODEL.DATASET.REGIME`` for replicate N of a
replicated search. MODEL and DATASET come as their labels (no dots: ``library_models.label``,
``folder.label``). What pairs a study with the other regime's is its *unit*: the name less its
last three parts (``SEARCH`` or ``SEARCH.rN``).
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["StudyName", "study_name", "parse"]


class StudyName(NamedTuple):
    unit: str  # SEARCH or SEARCH.rN
    model: str
    dataset: str
    regime: str


def study_name(search: str, model: str, dataset: str, regime: str,
               replicate: int | None = None) -> str:
    prefix = search if replicate is None else f"{search}.r{replicate}"
    return f"{prefix}.{model}.{dataset}.{regime}"


def parse(name: str) -> StudyName | None:
    """The parts of a study name; None for a name of fewer than four parts (not the search's)."""
    parts = name.rsplit(".", 3)
    return StudyName(*parts) if len(parts) == 4 else None
