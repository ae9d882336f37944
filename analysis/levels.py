"""Accuracy kept at each pruning level, and fine-tuned minus scratch per level with an interval
over independent replicates of the whole pipeline (``hpo_prune.levels``).

Per study and level: the level's search runs (COMPLETE main trials assigned that level) chose
a configuration by their **val** accuracy (``levels.choose``); its fresh-seed runs (the
confirmation runs of the chosen one) value it: the level's val and **test** accuracy are their
means, the choosing run left out, unless it was the level's only search run (it then chose
nothing, and counts with its fresh runs). "Kept" is the level's test accuracy minus the
study's reference test accuracy (the mean of its baseline runs).

**The estimand.** A search with ``--replicates R`` runs the design R times per regime, each
replicate with its own baselines, sampler seed and trial seeds (shared by the two regimes of
the replicate, nothing shared between replicates), all fine-tuning from the same pre-trained
checkpoint. Per replicate r and level, D_r = kept(fine-tuned) - kept(scratch). The verdict is
about E[D]: the expected difference in accuracy kept when each regime is tuned by the design's
runs per level, over the configuration draws (none for a level's recipe run, ``--first-run
recipe``), the choice among them, the seeds, the reference, and the test images (drawn from
the same population as the test split).

**The interval.** D = mean_r D_r, with variance s^2 / R (s: the sample standard deviation of
the D_r, which carry every source above except the test images, fixed across replicates)
plus the test set's own sampling: D is the mean over the N test images of a per-image score
d_i (each run's correctness at image i, with the weights that make D), so that term is
var(d_i) / N. The 95% interval is D +- t * se with Welch-Satterthwaite degrees of freedom (the
replicate term has R - 1, the image term N - 1). Without per-image correctness (searches from
before it was stored) the image term is left out and the row says so.

**Several levels.** The pre-specified primary level is 80% (``levels.PRIMARY``, the reference
study's), tested at 5%; the other levels are Holm-adjusted among themselves (all levels when
80% is not one of them): a level is named only when its Holm-adjusted p-value is below 5%, and
its interval is at the Holm step's confidence 1 - 0.05 / (m - j) (j its rank among the m
adjusted levels, smallest p first).

**Failed runs.** A replicate enters a level only when both of its regimes valued the level (at
least one completed valued run each) and both have a trained reference (a completed baseline
above chance); otherwise it is dropped at that level *from both regimes*, so the pairing and
the estimand stay, and the row lists it. Fewer than 2 replicates left, or a zero variance:
no verdict (the row says why), never a zero-width interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from hpo_prune.levels import LEVEL, PRIMARY, choose, percent, planned_runs
from hpo_prune.objectives import TEST_CORRECT, unpack_correct
from hpo_prune.results.search_record import SearchRecord

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
    """Fine-tuned minus scratch at one level over replicates (fractions)."""
    level: float
    difference: float  # mean over replicates of kept(fine-tuned) - kept(scratch)
    raw_difference: float  # the same of the level's test accuracies (no reference)
    low: float
    high: float
    df: float
    n_replicates: int  # replicates paired at the level
    primary: bool = False
    p_value: float = np.nan
    p_adjusted: float = np.nan  # Holm's, among the non-primary levels (primary: p_value)
    confidence: float = LEVEL_CI  # of [low, high]
    replicate_se: float = np.nan  # sqrt(s^2 / R)
    image_se: float = np.nan  # sqrt(var(d_i) / N); NaN: per-image correctness not stored
    dropped: list[str] = field(default_factory=list)  # "r2: no valued scratch run"
    used: list[str] = field(default_factory=list)  # the labels of the replicates that entered
    notes: list[str] = field(default_factory=list)

    @property
    def named(self) -> str:
        """The regime the verdict names ("fine-tuned", "scratch"), "neither" for no clear
        difference, "" for no verdict."""
        if np.isnan(self.low):
            return ""
        if self.p_adjusted >= 1 - LEVEL_CI or self.low <= 0 <= self.high:
            return "neither"
        return "fine-tuned" if self.difference > 0 else "scratch"


def levels_of(trials: pd.DataFrame) -> list[float]:
    """The levels a trials table's runs were assigned (empty: a continuous search)."""
    if LEVEL not in trials.columns:
        return []
    return sorted(float(x) for x in trials[LEVEL].dropna().unique())


def _runs(rows: pd.DataFrame) -> pd.DataFrame:
    columns = ["trial", "seed", "val_acc", "test_acc", "remaining_fraction", "test_images",
               TEST_CORRECT]
    return rows[[c for c in columns if c in rows.columns]].reset_index(drop=True)


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
@dataclass
class Arm:
    """One regime of one replicate: its value at the level and its reference runs (None: no
    trained reference, ``why`` says so)."""
    value: LevelValue | None
    reference: pd.DataFrame | None
    why: str = ""

    def unusable(self, regime: str) -> str:
        if self.reference is None:
            return f"{regime}: {self.why or 'no completed baseline'}"
        if self.value is None or not self.value.n:
            return f"{regime}: no valued run at the level"
        return ""

    @property
    def kept(self) -> float:
        return self.value.test_acc - float(self.reference["test_acc"].mean())

    def image_scores(self) -> np.ndarray | None:
        """Per test image: the level runs' mean correctness minus the reference runs' (its
        mean is ``kept``); None without stored per-image correctness."""
        level, reference = _correct(self.value.runs), _correct(self.reference)
        if level is None or reference is None or level.shape[1] != reference.shape[1]:
            return None
        return level.mean(axis=0) - reference.mean(axis=0)


def _correct(runs: pd.DataFrame) -> np.ndarray | None:
    """(runs, images) per-image correctness, or None where a run lacks it."""
    if TEST_CORRECT not in runs.columns or "test_images" not in runs.columns or not len(runs):
        return None
    rows = []
    for text, images in zip(runs[TEST_CORRECT], runs["test_images"]):
        if not isinstance(text, str) or not text or pd.isna(images):
            return None
        rows.append(unpack_correct(text, int(images)))
    if len({len(r) for r in rows}) != 1:
        return None
    return np.vstack(rows).astype(float)


def compare_level(level: float, replicates: list[tuple[str, Arm, Arm]]) -> LevelComparison:
    """Fine-tuned minus scratch at ``level`` over ``replicates`` (label, fine-tuned arm,
    scratch arm), unadjusted (``adjust`` sets the primary level and Holm's): see the top."""
    kept, raw, scores, dropped, used = [], [], [], [], []
    for label, pre, scr in replicates:
        why = pre.unusable("fine-tuned") or scr.unusable("scratch")
        if why:
            dropped.append(f"{label}: {why}")
            continue
        used.append(label)
        kept.append(pre.kept - scr.kept)
        raw.append(pre.value.test_acc - scr.value.test_acc)
        a, b = pre.image_scores(), scr.image_scores()
        scores.append(None if a is None or b is None or a.shape != b.shape else a - b)
    n = len(kept)
    c = LevelComparison(level, float(np.mean(kept)) if n else np.nan,
                        float(np.mean(raw)) if n else np.nan, np.nan, np.nan, np.nan, n,
                        dropped=dropped, used=used)
    if n < 2:
        c.notes.append(f"no verdict: {n} replicate(s) valued the level in both regimes; an "
                       "interval about the regimes needs 2 or more (--replicates)")
        return c
    between = float(np.var(kept, ddof=1)) / n
    images = 0
    if all(x is not None for x in scores) and len({x.shape for x in scores}) == 1:
        d = np.mean(scores, axis=0)
        images = len(d)
        c.image_se = math.sqrt(float(np.var(d, ddof=1)) / images) if images > 1 else np.nan
    else:
        c.notes.append("the test set's sampling is not counted: some runs lack their "
                       "per-image test correctness")
    within = 0.0 if np.isnan(c.image_se) else c.image_se ** 2
    c.replicate_se = math.sqrt(between)
    variance = between + within
    if variance <= 0:
        c.notes.append("no verdict: the replicates' differences do not vary (zero variance); "
                       "an interval needs spread to be honest")
        return c
    c.df = variance ** 2 / (between ** 2 / (n - 1) + (within ** 2 / (images - 1)
                                                       if within else 0.0))
    c.p_value = float(2 * stats.t.sf(abs(c.difference) / math.sqrt(variance), c.df))
    c.p_adjusted = c.p_value
    _set_interval(c, LEVEL_CI)
    return c


def _set_interval(c: LevelComparison, confidence: float) -> None:
    se = math.sqrt(c.replicate_se ** 2 + (0.0 if np.isnan(c.image_se) else c.image_se ** 2))
    half = float(stats.t.ppf(0.5 + confidence / 2, c.df)) * se
    c.confidence, c.low, c.high = confidence, c.difference - half, c.difference + half


def adjust(comparisons: list[LevelComparison], primary: float = PRIMARY) -> None:
    """Mark the primary level (tested at 5%) and Holm-adjust the others among themselves
    (all of them when ``primary`` is not a level): their p-values and intervals (see the
    top). Comparisons without an interval stay as they are."""
    family = []
    for c in comparisons:
        c.primary = math.isclose(c.level, primary)
        if np.isnan(c.p_value):
            continue
        if c.primary:
            c.p_adjusted = c.p_value
            _set_interval(c, LEVEL_CI)
        else:
            family.append(c)
    family.sort(key=lambda c: c.p_value)
    m, running = len(family), 0.0
    for j, c in enumerate(family):
        running = max(running, min(1.0, (m - j) * c.p_value))
        c.p_adjusted = running
        _set_interval(c, 1 - (1 - LEVEL_CI) / (m - j))


def verdict(c: LevelComparison, missing: str = "") -> str:
    """One line: "at 80% removed (primary), fine-tuned keeps 3.0 points more accuracy than
    scratch (95% CI 0.6 to 5.3, p = 0.02; raw accuracy difference +2.1 points; 4
    replicates)"."""
    where = f"at {percent(c.level)}% removed" + (" (primary)" if c.primary else "")
    if missing:
        return f"{where}: {missing}"
    if not c.named:
        return f"{where}: " + next((n for n in c.notes if n.startswith("no verdict")),
                                   "no verdict")
    p = (f"p = {c.p_value:.3g}" if c.primary else f"Holm-adjusted p = {c.p_adjusted:.3g}")
    tail = (f"{100 * c.confidence:.4g}% CI {{}}, {p}; raw accuracy difference "
            f"{100 * c.raw_difference:+.1f} points; {c.n_replicates} replicates"
            + (f", {len(c.dropped)} dropped" if c.dropped else "") + ")"
            + "".join(f"; {note}" for note in c.notes))
    if c.named == "neither":
        return (f"{where}, no clear difference (fine-tuned minus scratch "
                f"{100 * c.difference:+.1f} points, "
                + tail.format(f"{100 * c.low:+.1f} to {100 * c.high:+.1f}"))
    if c.named == "fine-tuned":
        return (f"{where}, fine-tuned keeps {100 * c.difference:.1f} points more accuracy "
                "than scratch (" + tail.format(f"{100 * c.low:.1f} to {100 * c.high:.1f}"))
    return (f"{where}, scratch keeps {-100 * c.difference:.1f} points more accuracy than "
            "fine-tuned (" + tail.format(f"{-100 * c.high:.1f} to {-100 * c.low:.1f}"))


def ahead(named) -> str:
    """One line: where one regime is named; ``named``: (level, "fine-tuned" / "scratch" /
    "neither" / "" for no verdict)."""
    groups = {"fine-tuned": [], "scratch": [], "neither": [], "": []}
    for level, who in named:
        groups[who if who in groups else ""].append(f"{percent(level)}%")
    parts = [f"{who} clearly ahead at {', '.join(where)} removed"
             for who, where in groups.items() if who in ("fine-tuned", "scratch") and where]
    if groups["neither"]:
        parts.append(f"no clear difference at {', '.join(groups['neither'])}")
    if groups[""]:
        parts.append(f"no verdict at {', '.join(groups[''])}")
    return "; ".join(parts) or "no level to compare"


def estimand(search: SearchRecord | None) -> str:
    """What a level search's verdict is about, in words, from its search.json ("" for a search
    without levels, or without a record)."""
    if search is None or not search.levels:
        return ""
    levels, baselines = search.levels, search.baselines
    runs = sorted(set(planned_runs(levels, max(search.trials - baselines, 0)).values()))
    each = str(runs[0]) if len(runs) == 1 else f"{runs[0]}-{runs[-1]}"
    confirm = search.confirm
    valued = (f"the best on val valued on {confirm} fresh seed(s)" if confirm else
              "each run valuing itself (one run per level: no choice)")
    replicates = search.replicates
    settings = search.settings
    source = settings.get("source") or "the default source"
    pretrain = (f", pre-training seed {settings['pretrain_seed']}"
                if "pretrain_seed" in settings else "")
    unit = (f"{replicates} independent replicate(s), each with its own baseline(s), sampler "
            "seed and trial seeds (the two regimes of a replicate share them)" if replicates
            else "one run of the design (no replicates: the interval can speak only of its "
            "draws, so no verdict is given)")
    primary = ("80% is the primary level, the others are Holm-adjusted" if any(
        math.isclose(x, PRIMARY) for x in levels) else "every level is Holm-adjusted (80% "
        "is not among them)")
    if search.first_run == "recipe":
        tuned = ("is trained with the model family's recipe at each level (one run per level: "
                 "no tuning)" if each == "1" else f"is tuned by {each} run(s) per level, the "
                 f"family's recipe first, then the {search.sampler} sampler's draws")
    else:
        tuned = f"is tuned by {each} {search.sampler} run(s) per level"
    return (f"Estimand: the expected difference in accuracy kept (fine-tuned minus scratch) "
            f"when each regime {tuned}, {valued}, against {baselines} baseline run(s); {unit}; "
            f"every fine-tuned run starts from the same pre-trained weights ({source}"
            f"{pretrain}). The interval counts the spread over replicates and the test "
            f"images' sampling; {primary}.")
