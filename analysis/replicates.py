"""Seed replicates: a configuration is an original search trial together with its confirmation
runs (rows whose ``confirms`` names that trial: the same settings, another ``seed``; the rule
is ``hpo_prune.results.record``'s).

A configuration's val / test accuracy and remaining fraction are the means over its completed
runs ("seeds"), with their sample standard deviation (NaN with one seed) and ``n_seeds``;
``confirmed`` is True when it was measured on more than one seed. A table without
confirmation rows (an older search) has one configuration per trial, with its own values.

The bootstrap resamples at two levels: configurations with replacement (as trials were
before), and, inside each drawn configuration, its seeds with replacement; the drawn
configuration's value is the mean of that seed resample. With one seed per configuration the
second level changes nothing, so older tables give the same intervals as before.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from hpo_prune.results.record import originals

SEED_VALUES = ("val_acc", "remaining_fraction")  # what the bootstrap resamples, paired by seed
HIDDEN = ("_val_seeds", "_rem_seeds")  # per-seed values kept for the bootstrap (not written)
STATS = ("trial", "val_acc", "test_acc", "remaining_fraction", "val_acc_std", "test_acc_std",
         "n_seeds", "confirmed", "seed_trials", *HIDDEN)


def configurations(rows: pd.DataFrame, key: pd.Series | None = None) -> pd.DataFrame:
    """One row per configuration of the completed ``rows``, in trial-number order.

    Each row is its original trial's row (the first row of the group if the original is not
    among ``rows``), with ``trial`` = the original's number, ``val_acc``, ``test_acc`` and
    ``remaining_fraction`` = the means over the group, and the columns ``val_acc_std``,
    ``test_acc_std``, ``n_seeds``, ``confirmed`` and ``seed_trials`` (the trial numbers
    averaged, space-separated). ``key`` groups the rows differently (default:
    ``record.originals``, the run each row repeats).
    """
    key = originals(rows) if key is None else key.astype(int)
    picks, stats = [], []
    for number, group in rows.groupby(key, sort=True):
        own = group[group["trial"] == number]
        picks.append((own if len(own) else group).index[0])
        val = group["val_acc"].to_numpy(float)
        test = group["test_acc"].astype(float)
        stats.append({"trial": int(number), "val_acc": float(val.mean()),
                      "test_acc": float(test.mean()) if test.notna().any() else np.nan,
                      "remaining_fraction": float(group["remaining_fraction"].astype(float)
                                                  .mean()),
                      "val_acc_std": _std(val), "test_acc_std": _std(test.dropna().to_numpy()),
                      "n_seeds": len(group), "confirmed": len(group) > 1,
                      "seed_trials": " ".join(str(int(t)) for t in sorted(group["trial"])),
                      "_val_seeds": tuple(val),
                      "_rem_seeds": tuple(group["remaining_fraction"].to_numpy(float))})
    table = rows.loc[picks].reset_index(drop=True)
    extra = pd.DataFrame(stats, index=table.index, columns=STATS)
    for column in extra.columns:
        table[column] = extra[column]
    table["trial"] = table["trial"].astype("Int64")
    table["n_seeds"] = table["n_seeds"].astype(int) if len(table) else table["n_seeds"]
    return table


def _std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else np.nan


def visible(table: pd.DataFrame) -> pd.DataFrame:
    """The table without the per-seed columns the bootstrap uses."""
    return table.drop(columns=[c for c in HIDDEN if c in table.columns])


def resample_seeds(configs: pd.DataFrame, index: np.ndarray, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap values (val_acc, remaining_fraction), each shaped like ``index``.

    ``index[b, k]`` is the configuration drawn at position k of resample b; its value there is
    the mean of a with-replacement resample of that configuration's seeds (val_acc and
    remaining_fraction drawn from the same seeds). ``rng`` is only used when some
    configuration has more than one seed.
    """
    val = _padded(configs["_val_seeds"])
    rem = _padded(configs["_rem_seeds"])
    counts = np.array([len(v) for v in configs["_val_seeds"]], dtype=int)
    if val.shape[1] == 1:
        return val[index, 0], rem[index, 0]
    n = counts[index]  # seeds of each drawn configuration
    width = val.shape[1]
    draws = np.minimum((rng.random(index.shape + (width,)) * n[..., None]).astype(int),
                       n[..., None] - 1)
    used = np.arange(width) < n[..., None]  # a configuration with fewer seeds draws fewer
    rows = index[..., None]
    val_means = np.where(used, val[rows, draws], 0.0).sum(axis=-1) / n
    rem_means = np.where(used, rem[rows, draws], 0.0).sum(axis=-1) / n
    return val_means, rem_means


def _padded(seeds: pd.Series) -> np.ndarray:
    width = max([len(v) for v in seeds], default=1)
    out = np.full((len(seeds), width), np.nan)
    for i, values in enumerate(seeds):
        out[i, :len(values)] = values
    return out
