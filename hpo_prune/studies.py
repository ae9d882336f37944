"""The Optuna side of a search: one study per (model, dataset, regime), in one storage.

Studies are named ``{search}.{model}.{dataset}.{regime}``; objectives are ``val_acc``
(maximise) and ``remaining_fraction`` (minimise). The storage is the source of truth for what
finished: resuming reads it, and trials.csv is exported from it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import optuna

from .config import TrialConfig
from .errors import UsageError
from .space import SearchSpace

DIRECTIONS = ["maximize", "minimize"]
METRICS = ["val_acc", "remaining_fraction"]
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

    @property
    def name(self) -> str:
        return self.study.study_name

    def finished(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=FINISHED))

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


def open_storage(url: str):
    """An Optuna RDB storage (sqlite:///..., postgresql://...), or a one-line error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.storages.RDBStorage(url, heartbeat_interval=None)
    except ModuleNotFoundError as err:
        raise UsageError(f"--storage {url}: the database driver is missing ({err.name}); "
                         "install it (for PostgreSQL: pip install psycopg2-binary)") from None
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(".")
        raise UsageError(f"cannot open --storage {url}: {first}; check the URL and that the "
                         "database is reachable") from None


def make_sampler(kind: str, seed: int, space: SearchSpace, regime: str, trials: int):
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed,
                                             population_size=max(4, min(50, trials // 2)))
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "grid":
        return _Grid(space.grid_values(regime), seed=seed)
    raise UsageError(f"unknown sampler {kind!r}: use one of {', '.join(SAMPLERS)}")


class _Grid(optuna.samplers.GridSampler):
    """GridSampler for ask/tell: it would call ``study.stop()`` once the grid is exhausted,
    which Optuna only allows inside ``study.optimize``; the searcher counts trials itself."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def open_study(storage, name: str, base: TrialConfig, space: SearchSpace, sampler: str,
               seed: int, target: int, resume: bool) -> StudyPlan:
    """Create (or, with resume, reopen) a study; a new one gets its unpruned baseline queued.

    Interrupted trials (RUNNING / never told) are marked FAIL and their parameters queued
    again, so the finished count still ends exactly at ``target``. The sampler is seeded with
    the seed plus the number of trials already in the study, so a resumed study draws new
    suggestions instead of replaying the first ones."""
    exists = name in optuna.get_all_study_names(storage)
    if exists and not resume:
        raise UsageError(f"study {name} already exists in the storage: pass --resume to "
                         "continue it, or --name for a new search")
    probe = optuna.load_study(study_name=name, storage=storage) if exists else None
    already = len(probe.get_trials(deepcopy=False)) if probe else 0
    kind = make_sampler(sampler, seed + already, space, base.init, target)
    study = optuna.create_study(storage=storage, study_name=name, directions=DIRECTIONS,
                                sampler=kind, load_if_exists=True)
    if not exists:
        with warnings.catch_warnings():  # experimental in Optuna, stable in practice
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(METRICS)
        for key, value in (("model", base.model), ("dataset", base.dataset),
                           ("regime", base.init), ("source", base.resolved_source)):
            study.set_user_attr(key, value)
        if sampler != "grid":
            study.enqueue_trial(space.baseline(base.init))  # marked baseline when asked
    else:
        requeue_interrupted(study)
    return StudyPlan(study, base, space, target, sampler)


def requeue_interrupted(study: optuna.Study) -> int:
    """Trials left RUNNING by a driver that died: FAIL them and queue their parameters."""
    count = 0
    for trial in study.get_trials(deepcopy=False,
                                  states=(optuna.trial.TrialState.RUNNING,)):
        optuna.Trial(study, trial._trial_id).set_user_attr("fail_reason", INTERRUPTED)
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params, skip_if_exists=False)
        count += 1
    return count
