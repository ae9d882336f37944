"""The Optuna side of a search: one study per (model, dataset, regime), in one storage.

Studies are named ``{search}.{model}.{dataset}.{regime}``; objectives are ``val_acc``
(maximise) and ``remaining_fraction`` (minimise). The storage is the source of truth for what
finished: resuming reads it, and trials.csv is exported from it.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Callable, ContextManager

import optuna

from .ask_lock import AskLock
from ..config import TrialConfig
from ..errors import UsageError
from ..objectives import DIRECTIONS, METRICS
from .space import SearchSpace

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
SAMPLERS = ("tpe", "nsga2", "random", "grid")
INTERRUPTED = "interrupted before it finished; its parameters were queued again"


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

    @property
    def name(self) -> str:
        return self.study.study_name

    def finished(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=FINISHED))

    def waiting(self) -> int:
        return len(self.study.get_trials(deepcopy=False,
                                         states=(optuna.trial.TrialState.WAITING,)))

    def exhausted(self) -> bool:
        """A grid study runs its queued grid points and nothing else (see open_study)."""
        return self.sampler == "grid" and self.waiting() == 0

    def busy(self) -> int:
        """Finished plus RUNNING trials, as the storage has them: RUNNING ones of every driver
        sharing the study (``--join``), read in one query so none is counted twice or missed.
        For a single driver they are its own live trials (a resume fails the dead ones)."""
        return len(self.study.get_trials(deepcopy=False,
                                         states=FINISHED + (optuna.trial.TrialState.RUNNING,)))

    def ask(self) -> optuna.Trial | None:
        """A new RUNNING trial, or None when finished + running trials already reach the
        target; counting and asking hold the study's lock, so drivers sharing the study never
        ask more than the target between them (see AskLock)."""
        with self.lock():
            if self.busy() >= self.target or self.exhausted():
                return None
            return self.study.ask()

    def sample(self, trial: optuna.Trial) -> TrialConfig:
        """The full config of an asked trial (fixed values, then sampled ones)."""
        regime = self.base.init
        if self.sampler == "grid":
            values = self.space.suggest_grid(trial, regime)
        else:
            values = self.space.suggest(trial, regime)
        config = self.base.replace(**self.space.fixed, **values)
        return config


def study_name(search: str, model: str, dataset: str, regime: str) -> str:
    return f"{search}.{model}.{dataset}.{regime}"


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


def open_study(storage, name: str, base: TrialConfig, space: SearchSpace, sampler: str,
               seed: int, target: int, resume: bool, *, join: bool = False,
               seed_offset: int = 0) -> StudyPlan:
    """Create (or, with resume or join, reopen) a study; a new one gets its unpruned baseline
    queued.

    On resume, interrupted trials (RUNNING / never told) are marked FAIL and their parameters
    queued again, so the finished count still ends exactly at ``target``. With join, other
    drivers share the study, so its RUNNING trials are left alone: they may be theirs.
    Creating is atomic in the storage (a second create of the same name fails), so when two
    drivers create a study at the same moment, exactly one sets it up and queues the baseline.
    The sampler is seeded with the seed plus ``seed_offset`` (a joining driver's own) plus the
    number of trials already in the study, so a resumed study draws new suggestions instead of
    replaying the first ones."""
    exists = name in optuna.get_all_study_names(storage)
    if exists and not (resume or join):
        raise UsageError(f"study {name} already exists in the storage: pass --resume to "
                         "continue it, --join to run alongside its drivers, or --name for a "
                         "new search")
    probe = optuna.load_study(study_name=name, storage=storage) if exists else None
    already = len(probe.get_trials(deepcopy=False)) if probe else 0
    kind = make_sampler(sampler, seed + seed_offset + already, space, base.init, target)
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
    plan = StudyPlan(study, base, space, target, sampler, lock=AskLock(storage, name))
    if created:
        with warnings.catch_warnings():  # experimental in Optuna, stable in practice
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(METRICS)
        for key, value in (("model", base.model), ("dataset", base.dataset),
                           ("regime", base.init), ("source", base.resolved_source)):
            study.set_user_attr(key, value)
        if sampler != "grid":
            study.enqueue_trial(space.baseline(base.init))  # marked baseline when asked
        else:  # each grid point once, in order (cycled if target asks for more): a failed
            # point is not run again, unlike Optuna's GridSampler, which re-picks points
            points = space.grid_points(base.init)
            for i in range(target):
                study.enqueue_trial(points[i % len(points)], skip_if_exists=False)
    elif not join:
        requeue_interrupted(study)
    return plan


def requeue_interrupted(study: optuna.Study) -> int:
    """Trials left RUNNING by a driver that died: FAIL them and queue their parameters."""
    count = 0
    for trial in study.get_trials(deepcopy=False,
                                  states=(optuna.trial.TrialState.RUNNING,)):
        optuna.Trial(study, trial._trial_id).set_user_attr("fail_reason", INTERRUPTED)
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        if trial.params:  # killed between ask and sampling: nothing to run again
            study.enqueue_trial(trial.params, skip_if_exists=False)
        count += 1
    return count
