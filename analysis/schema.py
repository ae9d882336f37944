"""The trials table: the search's ``trials.csv`` columns and their types.

Every loader (``trials.csv`` or an Optuna storage) and every public function taking a
DataFrame goes through ``normalise``: one pandas DataFrame with the columns of
``hpo_prune.results.trials_table`` (the one exporter), in its order, then any other column.
Unknown values (running or failed trials) are missing (NaN / <NA>), accuracies and fractions
are in [0, 1], counts are integers, seconds are floats.
"""
from __future__ import annotations


import numpy as np
import pandas as pd

from hpo_prune.settings import TrialConfig
from hpo_prune.errors import UsageError
from hpo_prune.results.record import baselines
from hpo_prune.results.trials_table import BOOLS, COLUMNS, FLOATS, INTS, LEADING, TEXT

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")

FIXED = tuple(LEADING)  # typed here; added (empty) when a table lacks one
CONFIG_TYPES = {key: str(TrialConfig.field(key).type) for key in TrialConfig.keys()}
# what the analysis reads; a table without one of these is not the search's
REQUIRED = ("study", "trial", "state", "baseline", "regime", "val_acc", "remaining_fraction",
            "test_acc", "model", "dataset")


def column_order(columns) -> list[str]:
    """The trials table's COLUMNS, then the rest in their given order."""
    known = [c for c in COLUMNS if c in columns]
    return known + [c for c in columns if c not in known]


def _as_bool(value, where: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0", ""):
        return False
    raise UsageError(f"{where}: column baseline holds {value!r}; expected True or False")


def require(frame: pd.DataFrame, columns, where: str) -> None:
    """A one-line UsageError naming the ``columns`` that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UsageError(f"{where} lacks column(s) {', '.join(missing)}: it was not written by "
                         "python -m hpo_prune.search; pass the search's results directory")


def _with_baseline(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """A table without a baseline column gets one by the searcher's rule
    (``record.is_baseline``: unpruned, confirming no other run)."""
    if "baseline" in frame.columns or "prune_ratio" not in frame.columns:
        return frame
    _numeric(frame["prune_ratio"], "prune_ratio", where)  # a clear error for text
    if "confirms" in frame.columns:
        _numeric(frame["confirms"], "confirms", where)
    return frame.assign(baseline=baselines(frame))


def normalise(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Check the required columns and give every known column its type."""
    frame = _with_baseline(frame, where)
    require(frame, REQUIRED, where)
    df = frame.copy()
    for name in FIXED:
        if name not in df.columns:
            df[name] = np.nan
    for name in FLOATS:
        df[name] = _numeric(df[name], name, where).astype(float)
    for name in INTS:
        values = _numeric(df[name], name, where)
        if (values.dropna() % 1 != 0).any():
            raise UsageError(f"{where}: column {name} holds non-integer values; expected counts")
        df[name] = values.round().astype("Int64")
    if df["trial"].isna().any():
        raise UsageError(f"{where}: column trial has empty values; every trial needs a number")
    df["state"] = df["state"].astype(str).str.strip().str.upper()
    bad = sorted(set(df["state"]) - set(STATES))
    if bad:
        raise UsageError(f"{where}: unknown trial state(s) {', '.join(bad)}; expected one of "
                         f"{', '.join(STATES)}")
    df["baseline"] = [_as_bool(v, where) for v in df["baseline"]]
    for name in TEXT:
        df[name] = df[name].map(_text)
    for name in BOOLS:
        df[name] = _typed(df[name], "bool", name, where)
    for name in df.columns:
        if name not in FIXED:
            df[name] = _typed(df[name], CONFIG_TYPES.get(name), name, where)
    df = df[column_order(df.columns)]
    return df.sort_values(["study", "trial"], kind="stable").reset_index(drop=True)


def _numeric(column: pd.Series, name: str, where: str) -> pd.Series:
    blank = column.isna() | (column.astype(str).str.strip() == "")
    values = pd.to_numeric(column.where(~blank), errors="coerce")
    bad = values.isna() & ~blank
    if bad.any():
        example = column[bad].iloc[0]
        raise UsageError(f"{where}: column {name} holds the non-numeric value {example!r}; "
                         "expected numbers (empty where unknown)")
    return values


def _text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return str(value).strip()


def _typed(column: pd.Series, kind: str | None, name: str, where: str) -> pd.Series:
    """A config / parameter column with its TrialConfig type (inferred for other columns):
    the same values whether they come typed from Optuna or as text from trials.csv."""
    text = column.map(_text)
    filled = text[text != ""]
    if kind is None:  # a search parameter that is not a TrialConfig field
        if len(filled) and filled.isin(["True", "False"]).all():
            kind = "bool"
        elif len(filled) and filled.str.fullmatch(r"-?\d+").all():
            kind = "int"
        elif len(filled) and pd.to_numeric(filled, errors="coerce").notna().all():
            kind = "float"
        else:
            kind = "str"
    if kind == "bool":
        bad = filled[~filled.isin(["True", "False"])]
        if len(bad):
            raise UsageError(f"{where}: column {name} holds {bad.iloc[0]!r}; expected True or "
                             "False")
        return text.map({"True": True, "False": False, "": pd.NA}).astype("boolean")
    if kind in ("int", "float"):
        values = _numeric(text, name, where)
        if kind == "float":
            return values.astype(float)
        if (values.dropna() % 1 != 0).any():
            raise UsageError(f"{where}: column {name} holds non-integer values; expected "
                             "integers")
        return values.round().astype("Int64")
    return text


def completed(df: pd.DataFrame) -> pd.DataFrame:
    """COMPLETE trials with both objectives known: the trials fronts and statistics use."""
    done = df[(df["state"] == "COMPLETE") & df["val_acc"].notna()
              & df["remaining_fraction"].notna()]
    return done.reset_index(drop=True)


def state_counts(df: pd.DataFrame) -> dict[str, int]:
    counts = df["state"].value_counts()
    return {state: int(counts.get(state, 0)) for state in STATES}
