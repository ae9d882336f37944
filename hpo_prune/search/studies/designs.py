"""The search designs, one object each: how every study of a search is filled and valued.

- ``FrontDesign`` (``--levels none``): the sampler draws every parameter, the pruning ratio
  included; each study starts with its unpruned baselines; once its main trials have ended,
  every configuration on its Pareto front is re-run on ``confirm`` more seeds.
- ``GridDesign`` (``--sampler grid``): each study runs the space's grid points, queued in
  order, and nothing else (no baselines; its prune_ratio 0 points are the unpruned runs);
  confirmations as the front design's.
- ``LevelsDesign`` (``--levels P ...``): every pruned trial is assigned a pruning level and
  the sampler draws the rest; each level's best run on val is valued on fresh seeds; the whole
  pipeline runs in ``replicates`` independent replicates (``hpo_prune.levels`` holds the
  rules).

Each design owns what differs between them: the trials a new study queues (``setup``), what it
queues before the sampler is asked (``before_ask``), when a study has nothing left to ask
(``exhausted``), its confirmation runs (``queue_confirmations``), which models ``--keep-models
front`` removes (``removable``), how early stopping groups trials (``rung``), how a trial's
parameters are drawn (``suggest``, ``sampler``) and its lines in the search's log
(``describe``, ``progress``). Below the driver nothing else tells the designs apart.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import optuna

from ...levels import (LEVEL, choose, fresh_seed, next_level, percent, planned_runs,
                      replicate_seed, search_seed)
from ...models import recipe
from ...results.record import CONFIRMS, is_confirmation, queued_baselines
from ...settings import TrialConfig
from . import keep
from .space import SearchSpace
from .study import FINISHED, SEED, State, baseline_params, interrupted, make_sampler, \
    recipe_params, tally, to_confirm

ASHA_BUCKETS = 5  # a continuous design's early-stopping groups: equal slices of prune_ratio


@dataclass(frozen=True)
class Design:
    """What every design has: its ``space`` sampled by ``sampler`` seeded with ``seed``,
    ``target`` main trials per study of which ``baseline_seeds`` unpruned baselines, and
    ``confirm`` seeds per confirmed configuration."""
    space: SearchSpace
    sampler: str = "tpe"
    seed: int = 0
    target: int = 1
    baseline_seeds: int = 1
    confirm: int = 0
    levels: ClassVar[tuple[float, ...]] = ()  # a level design's, recorded in search.json
    replicates: ClassVar[int] = 0  # 0: one study per regime, seeded from ``seed`` itself
    first_run: ClassVar[str] = "sampler"  # every run sampled (a level design may say recipe)
    confirm_once: ClassVar[bool] = True  # confirmations queued once, when the main trials end

    @property
    def baselines(self) -> int:
        """The baseline runs each new study queues."""
        return queued_baselines(self.baseline_seeds, self.target, self.sampler)

    def replicated(self, base: TrialConfig) -> list[tuple[int | None, TrialConfig, "Design"]]:
        """(replicate, base, design) of each study of ``base``'s (dataset, regime): here the
        one study as given (replicate None)."""
        return [(None, base, self)]

    # ------------------------------------------------------------- the Optuna side
    def make_sampler(self, seed: int, regime: str) -> optuna.samplers.BaseSampler:
        return make_sampler(self.sampler, seed, self.target)

    def setup(self, study: optuna.Study, base: TrialConfig) -> None:
        """A new study's queued trials: its unpruned baselines, with the trial seeds
        ``base.seed`` + 0, 1, ... (marked baseline when asked: prune_ratio 0)."""
        params = baseline_params(self.space, base)
        for i in range(self.baselines):
            study.enqueue_trial(params, user_attrs={SEED: base.train.seed + i},
                                skip_if_exists=False)

    def before_ask(self, plan, trials, counts) -> None:
        """Queue what the next main trial must be, if the design fixes part of it."""

    def exhausted(self, counts) -> bool:
        """The study can ask nothing more even short of its target."""
        return False

    def suggest(self, trial: optuna.Trial, base: TrialConfig) -> dict:
        """The sampled parameters of an asked trial (a queued one's are its queued ones)."""
        regime = base.weights.init
        return self.space.suggest(trial, regime, recipe(base.net.model, regime)["optimizer"])

    def queue_confirmations(self, plan, trials, queued: set) -> int:
        """Once the main trials are done: ``confirm`` re-runs (seeds + 1 .. + confirm) of every
        COMPLETE main trial on the study's front that ``studies.to_confirm`` keeps, each
        (original, seed) once (``queued``: those already queued)."""
        if not plan.main_done(tally(trials)):
            return 0
        count = 0
        for trial in to_confirm(trials, plan.base.data.dataset):
            seed = (trial.user_attrs.get("config") or {}).get(SEED, plan.base.train.seed)
            for j in range(1, self.confirm + 1):
                if (trial.number, seed + j) in queued:
                    continue
                plan.study.enqueue_trial(trial.params, skip_if_exists=False,
                                         user_attrs={CONFIRMS: trial.number, SEED: seed + j})
                count += 1
        return count

    def removable(self, plan, trials) -> list:
        """The COMPLETE trials whose models ``--keep-models front`` removes (``keep``)."""
        return keep.front_removes(trials, plan.base.data.dataset, self.confirm,
                                  plan.main_done(tally(trials)))

    # ------------------------------------------------------------- the Tune side
    def rung(self, prune_ratio: float):
        """Early stopping's group of a trial within its study (``scheduler``): trials compete
        only with trials of similar sparsity."""
        return min(int(prune_ratio * ASHA_BUCKETS), ASHA_BUCKETS - 1)

    def describe(self) -> str:
        """The design in the search's start-up line."""
        return (f"{self.target} trials per study ({self.baselines} of them unpruned baselines), "
                f"sampler {self.sampler}, {self.confirm} confirmation seed(s) per front "
                "configuration")

    def progress(self, trials) -> str:
        """What the status block adds to a study's line."""
        return ""


@dataclass(frozen=True)
class FrontDesign(Design):
    """``--levels none``: the continuous front (the class above is its behaviour)."""


@dataclass(frozen=True)
class GridDesign(Design):
    """``--sampler grid``: the grid points, each once, in the file's order."""

    def make_sampler(self, seed: int, regime: str) -> optuna.samplers.BaseSampler:
        self.space.grid_values(regime)  # a space without a grid fails here, before any trial
        return optuna.samplers.RandomSampler(seed=seed)  # never asked: every point is queued

    def setup(self, study: optuna.Study, base: TrialConfig) -> None:
        """Each grid point once, in order (cycled if the target asks for more): a failed
        point is not run again, unlike Optuna's GridSampler, which re-picks points."""
        points = self.space.grid_points(base.weights.init)
        for i in range(self.target):
            study.enqueue_trial(points[i % len(points)], skip_if_exists=False)

    def exhausted(self, counts) -> bool:
        return counts.waiting == 0

    def suggest(self, trial: optuna.Trial, base: TrialConfig) -> dict:
        return self.space.suggest_grid(trial, base.weights.init)

    def describe(self) -> str:
        return (f"{self.target} grid points per study, {self.confirm} confirmation seed(s) per "
                "front configuration")


@dataclass(frozen=True)
class LevelsDesign(Design):
    """``--levels``: pruning levels, chosen runs valued on fresh seeds, replicates
    (``hpo_prune.levels``). ``space`` samples the levels as its ``prune_ratio``
    (``SearchSpace.with_levels``)."""
    levels: tuple[float, ...] = (0.8,)
    replicates: int = 0
    first_run: str = "sampler"  # levels.FIRST_RUNS: what each level's first search run is
    confirm_once: ClassVar[bool] = False  # each level's, as soon as its runs have ended

    def replicated(self, base: TrialConfig) -> list[tuple[int | None, TrialConfig, "Design"]]:
        """One study per replicate, its trial and sampler seeds from its block
        (``levels.replicate_seed``); without replicates, the one study as given."""
        if not self.replicates:
            return super().replicated(base)
        out = []
        for r in range(1, self.replicates + 1):
            seed = replicate_seed(self.seed, self.replicates, r)
            out.append((r, base.replace(seed=seed), replace(self, seed=seed)))
        return out

    def before_ask(self, plan, trials, counts) -> None:
        """The next pruned main trial: its level and seed (``hpo_prune.levels``); the sampler
        draws the rest when it is asked, except in a level's first run with ``first_run``
        "recipe", which runs the model family's recipe (``study.recipe_params``)."""
        if counts.waiting:
            return
        placed = [t for t in trials if not is_confirmation(t)
                  and t.user_attrs.get(LEVEL) is not None and not interrupted(t)]
        ended = [t.user_attrs[LEVEL] for t in placed if t.state != State.FAIL]
        level = next_level(self.levels, ended)
        params = {"prune_ratio": level}
        if self.first_run == "recipe" and level not in ended:  # a failed one's retry too
            params = recipe_params(self.space, plan.base, level)
        plan.study.enqueue_trial(params, skip_if_exists=False, user_attrs={
            SEED: search_seed(plan.base.train.seed, self.baselines, len(placed)),
            LEVEL: level})

    def choices(self, trials) -> dict[float, object]:
        """The levels whose search runs have all ended, each with its chosen run (the best val
        accuracy among its COMPLETE search runs; ``levels.choose``)."""
        planned = planned_runs(self.levels, max(self.target - self.baselines, 0))
        chosen = {}
        for level in self.levels:
            runs = [t for t in trials if not is_confirmation(t)
                    and t.user_attrs.get(LEVEL) == level]
            if (sum(t.state in FINISHED for t in runs) < planned[level]
                    or any(t.state in (State.WAITING, State.RUNNING) for t in runs)):
                continue
            number = choose((t.number, t.values[0]) for t in runs
                            if t.state == State.COMPLETE and t.values)
            if number is not None:
                chosen[level] = next(t for t in runs if t.number == number)
        return chosen

    def queue_confirmations(self, plan, trials, queued: set) -> int:
        """Each level whose search runs have ended: its chosen run re-run on the level's fresh
        seeds (the same in every regime), each (run, seed) once, as soon as that level's runs
        have ended (no core waits for the whole study)."""
        count = 0
        for level, trial in self.choices(trials).items():
            index = self.levels.index(level)
            for j in range(1, self.confirm + 1):
                seed = fresh_seed(plan.base.train.seed, index, j)
                if (trial.number, seed) in queued:
                    continue
                plan.study.enqueue_trial(trial.params, skip_if_exists=False, user_attrs={
                    CONFIRMS: trial.number, SEED: seed, LEVEL: level})
                count += 1
        return count

    def removable(self, plan, trials) -> list:
        return keep.level_removes(trials, {level: t.number
                                           for level, t in self.choices(trials).items()})

    def rung(self, prune_ratio: float):
        return prune_ratio  # trials compete within their level

    def describe(self) -> str:
        valued = (f"each level's best run on val valued on {self.confirm} fresh seed(s)"
                  if self.confirm else "each level's run valuing itself")
        first = ("the family's recipe first, then " if self.first_run == "recipe" else "")
        return (f"{self.target} trials per study ({self.baselines} of them "
                f"unpruned baselines), levels {' '.join(f'{x:g}' for x in self.levels)} "
                f"({first}sampler {self.sampler}), {valued}")

    def progress(self, trials) -> str:
        planned = planned_runs(self.levels, max(self.target - self.baselines, 0))
        done = {level: 0 for level in self.levels}
        for t in trials:
            level = t.user_attrs.get(LEVEL)
            if level in done and not is_confirmation(t) and t.state in FINISHED:
                done[level] += 1
        return " | runs per level " + " ".join(
            f"{percent(level)}% {done[level]}/{planned[level]}" for level in self.levels)


def design_of(space: SearchSpace, sampler: str = "tpe", seed: int = 0, target: int = 1,
              baseline_seeds: int = 1, confirm: int = 0, levels: tuple[float, ...] = (),
              replicates: int = 0, first_run: str = "sampler") -> Design:
    """The design these settings make: a grid with ``sampler`` grid, levels where given, else
    the continuous front. Built once, by the command line from the flags, the preset and the
    record (``search.cli``)."""
    if sampler == "grid":
        return GridDesign(space, sampler, seed, target, baseline_seeds, confirm)
    if levels:
        return LevelsDesign(space, sampler, seed, target, baseline_seeds, confirm,
                            tuple(levels), replicates, first_run)
    return FrontDesign(space, sampler, seed, target, baseline_seeds, confirm)
