"""``--keep-models front|all|none``: which finished trials keep their model file.

- ``all`` keeps every COMPLETE trial's model; ``none`` removes each one once the trial is
  recorded (the trials table and metrics.json stay).
- ``front`` (the default) removes a trial's model as soon as another COMPLETE configuration of
  its study dominates it for good on (val_acc max, remaining_fraction min), by the project's one
  Pareto rule (``objectives.non_dominated``), so nothing on the study's final front is ever
  lost. One unpruned model per study is always kept: the first baseline run's; the other seeds
  of the baseline (``--baseline-seeds``) are replicates of that configuration, measured for the
  reference's mean and spread, and their models go once every baseline run has ended (a
  dense VGG16 is 59 MB). Other unpruned trials (a grid's prune_ratio 0) are kept.

Configurations are what the analysis puts on its fronts (``record``: a trial together with its
confirmation runs, valued at their seed means, and the baseline runs together as the one
reference). A seed mean moves while runs of its
configuration are still to come, so a dominance only counts between *settled* configurations,
whose value can no longer change: none of their runs waits or runs, and either they will never
be confirmed (``--confirm 0``, a baseline, a trial at chance beside trained baselines
(``studies.to_confirm``), or a trial already dominated among the study's main trials:
confirmations repeat the main front only, and a trial off it stays off) or their
``--confirm`` runs have ended. Two settled configurations keep their values, so a dominance
between them is permanent. (A ``--resume`` with a larger ``--confirm`` adds runs to
configurations that were settled; a model removed before that is not brought back.)

With pruning levels (``hpo_prune.levels``) ``front`` keeps, besides the first baseline run's
model, one model per level: its chosen run's (the configuration its fresh seeds value). The
level's other search runs lose theirs once the level's search runs have all ended (the choice
is final), and its fresh-seed runs, replicates of the chosen one, once they finish.

The models are files in the trials' checkpoint folders (``model_dir``); only MODEL_FILE is
removed, metrics.json and the Tune record stay. What ``front`` removes is recorded in the study
whatever ``--keep-models`` is (``record.FRONT_REMOVES``), so the export can tell which setting
would have kept a model. A resumed search applies the same rule when it
starts, so a search that ran with ``all`` and resumes with ``front`` is pruned at once.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import optuna

from ...levels import LEVEL
from ...objectives import non_dominated
from ...results.record import (FRONT_REMOVES, REFERENCE, is_confirmation, marked_baseline,
                             trial_configuration, unpruned)
from .study import StudyPlan, interrupted, to_confirm
from ...results.files import model_file

State = optuna.trial.TrialState


def _settled(key: int, pending: set[int], on_front: set[int], confirm: int,
             main_done: bool, ended: dict[int, int]) -> bool:
    if key in pending:
        return False
    if key == REFERENCE or confirm <= 0 or key not in on_front:
        return True  # never confirmed
    return main_done and ended[key] >= confirm  # its confirmation runs are over


def removable(plan: StudyPlan, trials) -> list:
    """The COMPLETE trials of ``plan``'s study whose models ``front`` removes: its design's
    rule (``front_removes`` or ``level_removes``, ``search.designs``)."""
    return plan.design.removable(plan, trials)


def front_removes(trials, dataset: str, confirm: int, main_done: bool) -> list:
    """The rule of a front or grid design: ``trials`` on ``dataset``, ``confirm``
    confirmation runs per front configuration, ``main_done`` whether its main trials are."""
    complete = [t for t in trials if t.state == State.COMPLETE and t.values]
    baselines = {t.number for t in complete if marked_baseline(t)}
    groups: dict[int, list] = defaultdict(list)
    for t in complete:
        groups[trial_configuration(t, baselines)].append(t)
    pending, ended = set(), defaultdict(int)
    for t in trials:
        key = trial_configuration(t, baselines)
        if t.state in (State.WAITING, State.RUNNING):
            pending.add(key if is_confirmation(t) else REFERENCE if unpruned(t) else t.number)
        elif is_confirmation(t) and not interrupted(t):
            ended[key] += 1  # COMPLETE, or FAIL (a failed confirmation is not run again)
    on_front = {t.number for t in to_confirm(trials, dataset)}
    settled = [k for k in groups if _settled(k, pending, on_front, confirm, main_done, ended)]
    if not settled:
        return []
    values = [np.mean([t.values for t in groups[k]], axis=0) for k in settled]
    kept = non_dominated(values)
    gone = [t for k, on in zip(settled, kept) if not on and k != REFERENCE
            for t in groups[k] if not unpruned(t)]
    if REFERENCE in settled:  # the reference's seed replicates: its first run's model stays
        gone += sorted(groups[REFERENCE], key=lambda t: t.number)[1:]
    return sorted(gone, key=lambda t: t.number)


def level_removes(trials, chosen: dict[float, int]) -> list:
    """A level design's rule (see the top): the first baseline run and each level's chosen
    run (``chosen``: level -> its trial number, for the levels whose choice is final) keep
    their models."""
    complete = [t for t in trials if t.state == State.COMPLETE and t.values]
    gone = []
    if not any(t.state in (State.WAITING, State.RUNNING) and unpruned(t) for t in trials):
        gone += sorted((t for t in complete if marked_baseline(t)),
                       key=lambda t: t.number)[1:]
    for t in complete:
        level = t.user_attrs.get(LEVEL)
        if level is None:
            continue
        if is_confirmation(t) or (level in chosen and t.number != chosen[level]):
            gone.append(t)
    return sorted(gone, key=lambda t: t.number)


def remove_models(plan: StudyPlan, folder: Path | None, keep: str) -> list[int]:
    """Record what ``front`` removes (``record.FRONT_REMOVES``, whatever ``keep`` is), then
    remove the model files ``keep`` does not keep; returns the trial numbers removed now.
    ``folder``: the results folder the trials' model_dir is relative to."""
    trials = plan.study.get_trials(deepcopy=False)
    front = removable(plan, trials)
    numbers = [t.number for t in front]
    if plan.study.user_attrs.get(FRONT_REMOVES) != numbers:
        plan.study.set_user_attr(FRONT_REMOVES, numbers)
    if keep == "all":
        return []
    chosen = front if keep == "front" else [t for t in trials if t.state == State.COMPLETE]
    removed = []
    for trial in chosen:
        path = model_file(trial.user_attrs.get("model_dir"), folder)
        if path is not None and path.is_file():
            path.unlink()
            removed.append(trial.number)
    return sorted(removed)
