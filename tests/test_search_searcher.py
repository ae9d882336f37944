"""The Tune searcher that serves Optuna studies (StudySearcher): what each way a trial ends is
recorded as, and when the search is finished; on real Optuna studies (no Ray cluster needed)."""
from __future__ import annotations

import optuna
import pytest

from hpo_prune.settings import TrialConfig
from hpo_prune.search.studies import space as spaces
from hpo_prune.search.tuning.searcher import StudySearcher
from hpo_prune.search.studies.designs import design_of
from hpo_prune.search.studies.study import INTERRUPTED, open_study

State = optuna.trial.TrialState


@pytest.fixture
def searcher():
    storage = optuna.storages.InMemoryStorage()
    space = spaces.load("vgg.yaml", "vgg16")
    base = TrialConfig(model="vgg16", dataset="digits", init="scratch", epochs=3)
    plan = open_study(storage, "s.vgg16.digits.scratch", base, design_of(space, "tpe", 0, 5))
    stopped: set[str] = set()
    return StudySearcher([plan], stopped_early=stopped), plan, stopped


def test_searcher_records_complete_pruned_fail_and_interrupted(searcher):
    s, plan, stopped = searcher
    specs = {tid: s.suggest(tid) for tid in ("a", "b", "c", "d", "e")}
    assert specs["a"]["config"]["prune_ratio"] == 0.0  # the enqueued baseline comes first
    assert s.suggest("f") is None  # all 5 in flight: wait, don't finish
    final = {"final": True, "val_acc": 0.9, "remaining_fraction": 0.5, "test_acc": 0.8,
             "epoch": 3, "params_total": 10, "params_remaining": 5}
    s.on_trial_complete("a", final)
    stopped.add("b")
    s.on_trial_complete("b", {"epoch": 1, "val_acc": 0.2})
    s.on_trial_complete("c", {"fail_reason": "training diverged: loss nan"})
    s.on_trial_complete("d", {"epoch": 1, "val_acc": 0.3})  # ended by an interruption
    s.on_trial_complete("e", error=True)
    s.record_error("e", "RuntimeError: worker died")
    states = {t.number: t for t in plan.study.get_trials()}
    by_id = {tid: states[spec["trial"]] for tid, spec in specs.items()}
    assert by_id["a"].state == State.COMPLETE and by_id["a"].values == [0.9, 0.5]
    assert by_id["a"].user_attrs["test_acc"] == 0.8 and by_id["a"].user_attrs["epochs_run"] == 3
    assert by_id["b"].state == State.PRUNED and by_id["b"].values is None
    assert by_id["c"].state == State.FAIL and "diverged" in by_id["c"].user_attrs["fail_reason"]
    assert by_id["d"].state == State.FAIL and by_id["d"].user_attrs["fail_reason"] == INTERRUPTED
    assert by_id["e"].user_attrs["fail_reason"] == "RuntimeError: worker died"
    waiting = plan.study.get_trials(states=(State.WAITING,))
    assert len(waiting) == 1  # the interrupted one, queued again
    # 2 finished of 5: three more are suggested, the queued one first, with its parameters
    again = s.suggest("g")
    assert {k: again["config"][k] for k in by_id["d"].params} == by_id["d"].params
    assert plan.tally().finished == 2


def test_searcher_finishes_when_every_study_reached_its_target(searcher):
    s, plan, _ = searcher
    final = {"final": True, "val_acc": 0.5, "remaining_fraction": 0.5, "epoch": 3}
    for i in range(5):
        s.suggest(str(i))
        s.on_trial_complete(str(i), final)
    assert plan.tally().finished == 5
    assert s.suggest("next") == "FINISHED"
