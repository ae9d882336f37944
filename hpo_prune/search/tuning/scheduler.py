"""Early stopping that is fair to pruned networks.

Plain ASHA on val_acc would stop every strongly pruned trial first (pruning costs accuracy),
emptying the sparse end of the Pareto front. ``SparsityASHA`` runs one ASHA per (study,
sparsity group): a trial only competes with trials of the same study in the same group, as
the search's design groups them (``Design.rung``: a level design's level, else a slice of
``prune_ratio``). Trials it stops are remembered in ``stopped`` so the
searcher records them as PRUNED in Optuna, never as COMPLETE with partial values. The unpruned
baselines and the confirmation runs (re-runs of front configurations with other seeds) are
never stopped.
"""
from __future__ import annotations

from typing import Callable, Hashable

from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

from ...results.record import always_finishes
from .messages import Report, TuneTrial


class SparsityASHA(FIFOScheduler):
    def __init__(self, max_t: int, rung: Callable[[float], Hashable], grace_period: int = 1,
                 reduction_factor: float = 2):
        super().__init__()
        self.max_t, self.rung = max_t, rung
        self.grace_period, self.reduction_factor = min(grace_period, max_t), reduction_factor
        self._schedulers: dict[tuple, AsyncHyperBandScheduler] = {}
        self.stopped: set[str] = set()

    def _key(self, trial) -> tuple:
        spec = TuneTrial.of(trial.config)
        return spec.study, self.rung(spec.config.prune.prune_ratio)

    def _scheduler(self, trial) -> AsyncHyperBandScheduler:
        key = self._key(trial)
        if key not in self._schedulers:
            self._schedulers[key] = AsyncHyperBandScheduler(
                time_attr="epoch", metric="val_acc", mode="max", max_t=self.max_t,
                grace_period=self.grace_period, reduction_factor=self.reduction_factor,
                stop_last_trials=False)
        return self._schedulers[key]

    def on_trial_add(self, tune_controller, trial):
        self._scheduler(trial).on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result):
        report, spec = Report.of(result), TuneTrial.of(trial.config)
        if not report.has_val_acc or report.final or report.fail_reason:
            return TrialScheduler.CONTINUE
        if always_finishes(spec.config.prune.prune_ratio, spec.confirms):
            return TrialScheduler.CONTINUE
        if report.epoch >= self.max_t:  # trained to its end: its final report comes next, and
            return TrialScheduler.CONTINUE  # ASHA's top rung must not make it PRUNED
        action = self._scheduler(trial).on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.STOP:
            self.stopped.add(trial.trial_id)
        return action

    def on_trial_complete(self, tune_controller, trial, result):
        self._scheduler(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial):
        self._scheduler(trial).on_trial_remove(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial):
        self._scheduler(trial).on_trial_error(tune_controller, trial)

    def debug_string(self) -> str:
        return f"SparsityASHA: {len(self._schedulers)} brackets, {len(self.stopped)} stopped"


def for_design(epochs: int, design) -> SparsityASHA:
    """The early stopping of a search of ``epochs`` epochs per trial, grouped as its design
    groups trials (``design.rung``)."""
    return SparsityASHA(max_t=epochs, rung=design.rung)
