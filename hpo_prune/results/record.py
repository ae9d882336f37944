"""What a search records of its runs, and the rules every reader applies to that record: the
one home of what the search, the analysis and the export share.

- A *baseline* run is an unpruned run (``prune_ratio`` 0) that confirms no other run. The
  search queues ``--baseline-seeds`` of them per study and marks them (Optuna user attribute
  and trials.csv column ``baseline``, set where a trial is sampled); a table without the
  column is marked by the same rule (``baselines``).
- A *confirmation* run repeats another run with another seed: its ``confirms`` names that run.
- A *configuration* is a run together with the runs confirming it, valued at their seed means
  (``analysis.replicates``). The baseline runs, and any run confirming one, together form one
  configuration: the study's unpruned reference, keyed ``REFERENCE``.
- Early stopping never stops a baseline or a confirmation run (``always_finishes``): the
  reference and the seed means take every epoch.
- ``--keep-models front`` decides which models go (``search.keep``) and records the trials it
  removes, whatever ``--keep-models`` says, in the study's user attribute ``FRONT_REMOVES``;
  the trials table reads it back as ``front_keeps`` (True / False for COMPLETE trials, empty
  otherwise and for searches from before the record), which the export reads to say which
  setting would have kept a model.
"""
from __future__ import annotations

import math

import pandas as pd

BASELINE, CONFIRMS = "baseline", "confirms"  # trial user attributes and trials.csv columns
REFERENCE = -1  # the configuration key of the baseline runs
FRONT_REMOVES = "front_removes"  # study user attribute: trial numbers front removes
FRONT_KEEPS = "front_keeps"  # trials.csv column read from it
KEEP_MODELS = ("front", "all", "none")  # --keep-models: which trials keep their model file
DEFAULT_KEEP = "front"  # and what searches from before the flag did


def queued_baselines(baseline_seeds: int, trials: int, sampler: str = "tpe") -> int:
    """How many baseline runs a new study queues: ``--baseline-seeds``, at most its trials;
    none for a grid, which queues its grid points instead."""
    return 0 if sampler == "grid" else min(baseline_seeds, trials)


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def is_baseline(prune_ratio, confirms) -> bool:
    """An unpruned run that confirms no other run."""
    return _missing(confirms) and not _missing(prune_ratio) and float(prune_ratio) == 0


def always_finishes(prune_ratio, confirms) -> bool:
    """Runs early stopping never stops: the baselines and the confirmation runs."""
    return not _missing(confirms) or is_baseline(prune_ratio, confirms)


def confirms_of(trial) -> int | None:
    """The number of the run an Optuna trial confirms; None for a run of its own."""
    original = trial.user_attrs.get(CONFIRMS)
    return None if original is None else int(original)


def is_confirmation(trial) -> bool:
    return confirms_of(trial) is not None


def marked_baseline(trial) -> bool:
    """An Optuna trial the searcher marked as a baseline run."""
    return bool(trial.user_attrs.get(BASELINE))


def unpruned(trial) -> bool:
    """An Optuna trial that runs without pruning: a baseline, or a grid's prune_ratio 0 (also
    while it waits, its parameters fixed by the queue)."""
    params = trial.params or (getattr(trial, "system_attrs", None) or {}).get("fixed_params") \
        or {}
    return marked_baseline(trial) or params.get("prune_ratio") == 0


def configuration(number: int, confirms, baselines: set[int]) -> int:
    """The configuration a run belongs to: the number of the run it confirms, or its own;
    REFERENCE for the baseline runs (``baselines``: their numbers) and any run confirming one."""
    original = number if _missing(confirms) else int(confirms)
    return REFERENCE if original in baselines else original


def trial_configuration(trial, baselines: set[int]) -> int:
    """``configuration`` of an Optuna trial."""
    return configuration(trial.number, confirms_of(trial), baselines)


def originals(rows: pd.DataFrame) -> pd.Series:
    """The trials table's rows by the run each repeats: ``confirms`` where set, else their own
    number (baseline runs each keep theirs: ``configurations`` groups them into one)."""
    return pd.Series([configuration(int(t), c, set()) for t, c in
                      zip(rows["trial"], _confirms_column(rows))], index=rows.index, dtype=int)


def configurations(rows: pd.DataFrame) -> pd.Series:
    """The configuration key of each row of the trials table: REFERENCE for the baseline runs
    (column ``baseline``) and the runs confirming one, else ``originals``."""
    baselines = {int(t) for t, b in zip(rows["trial"], rows[BASELINE]) if b}
    return pd.Series([configuration(int(t), c, baselines) for t, c in
                      zip(rows["trial"], _confirms_column(rows))], index=rows.index, dtype=int)


def baselines(rows: pd.DataFrame) -> pd.Series:
    """``is_baseline`` of each row of a table that lacks the ``baseline`` column."""
    ratios = pd.to_numeric(rows["prune_ratio"], errors="coerce")
    return pd.Series([is_baseline(r, c) for r, c in zip(ratios, _confirms_column(rows))],
                     index=rows.index, dtype=bool)


def _confirms_column(rows: pd.DataFrame):
    if CONFIRMS not in rows.columns:
        return [None] * len(rows)
    return [None if _missing(c) or str(c).strip() == "" else int(float(c))
            for c in rows[CONFIRMS]]


def front_keeps(study_attrs: dict, trial) -> bool | None:
    """Whether ``--keep-models front`` keeps a COMPLETE trial's model (None: not COMPLETE, or
    a search from before the record)."""
    removes = study_attrs.get(FRONT_REMOVES)
    if removes is None or trial.state.name != "COMPLETE":
        return None
    return trial.number not in set(removes)
