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

What a study queues, when it confirms and what it confirms is its design's
(``search.designs``): a study here only counts, asks and tells.
"""
from __future__ import annotations

import contextlib
import enum
import warnings
from dataclasses import dataclass
from typing import Callable, ContextManager, Protocol

import numpy as np
import optuna

from ... import library_models
from ...data import folder
from .ask_lock import AskLock
from ...settings import TrialConfig
from ...errors import UsageError
from ...levels import LEVEL, REPLICATE
from ...models import recipe
from ...resolution import resolve_trial, source_of
from ...objectives import DIRECTIONS, METRICS, at_chance, classes_of, non_dominated
from ...results import study_names
from ...results.record import CONFIRMS, is_confirmation, marked_baseline
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
    classes = classes_of(next((t.user_attrs["classes"] for t in trials
                               if t.user_attrs.get("classes")), None), dataset)
    trained = bool(references) and not at_chance(float(np.mean(references)), classes)
    return [t for t in front if not marked_baseline(t)
            and not (trained and at_chance(t.values[0], classes))]


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


def recipe_params(space: SearchSpace, base: TrialConfig, level: float) -> dict:
    """The parameters of ``level``'s recipe run: the point of ``space`` at which a trial runs
    what it runs with none of them sampled (the model family's recipe, ``models.recipe``,
    through ``resolve_trial``), pruned to ``level``."""
    return space.point(resolve_trial(base.replace(**space.fixed, prune_ratio=level)))


class StudyDesign(Protocol):
    """What a study asks of its search's design (``designs.Design`` is the one that has it)."""
    space: SearchSpace
    target: int
    confirm: int
    confirm_once: bool

    def make_sampler(self, seed: int, regime: str) -> optuna.samplers.BaseSampler: ...

    def setup(self, study: optuna.Study, base: TrialConfig) -> None: ...

    def before_ask(self, plan: "StudyPlan", trials, counts: Tally) -> None: ...

    def exhausted(self, counts: Tally) -> bool: ...

    def suggest(self, trial: optuna.Trial, base: TrialConfig) -> dict: ...

    def queue_confirmations(self, plan: "StudyPlan", trials, queued: set) -> int: ...


@dataclass
class StudyPlan:
    """What one study of a search runs: its Optuna study, the fixed part of every trial's
    config, and its design (``search.designs``: the space, the sampler, how many trials must
    finish and what the design queues)."""
    study: optuna.Study
    base: TrialConfig
    design: StudyDesign
    lock: Callable[[], ContextManager] = contextlib.nullcontext
    replicate: int | None = None  # its replicate (1 .. R; None: a search without replicates)

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def target(self) -> int:
        return self.design.target

    def tally(self) -> Tally:
        return tally(self.study.get_trials(deepcopy=False))

    def exhausted(self, counts: Tally | None = None) -> bool:
        """Nothing more to ask even short of the target (a grid that ran all its points)."""
        return self.design.exhausted(counts or self.tally())

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
            if self.main_open(counts):
                self.design.before_ask(self, trials, counts)
            return self.study.ask()

    def queue_confirmations(self) -> int:
        """Queue the confirmation runs the design calls for now (``Design.
        queue_confirmations``), each (original, seed) once whatever ran before (a resumed or
        shared study queues only the missing ones). Returns how many it queued."""
        if self.design.confirm <= 0:
            return 0
        with self.lock():
            trials = self.study.get_trials(deepcopy=False)
            queued = {(t.user_attrs[CONFIRMS], t.user_attrs.get(SEED)) for t in trials
                      if is_confirmation(t) and not interrupted(t)}
            return self.design.queue_confirmations(self, trials, queued)

    def sample(self, trial: optuna.Trial) -> TrialConfig:
        """The full config of an asked trial (fixed values, then sampled ones, then the seed
        it was queued with, if any)."""
        with warnings.catch_warnings():  # a baseline's learning rate may lie outside the range
            warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range")
            values = self.design.suggest(trial, self.base)
        config = self.base.replace(**self.design.space.fixed, **values)
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


def make_sampler(kind: str, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    """The Optuna sampler ``--sampler kind`` names (the grid design queues its points itself,
    ``designs.GridDesign``), seeded with ``seed``; ``trials``: main trials per study."""
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed,
                                             population_size=max(4, min(50, trials // 2)))
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UsageError(f"unknown sampler {kind!r}: use one of {', '.join(SAMPLERS)}")


class Mode(enum.Enum):
    """How a driver opens its studies: a NEW search creates them (they must not exist), RESUME
    takes over from a driver that is gone (its RUNNING trials are failed and queued again),
    JOIN runs alongside live drivers (their RUNNING trials are left alone)."""
    NEW = "new"
    RESUME = "resume"
    JOIN = "join"


def open_study(storage, name: str, base: TrialConfig, design: StudyDesign,
               mode: Mode = Mode.NEW, seed_offset: int = 0,
               replicate: int | None = None) -> StudyPlan:
    """Create (or, to resume or join, reopen) a study; a new one gets what its design queues
    first (``Design.setup``: its unpruned baselines, or a grid's points).

    To resume, interrupted trials (RUNNING / never told) are marked FAIL and their parameters
    queued again, so the finished count still ends exactly at the target. To join, other
    drivers share the study, so its RUNNING trials are left alone: they may be theirs.
    Creating is atomic in the storage (a second create of the same name fails), so when two
    drivers create a study at the same moment, exactly one sets it up and queues the baselines.
    The sampler is seeded with the seed plus ``seed_offset`` (a joining driver's own) plus the
    number of trials already in the study, so a resumed study draws new suggestions instead of
    replaying the first ones."""
    join = mode is Mode.JOIN
    exists = name in optuna.get_all_study_names(storage)
    if exists and mode is Mode.NEW:
        raise UsageError(f"study {name} already exists in the storage: pass --resume to "
                         "continue it, --join to run alongside its drivers, or --name for a "
                         "new search")
    probe = optuna.load_study(study_name=name, storage=storage) if exists else None
    already = len(probe.get_trials(deepcopy=False)) if probe else 0
    kind = design.make_sampler(design.seed + seed_offset + already, base.weights.init)
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
    plan = StudyPlan(study, base, design, lock=AskLock(storage, name), replicate=replicate)
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
        design.setup(study, base)
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
