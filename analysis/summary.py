"""The headline table: one row per (model, dataset, regime) study.

Columns: the unpruned baseline (its trial, val and test accuracy, or a note saying why it is
missing); for each tolerance X in 0.5 / 1 / 2 points the largest fraction of parameters removed
within X of the unpruned val accuracy (``removed_Xpt``, see ``selection``), its bootstrap 95%
interval (``_lo`` / ``_hi``), the selected trial and its test accuracy; the hypervolume (see
``fronts.REFERENCE``) with its interval; trial counts by state; a note.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import fronts
from .fronts import DIRECTIONS, MIN_TRIALS, REFERENCE, FrontFit
from .intervals import percentile_interval
from .schema import STATES, completed, normalise, state_counts
from .selection import N_BOOT, TOLERANCES, Selection, selections


def tol_label(tolerance: float) -> str:
    return f"{tolerance * 100:g}pt"


@dataclass
class StudyResult:
    name: str
    model: str
    dataset: str
    regime: str
    trials: pd.DataFrame  # every trial of the study
    pruned: pd.DataFrame  # completed trials other than the baseline
    baseline: pd.Series | None
    baseline_note: str
    front: pd.DataFrame
    fit: FrontFit
    hypervolume: float
    hv_replicates: np.ndarray | None
    selections: list[Selection]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def sufficient(self) -> bool:
        return len(self.pruned) >= MIN_TRIALS

    def hv_interval(self) -> tuple[float, float]:
        return percentile_interval(self.hv_replicates)


def _baseline(trials: pd.DataFrame, done: pd.DataFrame) -> tuple[pd.Series | None, str]:
    """The reference trial: the first completed trial marked as the baseline, else the first
    completed prune_ratio = 0 trial (a grid search's); None and why when there is none."""
    usable = done[done["baseline"]]
    if len(usable):
        row = usable.iloc[0]
        note = (f"{len(usable)} completed baseline trials; #{int(row['trial'])} is the "
                "reference" if len(usable) > 1 else "")
        return row, note
    unpruned = done[done["prune_ratio"] == 0] if "prune_ratio" in done.columns else done[:0]
    if len(unpruned):
        row = unpruned.iloc[0]
        return row, (f"baseline: trial #{int(row['trial'])} (prune_ratio = 0; not marked as "
                     "the baseline)")
    marked = trials[trials["baseline"]]
    if len(marked):
        row = marked.iloc[0]
        reason = f" ({row['fail_reason']})" if row["fail_reason"] else ""
        return None, (f"baseline missing: the unpruned trial #{int(row['trial'])} is "
                      f"{row['state']}{reason}")
    return None, "baseline missing: the study has no unpruned (prune_ratio = 0) trial"


def analyse_study(name: str, trials: pd.DataFrame, tolerances=TOLERANCES, n_boot: int = N_BOOT,
                  seed: int = 0) -> StudyResult:
    done = completed(trials)
    baseline, baseline_note = _baseline(trials, done)
    pruned = done[done["trial"] != baseline["trial"]] if baseline is not None else done
    pruned = pruned[~pruned["baseline"]].reset_index(drop=True)
    fixed = baseline.to_frame().T if baseline is not None else None
    fit = fronts.fit_front(pruned, fixed=fixed, n_boot=n_boot, seed=seed, name=name)
    index = None
    if len(pruned) >= MIN_TRIALS and n_boot > 0:  # the same resamples as the band's
        index = fronts.rng_for(seed, name).integers(0, len(pruned), (n_boot, len(pruned)))
    sel = selections(pruned, baseline, tolerances, index)
    hv_reps = None
    columns, dirs = list(DIRECTIONS), list(DIRECTIONS.values())
    base_points = (baseline[columns].to_numpy(float)[None] if baseline is not None
                   else np.empty((0, len(columns))))
    if index is not None:
        points = pruned[columns].to_numpy(float)
        ref = [REFERENCE[c] for c in columns]
        hv_reps = np.array([fronts.hypervolume(np.vstack([points[i], base_points]), ref, dirs)
                            for i in index])
    notes = [baseline_note] if baseline_note else []
    if len(pruned) < MIN_TRIALS:
        notes.append(f"insufficient trials: {len(pruned)} completed pruned trial(s), "
                     f"intervals need {MIN_TRIALS}")
    return StudyResult(name, _first(trials, "model"), _first(trials, "dataset"),
                       _first(trials, "regime"), trials, pruned,
                       baseline, baseline_note, fronts.pareto_front(done), fit,
                       fronts.study_hypervolume(done), hv_reps, sel, state_counts(trials),
                       notes)


def _first(trials: pd.DataFrame, column: str) -> str:
    """The study's value of a column that running or failed trials may leave empty."""
    values = [v for v in trials[column] if v]
    return values[0] if values else "?"


def analyse(df: pd.DataFrame, tolerances=TOLERANCES, n_boot: int = N_BOOT, seed: int = 0
            ) -> list[StudyResult]:
    """Every study of a trials table (checked and typed by ``schema.normalise``; a missing
    baseline column is derived from prune_ratio = 0), sorted by model, dataset and regime."""
    df = normalise(df, "the trials table")
    results = [analyse_study(name, group.reset_index(drop=True), tolerances, n_boot, seed)
               for name, group in df.groupby("study", sort=True)]
    return sorted(results, key=lambda r: (r.model, r.dataset, r.regime, r.name))


def summary_table(results: list[StudyResult]) -> pd.DataFrame:
    rows = []
    for r in results:
        b = r.baseline
        row = {"model": r.model, "dataset": r.dataset, "regime": r.regime, "study": r.name,
               "baseline_trial": int(b["trial"]) if b is not None else pd.NA,
               "unpruned_val_acc": float(b["val_acc"]) if b is not None else np.nan,
               "unpruned_test_acc": float(b["test_acc"]) if b is not None else np.nan}
        for s in r.selections:
            label = tol_label(s.tolerance)
            low, high = s.interval()
            row.update({f"removed_{label}": s.removed, f"removed_{label}_lo": low,
                        f"removed_{label}_hi": high,
                        f"trial_{label}": s.trial if s.trial is not None else pd.NA,
                        f"val_acc_{label}": s.val_acc, f"test_acc_{label}": s.test_acc})
        low, high = r.hv_interval()
        row.update({"hypervolume": r.hypervolume, "hypervolume_lo": low,
                    "hypervolume_hi": high, "n_trials": len(r.trials),
                    "n_pruned_complete": len(r.pruned)})
        row.update({f"n_{state.lower()}": r.counts[state] for state in STATES})
        row["note"] = "; ".join(r.notes)
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in [c for c in table.columns if c.startswith(("trial_", "baseline_trial"))]:
        table[column] = table[column].astype("Int64")
    return table


def summarise(results_dir_or_df, tolerances=TOLERANCES, n_boot: int = N_BOOT,
              seed: int = 0) -> pd.DataFrame:
    """The headline table (one row per study) of a results directory or a trials table
    (e.g. ``pd.read_csv(".../trials.csv")``; see ``analyse``)."""
    if isinstance(results_dir_or_df, (str, Path)):
        from .load import load_results

        results_dir_or_df = load_results(results_dir_or_df).trials
    return summary_table(analyse(results_dir_or_df, tolerances, n_boot, seed))
