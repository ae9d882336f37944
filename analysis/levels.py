"""Accuracy kept at each pruning level, and fine-tuned minus scratch per level with an interval
that uses the pairing of the design (``hpo_prune.levels``).

Per study and level: the level's search runs (COMPLETE main trials assigned that level) chose
a configuration by their **val** accuracy (``levels.choose``); its fresh-seed runs (the
confirmation runs of the chosen one) value it: the level's val and **test** accuracy are their
means, the choosing run left out, unless it was the level's only search run (it then chose
nothing, and counts with its fresh runs). "Kept" is the level's test accuracy minus the
study's reference test accuracy (the mean of its baseline runs).

Fine-tuned minus scratch at a level is

    D = mean_k (pre_k - scr_k)  -  mean_b (pre_b - scr_b)

where k runs over the seeds both regimes valued the level on (the design gives them the same
fresh seeds) and b over the baseline seeds both regimes ran (``--seed`` .. + B - 1). The two
means come from different runs, so var(D) = s_d^2 / n_d + s_e^2 / n_e, and the 95% interval is
D +- t * sqrt(var(D)) with Welch-Satterthwaite degrees of freedom (``scipy.stats.t``). Where a
regime's runs do not pair by seed (a failed run), that part uses the two regimes' runs
unpaired (their variances added). At most a handful of seeds per level: a bootstrap would
under-cover there, the t interval does not (``benchmarks/verdict_coverage.py`` measures it).
Fewer than 2 runs in a part: no interval ("insufficient runs").
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from hpo_prune.levels import LEVEL, choose, percent

LEVEL_CI = 0.95


@dataclass
class LevelValue:
    """One study's value at one level."""
    level: float
    trial: int | None  # the chosen configuration's search run (None: no completed run)
    n_search: int  # search runs that ended at the level (COMPLETE or stopped early)
    runs: pd.DataFrame  # the runs that value it: seed, val_acc, test_acc, trial
    reference_test: float = np.nan  # the study's reference test accuracy
    note: str = ""

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def val_acc(self) -> float:
        return float(self.runs["val_acc"].mean()) if self.n else np.nan

    @property
    def test_acc(self) -> float:
        return float(self.runs["test_acc"].mean()) if self.n else np.nan

    @property
    def test_std(self) -> float:
        return float(self.runs["test_acc"].std(ddof=1)) if self.n > 1 else np.nan

    @property
    def removed(self) -> float:
        """Fraction of the model's parameters removed (mean over the valued runs)."""
        return 1.0 - float(self.runs["remaining_fraction"].mean()) if self.n else np.nan

    @property
    def kept(self) -> float:
        return self.test_acc - self.reference_test


@dataclass
class LevelComparison:
    """Fine-tuned minus scratch at one level (fractions)."""
    level: float
    difference: float
    low: float
    high: float
    df: float
    n_pairs: int  # seeds paired at the level
    n_reference_pairs: int  # baseline seeds paired
    method: str  # "paired t" / "welch t"
    notes: list[str] = field(default_factory=list)


def levels_of(trials: pd.DataFrame) -> list[float]:
    """The levels a trials table's runs were assigned (empty: a continuous search)."""
    if LEVEL not in trials.columns:
        return []
    return sorted(float(x) for x in trials[LEVEL].dropna().unique())


def _runs(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[["trial", "seed", "val_acc", "test_acc", "remaining_fraction"]].reset_index(
        drop=True)


def level_values(trials: pd.DataFrame, done: pd.DataFrame, reference_test: float
                 ) -> dict[float, LevelValue]:
    """Every level of one study: ``trials`` all its trials, ``done`` the completed ones."""
    out = {}
    for level in levels_of(trials):
        main = trials[(trials[LEVEL] == level) & trials["confirms"].isna()]
        ended = int(main["state"].isin(["COMPLETE", "PRUNED"]).sum())
        search = done[(done[LEVEL] == level) & done["confirms"].isna()]
        number = choose(zip(search["trial"].astype(int), search["val_acc"].astype(float)))
        if number is None:
            out[level] = LevelValue(level, None, ended, _runs(done[:0]), reference_test,
                                    "no completed run at this level")
            continue
        fresh = done[done["confirms"] == number]
        valued = fresh if ended > 1 else pd.concat([search[search["trial"] == number], fresh])
        note = "" if len(fresh) else "its fresh-seed runs have not completed"
        out[level] = LevelValue(level, number, ended, _runs(valued), reference_test, note)
    return out


# ------------------------------------------------------------------------ the comparison
def _part(pre: pd.DataFrame, scr: pd.DataFrame) -> tuple[list[tuple], int, str]:
    """One term of D (a level, or the reference): [(values, sign)] to average, the number of
    seeds paired, and the method. Paired on the common seeds when at least 2 pair."""
    both = pre.merge(scr, on="seed", suffixes=("_pre", "_scr"))
    if len(both) >= 2:
        return [((both["test_acc_pre"] - both["test_acc_scr"]).to_numpy(float), 1.0)], \
            len(both), "paired"
    return [(pre["test_acc"].to_numpy(float), 1.0), (scr["test_acc"].to_numpy(float), -1.0)], \
        len(both), "unpaired"


def t_interval(parts: list[tuple[np.ndarray, float]], level: float = LEVEL_CI
               ) -> tuple[float, float, float, float]:
    """(estimate, low, high, df) of sum(sign * mean(values)) over independent ``parts``, with
    Welch-Satterthwaite degrees of freedom; NaN bounds when a part has fewer than 2 values."""
    estimate = float(sum(sign * np.mean(v) for v, sign in parts)) if all(
        len(v) for v, _ in parts) else np.nan
    if any(len(v) < 2 for v, _ in parts):
        return estimate, np.nan, np.nan, np.nan
    terms = [np.var(v, ddof=1) / len(v) for v, _ in parts]
    variance = float(sum(terms))
    if variance == 0:
        return estimate, estimate, estimate, np.inf
    df = variance ** 2 / sum(t ** 2 / (len(v) - 1) for t, (v, _) in zip(terms, parts))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(variance)
    return estimate, estimate - half, estimate + half, float(df)


def compare_level(pre: LevelValue, scr: LevelValue, pre_reference: pd.DataFrame,
                  scr_reference: pd.DataFrame) -> LevelComparison:
    """Fine-tuned minus scratch kept accuracy at one level (see the top); ``*_reference``: the
    baseline runs (seed, test_acc) of each study."""
    level_parts, n_pairs, how = _part(pre.runs, scr.runs)
    ref_parts, n_ref, ref_how = _part(pre_reference, scr_reference)
    parts = level_parts + [(v, -sign) for v, sign in ref_parts]
    difference, low, high, df = t_interval(parts)
    notes = []
    if np.isnan(low):
        notes.append("insufficient runs: the interval needs 2 or more valued runs per regime "
                     "(or paired seeds) at the level and 2 or more baseline runs")
    method = "paired t" if how == ref_how == "paired" else "welch t"
    return LevelComparison(pre.level, difference, low, high, df, n_pairs, n_ref, method, notes)


def verdict(c: LevelComparison, missing: str = "") -> str:
    """One line: "at 90% removed, fine-tuned keeps 52.3 points more accuracy than scratch
    (95% CI 40.1 to 60.2)"."""
    where = f"at {percent(c.level)}% removed"
    if missing:
        return f"{where}: {missing}"
    if np.isnan(c.low):
        return f"{where}: {c.notes[0] if c.notes else 'insufficient runs'}"
    ci = f"{100 * LEVEL_CI:g}% CI"
    if c.low <= 0 <= c.high:
        return (f"{where}, no clear difference (fine-tuned minus scratch "
                f"{100 * c.difference:+.1f} points, {ci} {100 * c.low:+.1f} to "
                f"{100 * c.high:+.1f})")
    if c.low > 0:
        return (f"{where}, fine-tuned keeps {100 * c.difference:.1f} points more accuracy "
                f"than scratch ({ci} {100 * c.low:.1f} to {100 * c.high:.1f})")
    return (f"{where}, scratch keeps {-100 * c.difference:.1f} points more accuracy than "
            f"fine-tuned ({ci} {-100 * c.high:.1f} to {-100 * c.low:.1f})")


def ahead(intervals) -> str:
    """One line: where one regime is clearly ahead (its interval excludes 0); ``intervals``:
    (level, low, high) of fine-tuned minus scratch."""
    groups = {"fine-tuned": [], "scratch": [], "neither": [], "unknown": []}
    for level, low, high in intervals:
        key = ("unknown" if np.isnan(low) else "fine-tuned" if low > 0 else
               "scratch" if high < 0 else "neither")
        groups[key].append(f"{percent(level)}%")
    parts = [f"{who} clearly ahead at {', '.join(where)} removed"
             for who, where in groups.items() if who in ("fine-tuned", "scratch") and where]
    if groups["neither"]:
        parts.append(f"no clear difference at {', '.join(groups['neither'])}")
    if groups["unknown"]:
        parts.append(f"no interval at {', '.join(groups['unknown'])}")
    return "; ".join(parts) or "no level to compare"
