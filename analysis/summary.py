"""The headline table: one row per (model, dataset, regime) study.

Columns: the unpruned reference (the mean of the study's baseline runs: ``unpruned_val_acc``,
``unpruned_test_acc``, their seed spread and count, the first baseline ``baseline_trial``, or a
note saying why it is missing), the val split it was measured on (``val_images``, points per
image, the reference's binomial standard error); for each tolerance X in 0.5 / 1 / 2 points
the largest fraction of parameters removed within X of the reference (``removed_Xpt``, see
``selection``), its bootstrap percentile interval (``_lo`` / ``_hi``), the selected
configuration, its seeds and its test accuracy; the hypervolume (see ``fronts.REFERENCE``)
with its interval; trial counts by state, trials that stayed at chance (``n_untrained``); a
note.

A search with pruning levels (``analysis.levels``) adds, per level P (in percent), the chosen
configuration ``trial_at_P``, its valued runs' means ``val_acc_at_P``, ``test_acc_at_P``,
``test_acc_std_at_P``, their number ``n_runs_at_P`` and ``kept_at_P`` (test accuracy minus the
reference's); its ``removed_Xpt`` is then the largest level held within X points on val, a
description without an interval.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import fronts
from .fronts import DIRECTIONS, MIN_TRIALS, REFERENCE, FrontFit
from .intervals import percentile_interval
from hpo_prune.levels import figure_name, percent
from hpo_prune.results.study_names import parse

from .levels import LevelValue, level_values, levels_of
from .reference import Reference, at_chance, make_reference, reference_runs, study_classes
from .replicates import configurations, resample_seeds, visible
from .schema import STATES, completed, normalise, state_counts
from .selection import EPS, N_BOOT, TOLERANCES, Selection, selections

REF_POINT = [REFERENCE[c] for c in DIRECTIONS]
DIRS = list(DIRECTIONS.values())


def tol_label(tolerance: float) -> str:
    return f"{tolerance * 100:g}pt"


@dataclass
class StudyResult:
    name: str
    model: str
    dataset: str
    regime: str
    trials: pd.DataFrame  # every trial of the study
    pruned: pd.DataFrame  # completed pruned configurations (see replicates.configurations)
    baseline: pd.Series | None  # the reference as a configuration row (means of its runs)
    baseline_note: str
    front: pd.DataFrame
    fit: FrontFit
    hypervolume: float
    hv_replicates: np.ndarray | None
    selections: list[Selection]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    reference: Reference | None = None
    n_untrained: int = 0  # completed trials (runs) whose val accuracy stayed at chance
    levels: dict[float, LevelValue] = field(default_factory=dict)  # a level design's values
    replicate: int | None = None  # its replicate (1 .. R); None: a search without replicates

    @property
    def unit(self) -> str:
        """What pairs it with the other regime's study: its name less model, dataset and
        regime (``search`` or ``search.rN``: one search's replicate)."""
        parts = parse(self.name)
        return parts.unit if parts else self.name

    @property
    def meaningful(self) -> bool:
        """False when the reference did not train: "within X points" of it means nothing."""
        return self.reference is None or self.reference.trained

    @property
    def sufficient(self) -> bool:
        return len(self.pruned) >= MIN_TRIALS

    def hv_interval(self) -> tuple[float, float]:
        return percentile_interval(self.hv_replicates)


def _split(trials: pd.DataFrame, done: pd.DataFrame, dataset: str
           ) -> tuple[Reference | None, str, pd.DataFrame]:
    """The reference (None and why when missing) and the pruned configurations."""
    runs, note = reference_runs(trials, done)
    if runs is None:
        return None, note, configurations(done[~done["baseline"]])
    others = done.drop(index=runs.index)
    others = others[~others["baseline"]]  # further baseline runs of an unmarked reference
    pruned = configurations(others)
    best = max([float(pruned["val_acc"].max()) if len(pruned) else -np.inf,
                float(runs["val_acc"].mean())])
    return make_reference(runs, best, study_classes(trials, dataset)), note, pruned


def analyse_study(name: str, trials: pd.DataFrame, tolerances=TOLERANCES, n_boot: int = N_BOOT,
                  seed: int = 0) -> StudyResult:
    done = completed(trials)
    dataset = _first(trials, "dataset")
    ref, baseline_note, pruned = _split(trials, done, dataset)
    baseline = ref.row if ref is not None else None
    fixed = ref.frame if ref is not None else None
    reps = None
    if len(pruned) >= MIN_TRIALS and n_boot > 0:  # one set of resamples for every interval
        index = fronts.rng_for(seed, name).integers(0, len(pruned), (n_boot, len(pruned)))
        seeds = fronts.rng_for(seed, name + "/seeds")
        val, rem = resample_seeds(pruned, index, seeds)
        if ref is not None:
            ref_val, ref_rem = resample_seeds(fixed, np.zeros((n_boot, 1), dtype=int), seeds)
        else:
            ref_val, ref_rem = np.empty((n_boot, 0)), np.empty((n_boot, 0))
        reps = (np.hstack([val, ref_val]), np.hstack([rem, ref_rem]))
    fit = fronts.fit_front(pruned, fixed=fixed, n_boot=n_boot, seed=seed, name=name,
                           replicates=None if reps is None else (reps[1], reps[0]))
    levels = (level_values(trials, done, ref.test_acc if ref is not None else np.nan)
              if levels_of(trials) else {})
    if levels:  # the largest level held within X points, a description (no interval)
        sel = [_level_selection(levels, ref, tol) for tol in tolerances]
    else:
        sel = selections(pruned, baseline, tolerances,
                         None if reps is None or ref is None else
                         (reps[0][:, :-1], reps[1][:, :-1], reps[0][:, -1]))
    hv_reps = None
    if reps is not None:
        points = {"val_acc": reps[0], "remaining_fraction": reps[1]}
        stacked = np.stack([points[c] for c in DIRECTIONS], axis=-1)  # (n_boot, n + 1, 2)
        hv_reps = np.array([fronts.hypervolume(p, REF_POINT, DIRS) for p in stacked])
    configs = pd.concat([fixed, pruned]) if fixed is not None else pruned
    configs = configs.sort_values("trial", kind="stable").reset_index(drop=True)
    notes = [baseline_note] if baseline_note else []
    if ref is not None and not ref.trained:
        notes.insert(0, ref.untrained_note)
    if len(pruned) < MIN_TRIALS:  # with levels only the hypervolume's interval is missing
        notes.append(f"insufficient trials: {len(pruned)} completed pruned trial(s), "
                     f"{'the hypervolume interval needs' if levels else 'intervals need'} "
                     f"{MIN_TRIALS}")
    return StudyResult(name, _first(trials, "model"), dataset, _first(trials, "regime"),
                       trials, pruned, baseline, baseline_note,
                       visible(fronts.pareto_front(configs)), fit,
                       fronts.study_hypervolume(configs), hv_reps, sel, state_counts(trials),
                       notes, ref, int(at_chance(done["val_acc"], study_classes(trials, dataset)).sum()), levels,
                       _replicate(trials))


def _replicate(trials: pd.DataFrame) -> int | None:
    values = trials["replicate"].dropna() if "replicate" in trials.columns else []
    return int(values.iloc[0]) if len(values) else None


def _level_selection(levels: dict[float, LevelValue], ref: Reference | None,
                     tolerance: float) -> Selection:
    """The largest level whose valued val accuracy is within ``tolerance`` of the reference's
    (the reference itself, 0 removed, when none is); reported with its test accuracy."""
    if ref is None:
        return Selection(tolerance, np.nan, None, np.nan, np.nan, None)
    held = [v for v in levels.values() if v.n and v.val_acc >= ref.val_acc - tolerance - EPS]
    if not held:
        return Selection(tolerance, 0.0, ref.trials[0], ref.val_acc, ref.test_acc, None,
                         ref.test_std, ref.n)
    best = max(held, key=lambda v: v.level)
    return Selection(tolerance, best.removed, best.trial, best.val_acc, best.test_acc, None,
                     best.test_std, best.n)


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
        ref = r.reference
        row = {"model": r.model, "dataset": r.dataset, "regime": r.regime, "study": r.name,
               "replicate": r.replicate if r.replicate is not None else pd.NA,
               "baseline_trial": ref.trials[0] if ref is not None else pd.NA,
               "unpruned_val_acc": ref.val_acc if ref is not None else np.nan,
               "unpruned_test_acc": ref.test_acc if ref is not None else np.nan,
               "unpruned_val_std": ref.val_std if ref is not None else np.nan,
               "unpruned_test_std": ref.test_std if ref is not None else np.nan,
               "n_baselines": ref.n if ref is not None else 0,
               "reference_trials": " ".join(map(str, ref.trials)) if ref is not None else "",
               "reference_trained": ref.trained if ref is not None else pd.NA,
               "val_images": ref.val_images if ref is not None and ref.val_images else pd.NA,
               "val_images_note": ref.val_images_note if ref is not None else "",
               "val_resolution_points": (100.0 / ref.val_images if ref is not None
                                         and ref.val_images else np.nan),
               "reference_binomial_se": ref.binomial_se if ref is not None else np.nan}
        for s in r.selections:
            label = tol_label(s.tolerance)
            low, high = s.interval()
            row.update({f"removed_{label}": s.removed, f"removed_{label}_lo": low,
                        f"removed_{label}_hi": high,
                        f"trial_{label}": s.trial if s.trial is not None else pd.NA,
                        f"val_acc_{label}": s.val_acc, f"test_acc_{label}": s.test_acc,
                        f"test_acc_std_{label}": s.test_std, f"n_seeds_{label}": s.n_seeds})
        for value in r.levels.values():
            at = percent(value.level)
            row.update({f"trial_at_{at}": value.trial if value.trial is not None else pd.NA,
                        f"val_acc_at_{at}": value.val_acc, f"test_acc_at_{at}": value.test_acc,
                        f"test_acc_std_at_{at}": value.test_std, f"n_runs_at_{at}": value.n,
                        figure_name(value.level): value.kept})
        low, high = r.hv_interval()
        row.update({"hypervolume": r.hypervolume, "hypervolume_lo": low,
                    "hypervolume_hi": high, "n_trials": len(r.trials),
                    "n_pruned_complete": len(r.pruned),
                    "n_confirmed": int(r.pruned["confirmed"].sum()) if len(r.pruned) else 0})
        row.update({f"n_{state.lower()}": r.counts[state] for state in STATES})
        row["n_untrained"] = r.n_untrained
        row["note"] = "; ".join(r.notes)
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in [c for c in table.columns
                   if c.startswith(("trial_", "baseline_trial", "n_runs_at_"))
                   or c in ("val_images", "replicate")]:
        table[column] = table[column].astype("Int64")
    if "reference_trained" in table.columns:
        table["reference_trained"] = table["reference_trained"].astype("boolean")
    return table


def summarise(results_dir_or_df, tolerances=TOLERANCES, n_boot: int = N_BOOT,
              seed: int = 0) -> pd.DataFrame:
    """The headline table (one row per study) of a results directory or a trials table
    (e.g. ``pd.read_csv(".../trials.csv")``; see ``analyse``)."""
    if isinstance(results_dir_or_df, (str, Path)):
        from .load import load_results

        results_dir_or_df = load_results(results_dir_or_df).trials
    return summary_table(analyse(results_dir_or_df, tolerances, n_boot, seed))
