"""--keep-models front on real Optuna studies holding trials as the searcher records them: which
models the rule removes while main trials and confirmation runs are still to come, and that it
removes the model files (only them) from the trials' folders."""
from __future__ import annotations

import dataclasses

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from hpo_prune.settings import TrialConfig
from hpo_prune.files import METRICS_FILE, MODEL_FILE
from hpo_prune.results import trials_table
from hpo_prune.search.studies import keep
from hpo_prune.results.record import FRONT_KEEPS, FRONT_REMOVES
from hpo_prune.search.studies import space as spaces
from hpo_prune.search.studies.designs import design_of
from hpo_prune.search.studies.study import CONFIRMS, INTERRUPTED, SEED, StudyPlan

DIST = {"prune_ratio": FloatDistribution(0.0, 0.95)}
BASE = TrialConfig(model="vgg16", dataset="digits", init="scratch")


def plan(target: int, confirm: int) -> StudyPlan:
    study = optuna.create_study(directions=["maximize", "minimize"])
    design = design_of(spaces.load(None, "vgg16"), "tpe", 0, target, confirm=confirm,
                       levels=())
    return StudyPlan(study, BASE, design)


def add(p: StudyPlan, val=None, rem=None, ratio=0.5, state="COMPLETE", confirms=None,
        fail_reason=None) -> int:
    attrs = {"baseline": ratio == 0 and confirms is None,
             "model_dir": f"tune/run-1/t{len(p.study.trials)}/checkpoint_000001"}
    if confirms is not None:
        attrs[CONFIRMS] = confirms
    if fail_reason:
        attrs["fail_reason"] = fail_reason
    done = state == "COMPLETE"
    p.study.add_trial(create_trial(state=TrialState[state], params={"prune_ratio": ratio},
                                   distributions=DIST, values=[val, rem] if done else None,
                                   user_attrs=attrs))
    return p.study.trials[-1].number


def removed(p: StudyPlan) -> list[int]:
    return sorted(t.number for t in keep.removable(p, p.study.get_trials()))


def test_without_confirmation_runs_a_dominated_trial_goes_at_once():
    p = plan(target=10, confirm=0)
    add(p, 0.95, 1.0, ratio=0.0)  # 0: baseline
    a = add(p, 0.90, 0.5)
    b = add(p, 0.85, 0.6)  # dominated by a
    c = add(p, 0.80, 0.3)  # not dominated: it removes more
    assert removed(p) == [b]
    d = add(p, 0.91, 0.25)  # dominates a, b and c
    assert removed(p) == [a, b, c]
    assert d not in removed(p)


def test_the_first_baseline_run_is_always_kept_its_seed_replicates_go_once_all_ended():
    for last in ("RUNNING", "COMPLETE"):
        p = plan(target=4, confirm=0)
        first = add(p, 0.50, 1.0, ratio=0.0)
        second = add(p, 0.60, 1.0, ratio=0.0)
        third = add(p, 0.55, 1.0, ratio=0.0, state=last)  # the baseline's third seed
        add(p, 0.90, 0.4)  # dominates the reference (their mean): its first run stays
        if last == "RUNNING":  # the reference is not settled yet: nothing of it goes
            assert removed(p) == []
        else:
            assert removed(p) == [second, third] and first not in removed(p)


def test_with_confirmations_a_dominance_counts_once_both_means_are_final():
    p = plan(target=4, confirm=1)
    add(p, 0.95, 1.0, ratio=0.0)
    a = add(p, 0.90, 0.5)
    b = add(p, 0.88, 0.55)  # dominated by a's single run, so never confirmed itself
    # a is on the main front: it will be confirmed, and its mean may fall below b's value
    assert removed(p) == []  # main trials still to come
    p.design = dataclasses.replace(p.design, target=3)
    assert removed(p) == []  # main trials done, a's confirmation not run yet
    p.study.enqueue_trial({"prune_ratio": 0.5}, user_attrs={CONFIRMS: a, SEED: 1})
    assert removed(p) == []  # queued
    add(p, state="FAIL", confirms=a, fail_reason=INTERRUPTED)
    assert removed(p) == []  # interrupted: it runs again (the queued one above)
    running = p.study.ask()
    assert running.user_attrs[CONFIRMS] == a
    assert removed(p) == []  # running
    p.study.tell(running, [0.70, 0.5])  # a's mean falls to 0.80: b is not dominated after all
    assert not p.study.get_trials(states=(TrialState.WAITING, TrialState.RUNNING))
    assert removed(p) == []


def test_with_confirmations_a_mean_that_holds_removes_the_dominated():
    p = plan(target=3, confirm=1)
    add(p, 0.95, 1.0, ratio=0.0)
    a = add(p, 0.90, 0.5)
    b = add(p, 0.88, 0.55)
    add(p, 0.90, 0.5, confirms=a)  # a's mean stays 0.90: final, and it dominates b
    assert removed(p) == [b]


def test_a_failed_confirmation_is_final_an_interrupted_one_is_not():
    p = plan(target=2, confirm=1)
    add(p, 0.95, 1.0, ratio=0.0)
    a = add(p, 0.90, 0.3)
    b = add(p, 0.60, 0.35, ratio=0.4, confirms=None)  # a third main trial: over the target
    add(p, state="FAIL", confirms=a, fail_reason=INTERRUPTED)
    assert removed(p) == []  # a's confirmation is to run again
    add(p, state="FAIL", confirms=a, fail_reason="training diverged")
    assert removed(p) == [b]  # it failed for good: a keeps its single value


@pytest.mark.parametrize("how", ["front", "none", "all"])
def test_remove_models_deletes_only_the_model_files(tmp_path, how):
    p = plan(target=3, confirm=0)
    numbers = [add(p, 0.95, 1.0, ratio=0.0), add(p, 0.90, 0.5), add(p, 0.85, 0.6)]
    for t in p.study.get_trials():
        folder = tmp_path / t.user_attrs["model_dir"]
        folder.mkdir(parents=True)
        (folder / MODEL_FILE).write_bytes(b"model")
        (folder / METRICS_FILE).write_text("{}")
    gone = keep.remove_models(p, tmp_path, how)
    assert gone == {"front": [numbers[2]], "none": numbers, "all": []}[how]
    for t in p.study.get_trials():
        folder = tmp_path / t.user_attrs["model_dir"]
        assert (folder / MODEL_FILE).exists() == (t.number not in gone)
        assert (folder / METRICS_FILE).exists()
    assert keep.remove_models(p, tmp_path, how) == []  # nothing left to remove
    # front's decision is recorded whatever --keep-models is, and read back by the table
    assert p.study.user_attrs[FRONT_REMOVES] == [numbers[2]]
    table = trials_table.frame([p.study], tmp_path)
    assert list(table[FRONT_KEEPS]) == [True, True, False]
    assert list(table["model_kept"]) == [n not in gone for n in numbers]
