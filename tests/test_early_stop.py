"""Sparsity-bucketed ASHA on real Ray Trial objects (no Ray cluster needed). The searcher's
bookkeeping is tested in test_search_searcher.py."""
from __future__ import annotations

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from hpo_prune.search.studies import space as spaces
from hpo_prune.search.studies.designs import design_of
from hpo_prune.search.tuning.scheduler import SparsityASHA


def trial(study: str, ratio: float, confirms: int | None = None) -> Trial:
    return Trial("trainable", config={"study": study, "trial": 0, "confirms": confirms,
                                      "config": {"prune_ratio": ratio}}, stub=True)


def test_asha_only_compares_trials_of_one_study_and_sparsity_bucket():
    front = design_of(spaces.load(None, "vgg16"), levels=())  # 5 slices of prune_ratio
    asha = SparsityASHA(max_t=4, rung=front.rung, grace_period=1, reduction_factor=2)
    good, weak = trial("s", 0.10), trial("s", 0.15)
    sparse, other = trial("s", 0.90), trial("t", 0.12)
    for t in (good, weak, sparse, other):
        asha.on_trial_add(None, t)
    result = lambda acc: {"epoch": 1, "val_acc": acc}  # noqa: E731
    assert asha.on_trial_result(None, good, result(0.9)) == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, weak, result(0.5)) == TrialScheduler.STOP
    # far sparser, or of another study: no competitor in its bracket, so it goes on
    assert asha.on_trial_result(None, sparse, result(0.1)) == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, other, result(0.2)) == TrialScheduler.CONTINUE
    # the unpruned baseline is the analysis' reference: it is never stopped
    baseline = trial("s", 0.0)
    asha.on_trial_add(None, baseline)
    assert asha.on_trial_result(None, baseline, result(0.0)) == TrialScheduler.CONTINUE
    # nor is a confirmation run (a front configuration re-run with another seed), however weak
    # against its bracket
    confirmation = trial("s", 0.12, confirms=7)
    asha.on_trial_add(None, confirmation)
    for epoch in (1, 2, 3):
        assert asha.on_trial_result(None, confirmation, {"epoch": epoch, "val_acc": 0.0}) \
            == TrialScheduler.CONTINUE
    assert asha.stopped == {weak.trial_id}
    # the final report (test accuracy etc.) is never a reason to stop
    assert asha.on_trial_result(None, sparse, {"epoch": 4, "val_acc": 0.0, "final": True}) \
        == TrialScheduler.CONTINUE


def test_a_trial_that_trained_to_its_last_epoch_is_never_stopped():
    """ASHA's top rung is max_t: a trial reaching it weaker than one there before has trained
    fully all the same, and must end COMPLETE with its final report, not PRUNED."""
    front = design_of(spaces.load(None, "vgg16"), levels=())
    asha = SparsityASHA(max_t=4, rung=front.rung, grace_period=1, reduction_factor=2)
    strong, weak = trial("s", 0.5), trial("s", 0.55)
    for t in (strong, weak):
        asha.on_trial_add(None, t)
    for epoch, (a, b) in enumerate([(0.5, 0.6), (0.6, 0.7), (0.7, 0.8)], start=1):
        assert asha.on_trial_result(None, strong, {"epoch": epoch, "val_acc": a}) \
            == TrialScheduler.CONTINUE
        assert asha.on_trial_result(None, weak, {"epoch": epoch, "val_acc": b}) \
            == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, strong, {"epoch": 4, "val_acc": 0.9}) \
        == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, weak, {"epoch": 4, "val_acc": 0.5}) \
        == TrialScheduler.CONTINUE
    assert asha.stopped == set()
