"""The Optuna side of a search: one study per (model, dataset, regime), in one storage.

Studies are named ``{search}.{model}.{dataset}.{regime}``; objectives are ``val_acc``
(maximise) and ``remaining_fraction`` (minimise). The storage is the source of truth for what
finished: resuming reads it, and trials.csv is exported from it.

A study's trials are of two kinds. Its *main* trials (the queued baselines, the sampled trials,
the grid points) are what ``target`` (``--trials``) counts. Once they have finished, every
configuration on the study's Pareto front (baselines aside) is re-run with more seeds: those
*confirmation* trials are queued with the user attributes ``confirms`` (the number of the trial
they repeat) and ``seed``, and come on top of the target. A queued trial's ``seed`` user
attribute overrides the search's seed in its config (``StudyPlan.sample``).

With pruning levels (``--levels``, ``hpo_prune.levels``) the pruned main trials are queued one
at a time as the study asks for them, each with its level as ``prune_ratio`` and its seed (the
sampler draws the other parameters), and each level's chosen run is confirmed on the level's
fresh seeds as soon as that level's search runs have ended, not when the whole study has.
"""
from __future__ import annotations

import contextlib
import enum
import warnings
from dataclasses import dataclass, replace
from typing import Callable, ContextManager

import numpy as np
import optuna

from .. import library_models
from ..data import folder
from .ask_lock import AskLock
from ..settings import TrialConfig
from ..errors import UsageError
from ..levels import (LEVEL, REPLICATE, choose, fresh_seed, next_level, planned_runs,
                      replicate_seed, search_seed)
from ..models import recipe
from ..resolution import source_of
from ..objectives import DIRECTIONS, METRICS, at_chance, non_dominated
from ..results import study_names
from ..results.record import CONFIRMS, is_confirmation, marked_baseline, queued_baselines
from .space import SearchSpace

State = optuna.trial.TrialState
FINISHED = (State.COMPLETE, State.PRUNED)
SAMPLERS = ("tpe", "nsga2", "random", "grid")
INTERRUPTED = "interrupted before it finished; its parameters were queued again"
SEED = "seed"  # user attribute of a queued trial (see the top), as CONFIRMS
CARRIED = (SEED, CONFIRMS, LEVEL)  # what a trial queued again after an interruption keeps


def interrupted(trial) -> bool:
    return trial.state == State.FAIL and trial.user_attrs.get("fail_reason") == INTERRUPTED


@dataclass
class Tally:
    """A study's trials counted by kind and state (one read of the storage)."""
    finished: int = 0  # main trials COMPLETE or PRUNED
    running: int = 0   # main trials RUNNING (of every driver sharing the study)
    waiting: int = 0   # main trials queued
    failed: int = 0    # FAIL, both kinds
    pruned: int = 0    # PRUNED (stopped early), main trials only: confirmations never are
    confirm_waiting: int = 0
    confirm_running: int = 0
    confirm_done: int = 0    # confirmations that ended (COMPLETE or FAIL; interrupted aside)
    confirm_failed: int = 0  # confirmations that ended FAIL (not interrupted: not run again)

    @property
    def busy(self) -> int:
        return self.finished + self.running

    @property
    def confirm_total(self) -> int:
        """Confirmations queued, each (original, seed) once: an interrupted one is queued
        again, and only its new trial counts."""
        return self.confirm_waiting + self.confirm_running + self.confirm_done


def tally(trials) -> Tally:
    out = Tally()
    for t in trials:
        if t.state == State.FAIL:
            out.failed += 1
        if is_confirmation(t):
            if t.state == State.WAITING:
                out.confirm_waiting += 1
            elif t.state == State.RUNNING:
                out.confirm_running += 1
            elif not interrupted(t):
                out.confirm_done += 1
                out.confirm_failed += t.state == State.FAIL
        elif t.state in FINISHED:
            out.finished += 1
            out.pruned += t.state == State.PRUNED
        elif t.state == State.RUNNING:
            out.running += 1
        elif t.state == State.WAITING:
            out.waiting += 1
    return out


def main_front(trials) -> list:
    """The study's COMPLETE main trials on its Pareto front (non-dominated among its COMPLETE
    main trials, on their single values): what the confirmation runs repeat. A trial off it
    stays off: more trials only add points that may dominate it."""
    complete = [t for t in trials if t.state == State.COMPLETE and not is_confirmation(t)]
    on_front = non_dominated([t.values for t in complete]) if complete else []
    return [t for t, on in zip(complete, on_front) if on]


def to_confirm(trials, dataset: str) -> list:
    """The main-front trials that confirmation runs repeat: not the baselines (their own K
    seeds are the reference), nor, once the baselines' mean val accuracy is above chance, a
    configuration that stayed at chance: its seed mean could not come within any tolerance of
    that trained reference, so re-running it only costs a trial. (Without baselines, or with
    baselines at chance, every front configuration is confirmed.)"""
    front = main_front(trials)
    references = [t.values[0] for t in trials if t.state == State.COMPLETE and t.values
                  and marked_baseline(t) and not is_confirmation(t)]
    trained = bool(references) and not at_chance(float(np.mean(references)), dataset)
    return [t for t in front if not marked_baseline(t)
            and not (trained and at_chance(t.values[0], dataset))]


def requeue(study: optuna.Study, trial) -> bool:
    """Queue an interrupted trial's parameters again, with its seed and what it confirms. A
    trial that ended before its parameters were drawn is queued again only if it was queued
    itself (its queued parameters; a sampled one has nothing to run again)."""
    params = trial.params or (getattr(trial, "system_attrs", None) or {}).get("fixed_params")
    if not params:
        return False
    attrs = {k: trial.user_attrs[k] for k in CARRIED if trial.user_attrs.get(k) is not None}
    study.enqueue_trial(params, user_attrs=attrs or None, skip_if_exists=False)
    return True


def baseline_params(space: SearchSpace, base: TrialConfig) -> dict:
    """The unpruned baseline's parameters: ``space.baseline`` with, where the space samples the
    learning rate, the model family's default one for an unpruned run of the regime
    (``models.recipe`` with ``dense``, of the optimizer the space fixes, else of the family's
    default optimizer), even where it lies outside the space's range (Optuna runs a queued
    value outside its range as it is)."""
    default = recipe(base.net.model, base.weights.init)["optimizer"]
    params = space.baseline(base.weights.init, default)
    if "lr" in params:
        optimizer = space.optimizer(params, default)
        params["lr"] = recipe(base.net.model, base.weights.init,
                              None if optimizer in (None, "auto") else optimizer,
                              dense=True)["lr"]
    return params


@dataclass
class StudyPlan:
    """What one study of a search runs: its Optuna study, the fixed part of every trial's
    config, the search space and how many trials must finish."""
    study: optuna.Study
    base: TrialConfig
    space: SearchSpace
    target: int
    sampler: str
    lock: Callable[[], ContextManager] = contextlib.nullcontext
    confirm: int = 0  # seeds each front configuration is re-run with once the target is met
    levels: tuple[float, ...] = ()  # pruning levels (empty: the space's continuous ratio)
    baselines: int = 0  # unpruned baseline trials the study was created with
    replicate: int | None = None  # its replicate (1 .. R; None: a search without replicates)

    @property
    def name(self) -> str:
        return self.study.study_name

    def tally(self) -> Tally:
        return tally(self.study.get_trials(deepcopy=False))

    def exhausted(self, counts: Tally | None = None) -> bool:
        """A grid study runs its queued grid points and nothing else (see open_study)."""
        return self.sampler == "grid" and (counts or self.tally()).waiting == 0

    def busy(self) -> int:
        """Main trials finished plus RUNNING, as the storage has them: RUNNING ones of every
        driver sharing the study (``--join``), read in one query so none is counted twice or
        missed. For a single driver they are its own live trials (a resume fails the dead
        ones)."""
        return self.tally().busy

    def main_open(self, counts: Tally) -> bool:
        """Room for one more main trial."""
        return counts.busy < self.target and not self.exhausted(counts)

    def main_done(self, counts: Tally) -> bool:
        """Every main trial has ended: the target is met (or a grid study ran all its points)
        and none runs; the front is final."""
        return counts.running == 0 and (counts.finished >= self.target
                                        or self.exhausted(counts))

    def ask(self) -> optuna.Trial | None:
        """A new RUNNING trial: a main one while finished + running main trials are short of
        the target, else a queued confirmation; None when there is neither. Counting and
        asking hold the study's lock, so drivers sharing the study never ask more than the
        target between them (see AskLock)."""
        with self.lock():
            trials = self.study.get_trials(deepcopy=False)
            counts = tally(trials)
            if not self.main_open(counts) and counts.confirm_waiting == 0:
                return None
            if self.levels and self.main_open(counts) and counts.waiting == 0:
                self._queue_level_trial(trials)
            return self.study.ask()

    def _queue_level_trial(self, trials) -> None:
        """Queue the next pruned main trial of a level design: its level and seed (see
        ``hpo_prune.levels``); the sampler draws the rest when it is asked."""
        placed = [t for t in trials if not is_confirmation(t)
                  and t.user_attrs.get(LEVEL) is not None and not interrupted(t)]
        level = next_level(self.levels, [t.user_attrs[LEVEL] for t in placed
                                         if t.state != State.FAIL])
        self.study.enqueue_trial({"prune_ratio": level}, skip_if_exists=False, user_attrs={
            SEED: search_seed(self.base.train.seed, self.baselines, len(placed)), LEVEL: level})

    def level_choices(self, trials) -> dict[float, object]:
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

    def queue_confirmations(self) -> int:
        """Once the main trials are done: queue ``confirm`` re-runs (seeds + 1 .. + confirm) of
        every COMPLETE main trial on the study's front (non-dominated among its COMPLETE main
        trials) that ``to_confirm`` keeps, each (original, seed) once whatever ran before (a
        resumed or shared study queues only the missing ones). Returns how many it queued."""
        if self.confirm <= 0:
            return 0
        with self.lock():
            trials = self.study.get_trials(deepcopy=False)
            queued = {(t.user_attrs[CONFIRMS], t.user_attrs.get(SEED)) for t in trials
                      if is_confirmation(t) and not interrupted(t)}
            if self.levels:
                return self._queue_level_confirmations(trials, queued)
            if not self.main_done(tally(trials)):
                return 0
            count = 0
            for trial in to_confirm(trials, self.base.data.dataset):
                seed = (trial.user_attrs.get("config") or {}).get(SEED, self.base.train.seed)
                for j in range(1, self.confirm + 1):
                    if (trial.number, seed + j) in queued:
                        continue
                    self.study.enqueue_trial(trial.params, skip_if_exists=False,
                                             user_attrs={CONFIRMS: trial.number,
                                                         SEED: seed + j})
                    count += 1
            return count

    def _queue_level_confirmations(self, trials, queued: set) -> int:
        """Each level whose search runs have ended: its chosen run re-run on the level's fresh
        seeds (the same in every regime), each (run, seed) once."""
        count = 0
        for level, trial in self.level_choices(trials).items():
            index = self.levels.index(level)
            for j in range(1, self.confirm + 1):
                seed = fresh_seed(self.base.train.seed, index, j)
                if (trial.number, seed) in queued:
                    continue
                self.study.enqueue_trial(trial.params, skip_if_exists=False, user_attrs={
                    CONFIRMS: trial.number, SEED: seed, LEVEL: level})
                count += 1
        return count

    def sample(self, trial: optuna.Trial) -> TrialConfig:
        """The full config of an asked trial (fixed values, then sampled ones, then the seed
        it was queued with, if any)."""
        regime = self.base.weights.init
        with warnings.catch_warnings():  # a baseline's learning rate may lie outside the range
            warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range")
            if self.sampler == "grid":
                values = self.space.suggest_grid(trial, regime)
            else:
                values = self.space.suggest(trial, regime,
                                            recipe(self.base.net.model, regime)["optimizer"])
        config = self.base.replace(**self.space.fixed, **values)
        seed = trial.user_attrs.get(SEED)
        if seed is not None:
            config = config.replace(seed=int(seed))
        return config


def study_name(search: str, model: str, dataset: str, regime: str,
               replicate: int | None = None) -> str:
    """The study of (model, dataset, regime, replicate): ``results.study_names``, with the model
    and an image folder by their labels."""
    return study_names.study_name(search, library_models.label(model), folder.label(dataset),
                                  regime, replicate)


def make_sampler(kind: str, seed: int, space: SearchSpace, regime: str, trials: int):
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed,
                                             population_size=max(4, min(50, trials // 2)))
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "grid":  # the grid points are queued trials (open_study): nothing to sample
        space.grid_values(regime)  # (a space without a grid fails here, before any trial)
        return optuna.samplers.RandomSampler(seed=seed)
    raise UsageError(f"unknown sampler {kind!r}: use one of {', '.join(SAMPLERS)}")


class Mode(enum.Enum):
    """How a driver opens its studies: a NEW search creates them (they must not exist), RESUME
    takes over from a driver that is gone (its RUNNING trials are failed and queued again),
    JOIN runs alongside live drivers (their RUNNING trials are left alone)."""
    NEW = "new"
    RESUME = "resume"
    JOIN = "join"


@dataclass(frozen=True)
class Design:
    """How every study of a search is searched: its ``space`` sampled by ``sampler`` seeded
    with ``seed``, ``target`` main trials of which ``baseline_seeds`` unpruned baselines (a
    grid queues its points instead), ``confirm`` seeds per front configuration or per level
    (StudyPlan.queue_confirmations), and the pruning ``levels`` its pruned trials are assigned
    (``hpo_prune.levels``; ``space`` samples them as its ``prune_ratio``, see
    ``SearchSpace.with_levels``; empty: the space's continuous ratio)."""
    space: SearchSpace
    sampler: str = "tpe"
    seed: int = 0
    target: int = 1
    baseline_seeds: int = 1
    confirm: int = 0
    levels: tuple[float, ...] = ()
    replicates: int = 0  # 0: one study per regime seeded from ``seed`` itself (no replicates)

    @property
    def baselines(self) -> int:
        """The baseline runs each new study queues."""
        return queued_baselines(self.baseline_seeds, self.target, self.sampler)

    def replicated(self, base: TrialConfig) -> list[tuple[int | None, TrialConfig, "Design"]]:
        """(replicate, base, design) of each study of ``base``'s (dataset, regime): one per
        replicate, its trial and sampler seeds from its block (``levels.replicate_seed``);
        without replicates, the one study as given (replicate None)."""
        if not self.replicates:
            return [(None, base, self)]
        out = []
        for r in range(1, self.replicates + 1):
            seed = replicate_seed(self.seed, self.replicates, r)
            out.append((r, base.replace(seed=seed), replace(self, seed=seed)))
        return out


def open_study(storage, name: str, base: TrialConfig, design: Design, mode: Mode = Mode.NEW,
               seed_offset: int = 0, replicate: int | None = None) -> StudyPlan:
    """Create (or, to resume or join, reopen) a study; a new one gets its unpruned baselines
    queued: ``design.baseline_seeds`` of them (at most its target), with the trial seeds
    ``base.seed`` + 0, 1, ... (user attribute ``seed``); a grid study gets its grid points
    instead.

    To resume, interrupted trials (RUNNING / never told) are marked FAIL and their parameters
    queued again, so the finished count still ends exactly at the target. To join, other
    drivers share the study, so its RUNNING trials are left alone: they may be theirs.
    Creating is atomic in the storage (a second create of the same name fails), so when two
    drivers create a study at the same moment, exactly one sets it up and queues the baselines.
    The sampler is seeded with the seed plus ``seed_offset`` (a joining driver's own) plus the
    number of trials already in the study, so a resumed study draws new suggestions instead of
    replaying the first ones."""
    space, sampler, target = design.space, design.sampler, design.target
    join = mode is Mode.JOIN
    exists = name in optuna.get_all_study_names(storage)
    if exists and mode is Mode.NEW:
        raise UsageError(f"study {name} already exists in the storage: pass --resume to "
                         "continue it, --join to run alongside its drivers, or --name for a "
                         "new search")
    probe = optuna.load_study(study_name=name, storage=storage) if exists else None
    already = len(probe.get_trials(deepcopy=False)) if probe else 0
    kind = make_sampler(sampler, design.seed + seed_offset + already, space, base.weights.init,
                        target)
    created = False
    if not exists:
        try:
            study = optuna.create_study(storage=storage, study_name=name,
                                        directions=DIRECTIONS, sampler=kind)
            created = True
        except optuna.exceptions.DuplicatedStudyError:
            if not join:
                raise UsageError(f"study {name} was just created by another driver: pass "
                                 "--join to run alongside it, or --name for a new search"
                                 ) from None
    if not created:
        study = optuna.load_study(study_name=name, storage=storage, sampler=kind)
    plan = StudyPlan(study, base, space, target, sampler, lock=AskLock(storage, name),
                     confirm=design.confirm, levels=tuple(design.levels),
                     baselines=design.baselines,
                     replicate=replicate)
    if created:
        with warnings.catch_warnings():  # experimental in Optuna, stable in practice
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(METRICS)
        for key, value in (("model", base.net.model), ("dataset", folder.label(base.data.dataset)),
                           ("regime", base.weights.init),
                           ("source", source_of(base.weights, base.data.dataset))):
            study.set_user_attr(key, value)
        if replicate is not None:
            study.set_user_attr(REPLICATE, replicate)
        if sampler != "grid":  # marked baseline when asked (prune_ratio 0)
            params = baseline_params(space, base)
            for i in range(design.baselines):
                study.enqueue_trial(params, user_attrs={SEED: base.train.seed + i},
                                    skip_if_exists=False)
        else:  # each grid point once, in order (cycled if target asks for more): a failed
            # point is not run again, unlike Optuna's GridSampler, which re-picks points
            points = space.grid_points(base.weights.init)
            for i in range(target):
                study.enqueue_trial(points[i % len(points)], skip_if_exists=False)
    elif not join:
        requeue_interrupted(study)
    return plan


def requeue_interrupted(study: optuna.Study) -> int:
    """Trials left RUNNING by a driver that died: FAIL them and queue their parameters (with
    their seed and what they confirm)."""
    count = 0
    for trial in study.get_trials(deepcopy=False, states=(State.RUNNING,)):
        optuna.Trial(study, trial._trial_id).set_user_attr("fail_reason", INTERRUPTED)
        study.tell(trial.number, state=State.FAIL)
        requeue(study, trial)
        count += 1
    return count
