"""A Ray Tune searcher that serves several Optuna studies through ask/tell.

Every Tune trial belongs to one study. ``suggest`` asks the study with the fewest finished plus
running main trials (so studies progress together); once a study's main trials are done it
queues the study's confirmation runs (StudyPlan.queue_confirmations) and serves those.
``on_trial_complete`` tells it:

- a trial that ran to its end (its last report carries ``final``) -> COMPLETE with
  (val_acc, remaining_fraction) and the trial's measurements as user attributes, among them
  ``model_dir``: the folder of its trained model (its last Tune checkpoint; relative to
  ``results`` when given);
- a trial stopped by the early-stopping scheduler -> PRUNED (never COMPLETE with partial values);
- a trial that raised, or reported a ``fail_reason`` (e.g. a diverged loss) -> FAIL with the
  reason as user attribute;
- a trial ended by an interrupted search -> FAIL, and its parameters (with its ``seed`` and
  ``confirms`` user attributes) are queued again so that ``--resume`` runs it and the finished
  count ends exactly at the target.

Test accuracy is stored, never told: the objectives are validation accuracy and size only.
"""
from __future__ import annotations

import os
import socket
from collections import Counter
from pathlib import Path
from typing import Callable

import optuna
from ray.tune.search import Searcher

from ...errors import UsageError
from ...resolution import resolve_trial
from ...results.record import BASELINE, confirms_of, is_baseline
from ..studies.study import INTERRUPTED, StudyPlan, Tally, requeue
from ...results.trials_table import MEASURED, RUN_INFO
from .messages import Report, TuneTrial

# the user attributes copied from a trial's reports (one list, the trials table's)
ATTRS = tuple(a for a in MEASURED + RUN_INFO if a != "epochs_run")
State = optuna.trial.TrialState
DRIVER = f"{socket.gethostname()}:{os.getpid()}"  # which driver asked a trial (--join)


class StudySearcher(Searcher):
    def __init__(self, plans: list[StudyPlan], stopped_early: set[str] | None = None,
                 on_change: Callable[[], None] | None = None, max_failures: int | None = None,
                 results: Path | None = None):
        super().__init__(metric=None, mode=None)
        self.results = Path(results).resolve() if results is not None else None
        self.checkpoints: dict[str, str] = {}  # Tune trial -> the folder of its last checkpoint
        self.plans = {plan.name: plan for plan in plans}
        self.stopped_early = stopped_early if stopped_early is not None else set()
        self.on_change = on_change or (lambda: None)
        self.max_failures = max_failures
        self.live: dict[str, tuple[StudyPlan, optuna.Trial]] = {}
        self.last: dict[str, dict] = {}
        self.pending_errors: dict[str, tuple[StudyPlan, optuna.Trial]] = {}
        self.failures: Counter = Counter()
        self.confirmed: set[str] = set()  # studies whose one-time confirmations were queued

    # Tune passes its own metric/mode here; the studies carry ours.
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True

    def save(self, checkpoint_path: str) -> None:  # the Optuna storage is the saved state
        pass

    def restore(self, checkpoint_path: str) -> None:
        pass

    def _open(self, plan: StudyPlan, counts: Tally) -> bool:
        """Room for one more trial: a main one (``counts`` come from the storage, so drivers
        sharing a study (--join) stop together at its target), or a queued confirmation."""
        if self.max_failures is not None and self.failures[plan.name] >= self.max_failures:
            return False
        return plan.main_open(counts) or counts.confirm_waiting > 0

    def _counts(self, plan: StudyPlan) -> Tally:
        """The study's counts, the confirmation runs its design calls for queued first: a
        level design's as each level's runs end (asked every time), the others' once, when
        the main trials have ended (then never asked again by this driver: each query holds
        the study's lock in a shared storage)."""
        counts = plan.tally()
        if not counts.finished or plan.name in self.confirmed:
            return counts
        if plan.design.confirm_once:
            if not plan.main_done(counts):
                return counts
            self.confirmed.add(plan.name)
        if plan.queue_confirmations():
            counts = plan.tally()
        return counts

    def suggest(self, trial_id: str):
        counts = {name: self._counts(plan) for name, plan in self.plans.items()}
        candidates = [plan for plan in self.plans.values()
                      if self._open(plan, counts[plan.name])]
        if not candidates:
            return Searcher.FINISHED if not self.live and not self.pending_errors else None
        plan = min(candidates, key=lambda p: counts[p.name].busy)
        trial = plan.ask()  # None: another driver took the last place meanwhile
        if trial is None:
            return None
        confirms = confirms_of(trial)
        try:
            # resolved once, here: trials.csv, metrics.json and model.json hold the same
            config = resolve_trial(plan.sample(trial))
        except UsageError as err:  # a combination the space allows but the trial can't run
            self._fail(plan, trial, str(err))
            return None
        trial.set_user_attr("config", config.to_dict())
        trial.set_user_attr(BASELINE, is_baseline(config.prune.prune_ratio, confirms))
        trial.set_user_attr("driver", DRIVER)
        self.live[trial_id] = (plan, trial)
        return TuneTrial(plan.name, trial.number, confirms, config).to_tune()

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.live:
            self.last[trial_id] = result

    def record_checkpoint(self, trial_id: str, path: str) -> None:
        """Tune registered a checkpoint of a live trial (the final one is its model)."""
        if trial_id not in self.live:
            return
        if self.results is not None:  # relative, so a copied results folder still finds it
            full = Path(path).resolve()
            if full.is_relative_to(self.results):
                path = str(full.relative_to(self.results))
        self.checkpoints[trial_id] = path

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if trial_id not in self.live:
            return
        plan, trial = self.live.pop(trial_id)
        result = Report.of(result or self.last.get(trial_id))
        self.last.pop(trial_id, None)
        model_dir = self.checkpoints.pop(trial_id, None)
        if error:  # the reason arrives through record_error (Tune calls its callbacks later)
            self.pending_errors[trial_id] = (plan, trial)
            return
        if result.fail_reason:
            self._fail(plan, trial, result.fail_reason, result)
        elif result.final:
            self._set_attrs(trial, result)
            if model_dir is not None:
                trial.set_user_attr("model_dir", model_dir)
            plan.study.tell(trial, result.values)
        elif trial_id in self.stopped_early:
            self._set_attrs(trial, result)
            plan.study.tell(trial, state=State.PRUNED)
        else:
            self._fail(plan, trial, INTERRUPTED, result)
            requeue(plan.study, trial)
        self.on_change()

    def record_error(self, trial_id: str, reason: str) -> None:
        if trial_id in self.pending_errors:
            plan, trial = self.pending_errors.pop(trial_id)
            self._fail(plan, trial, reason)
            self.on_change()

    def flush(self) -> None:
        """After the Tune run: tell what is still open (errors whose reason never came, and
        trials an interrupted run never completed: FAIL, their parameters queued again)."""
        for trial_id in list(self.pending_errors):
            self.record_error(trial_id, "the trial raised an error (see the Tune logs)")
        for trial_id in list(self.live):
            plan, trial = self.live.pop(trial_id)
            self.checkpoints.pop(trial_id, None)
            self._fail(plan, trial, INTERRUPTED, Report.of(self.last.pop(trial_id, None)))
            requeue(plan.study, trial)
        self.on_change()

    def _set_attrs(self, trial: optuna.Trial, result: Report) -> None:
        for key in ATTRS:  # an epoch report's "seconds" is that epoch's: keep only totals
            if result.get(key) is not None and (key != "seconds" or result.final):
                trial.set_user_attr(key, result.get(key))
        trial.set_user_attr("epochs_run", result.epoch)

    def _fail(self, plan: StudyPlan, trial: optuna.Trial, reason: str,
              result: Report | None = None) -> None:
        if result is not None and result.metrics:
            self._set_attrs(trial, result)
        trial.set_user_attr("fail_reason", " ".join(str(reason).split())[:500])
        plan.study.tell(trial, state=State.FAIL)
        if reason != INTERRUPTED:
            self.failures[plan.name] += 1
