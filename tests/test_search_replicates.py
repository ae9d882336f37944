"""Replicates in a search: the K unpruned baselines each study starts with (--baseline-seeds)
and the confirmation runs of every Pareto-front configuration with more seeds (--confirm).

The bookkeeping (what is queued, with which seed, once) on real Optuna studies without Ray;
then one tiny real search (Ray Tune + Optuna), resumed with more confirmation seeds."""
from __future__ import annotations

import json

import optuna
import pandas as pd

from hpo_prune import models
from hpo_prune.settings import TrialConfig
from hpo_prune.objectives import non_dominated
from hpo_prune.search.studies import space as spaces
from hpo_prune.results import trials_table
from hpo_prune.search.tuning.searcher import StudySearcher
from hpo_prune.search.studies.designs import design_of
from hpo_prune.objectives import at_chance, classes_of
from hpo_prune.search.studies.study import (INTERRUPTED, Mode, open_study, requeue_interrupted,
                                            to_confirm)
from helpers import TINY, search, studies

State = optuna.trial.TrialState
SEED = 5
BASE = TrialConfig(model="vgg16", dataset="digits", init="scratch", epochs=3, seed=SEED)
# (val_acc, remaining_fraction) the trials of a study of 5 report, in the order asked: the two
# baselines, then three sampled ones; #3 is dominated by #2, so the front's non-baselines are
# #2 and #4
VALUES = [(0.90, 1.0), (0.92, 1.0), (0.80, 0.5), (0.70, 0.6), (0.60, 0.2)]


def final(acc: float, remaining: float) -> dict:
    return {"final": True, "val_acc": acc, "remaining_fraction": remaining, "epoch": 3}


def plan_of(storage=None, name="s.vgg16.digits.scratch", confirm=1, resume=False, **kwargs):
    design = design_of(spaces.load("vgg.yaml", "vgg16"), kwargs.pop("sampler", "tpe"), 0,
                    kwargs.pop("target", 5), baseline_seeds=kwargs.pop("k", 2), confirm=confirm,
                    **kwargs)
    return open_study(storage or optuna.storages.InMemoryStorage(), name, BASE, design,
                      Mode.RESUME if resume else Mode.NEW)


def run_main_trials(searcher: StudySearcher, values=VALUES, **reported) -> list[dict]:
    specs = [searcher.suggest(f"m{i}") for i in range(len(values))]
    for i, (acc, remaining) in enumerate(values):
        searcher.on_trial_complete(f"m{i}", {**final(acc, remaining), **reported})
    return specs


def confirmations(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if t.user_attrs.get("confirms") is not None]


def test_baselines_are_queued_with_consecutive_seeds_and_the_recipe_learning_rate():
    # the family's default optimizer's, for an unpruned run
    lr = models.recipe("vgg16", "scratch", dense=True)["lr"]
    vgg = spaces.load("vgg.yaml", "vgg16")
    low = 2 * lr  # a range above the recipe's rate: Optuna runs a queued value as it is
    above = spaces.SearchSpace(vgg.path, {**vgg.params, "lr": {"type": "float", "log": True,
                                                                "low": low, "high": 20 * lr}},
                               vgg.fixed, {})
    plan = open_study(optuna.storages.InMemoryStorage(), "s.vgg16.digits.scratch", BASE,
                      design_of(above, "tpe", 0, 5, baseline_seeds=3))
    searcher = StudySearcher([plan])
    specs = [searcher.suggest(str(i)) for i in range(4)]
    for i, spec in enumerate(specs[:3]):
        config = spec["config"]
        assert (config["prune_ratio"], config["lr"], config["seed"]) == (0.0, lr, SEED + i)
        assert spec["confirms"] is None
    assert specs[3]["config"]["seed"] == SEED and specs[3]["config"]["lr"] >= low
    trials = plan.study.get_trials()
    assert [t.user_attrs["baseline"] for t in trials] == [True, True, True, False]
    assert [t.params["lr"] for t in trials[:3]] == [lr] * 3
    # a space that fixes the optimizer: that optimizer's default learning rate
    sgd = spaces.SearchSpace(vgg.path, vgg.params, {**vgg.fixed, "optimizer": "sgd"}, {})
    other = open_study(optuna.storages.InMemoryStorage(), "o.vgg16.digits.scratch", BASE,
                       design_of(sgd, "tpe", 0, 5, baseline_seeds=1))
    (queued,) = other.study.get_trials()
    assert queued.system_attrs["fixed_params"]["lr"] == models.recipe("vgg16", "scratch",
                                                                      "sgd", dense=True)["lr"]


def test_no_more_baselines_than_the_target_and_none_in_a_grid_study():
    plan = plan_of(k=3, target=2)
    assert len(plan.study.get_trials(states=(State.WAITING,))) == 2
    grid = plan_of(name="g.vgg16.digits.scratch", sampler="grid", target=2, k=3)
    assert [t.user_attrs for t in grid.study.get_trials()] == [{}, {}]  # the grid's points


def test_front_configurations_are_confirmed_once_with_the_next_seeds_off_the_target():
    plan = plan_of(confirm=2)
    searcher = StudySearcher([plan])
    specs = run_main_trials(searcher)
    numbers = [s["trial"] for s in specs]
    assert plan.tally().finished == 5
    extra = [searcher.suggest(f"c{i}") for i in range(5)]
    assert extra[4] is None  # four confirmations live: wait
    assert [(s["confirms"], s["config"]["seed"]) for s in extra[:4]] == [
        (numbers[2], SEED + 1), (numbers[2], SEED + 2), (numbers[4], SEED + 1),
        (numbers[4], SEED + 2)]
    for spec in extra[:4]:  # the same settings as the original, but the seed
        original = specs[numbers.index(spec["confirms"])]["config"]
        assert {**spec["config"], "seed": original["seed"]} == original
    for i in range(4):
        searcher.on_trial_complete(f"c{i}", final(0.75, 0.5))
    assert searcher.suggest("next") == StudySearcher.FINISHED
    assert plan.tally().finished == 5  # confirmations are not counted against the target
    counts = plan.tally()
    assert (counts.confirm_done, counts.confirm_total) == (4, 4)
    assert all(not t.user_attrs["baseline"] for t in confirmations(plan.study))
    assert plan.queue_confirmations() == 0  # asked again: nothing is queued twice


def test_a_front_configuration_at_chance_is_not_confirmed():
    """#4 is on the front (fewest parameters) but its 15% val accuracy is at chance on digits
    (10 classes: below 10% + 10 points): only #2 is re-run."""
    plan = plan_of(confirm=1)
    searcher = StudySearcher([plan])
    values = VALUES[:4] + [(0.15, 0.2)]
    specs = run_main_trials(searcher, values)
    assert searcher.suggest("c0")["confirms"] == specs[2]["trial"]
    assert searcher.suggest("c1") is None
    searcher.on_trial_complete("c0", final(0.79, 0.5))
    assert searcher.suggest("next") == StudySearcher.FINISHED
    assert [t.user_attrs["confirms"] for t in confirmations(plan.study)] == [specs[2]["trial"]]


def test_chance_comes_from_the_class_count_the_trials_recorded():
    """An image folder is in no class table: the class count its trials recorded (4 classes,
    chance 25%) says that #4's 30% stayed at chance, so only #2 is re-run; without a recorded
    count an unknown dataset's chance is unknown and every front configuration is re-run."""
    plan = plan_of(confirm=1)
    searcher = StudySearcher([plan])
    specs = run_main_trials(searcher, VALUES[:4] + [(0.30, 0.2)], classes=4)
    trials = plan.study.get_trials()
    assert {t.user_attrs["classes"] for t in trials} == {4}  # recorded, as in trials.csv
    assert [t.number for t in to_confirm(trials, "folder:/my/images")] == [specs[2]["trial"]]
    assert [t.number for t in to_confirm(trials, "digits")] == [specs[2]["trial"]]
    for t in trials:
        t.user_attrs.pop("classes")
    assert [t.number for t in to_confirm(trials, "folder:/my/images")] == [
        specs[2]["trial"], specs[4]["trial"]]
    assert classes_of(None, "cifar100") == 100 and classes_of(7, "cifar100") == 7
    assert at_chance(0.30, 4) and not at_chance(0.36, 4) and not at_chance(0.0, None)


def test_at_chance_configurations_are_confirmed_when_the_baselines_are_at_chance_too():
    """Against an untrained reference a chance-level configuration may be "within 1 point":
    it is re-run like any front configuration."""
    plan = plan_of(confirm=1)
    searcher = StudySearcher([plan])
    specs = run_main_trials(searcher, [(0.12, 1.0), (0.11, 1.0), (0.15, 0.5), (0.1, 0.6),
                                       (0.13, 0.2)])
    asked = [searcher.suggest(f"c{i}") for i in range(3)]
    assert [a["confirms"] for a in asked[:2]] == [specs[2]["trial"], specs[4]["trial"]]
    assert asked[2] is None


def test_progress_counts_confirmations_apart():
    from hpo_prune.search.tuning.progress import Progress

    plan = plan_of(confirm=1)
    searcher = StudySearcher([plan])
    progress = Progress(searcher, out=lambda line: None)
    run_main_trials(searcher)
    searcher.suggest("c0")
    assert "5/5 finished, confirm 0/2," in progress.status()
    searcher.on_trial_complete("c0", final(0.8, 0.5))
    assert "5/5 finished, confirm 1/2," in progress.status()


def test_the_front_is_non_dominated_of_complete_main_trials():
    """The rule is objectives.non_dominated over COMPLETE main trials; PRUNED and FAIL trials
    are neither on the front nor confirmed, and ties on the front are all kept."""
    stopped: set[str] = set()
    plan = plan_of(confirm=1, target=6)
    searcher = StudySearcher([plan], stopped_early=stopped)
    specs = [searcher.suggest(f"m{i}") for i in range(6)]
    values = [(0.9, 1.0), (0.9, 1.0), (0.8, 0.5), (0.8, 0.5), None, (0.5, 0.55)]
    stopped.add("m4")
    for i, v in enumerate(values):
        searcher.on_trial_complete(f"m{i}", final(*v) if v else {"epoch": 1, "val_acc": 0.99})
    assert searcher.suggest("c0")["confirms"] == specs[2]["trial"]
    assert searcher.suggest("c1")["confirms"] == specs[3]["trial"]
    assert searcher.suggest("c2") is None
    complete = [v for v in values if v]
    assert list(non_dominated(complete)) == [True, True, True, True, False]


def test_interrupted_confirmations_run_again_once_on_resume(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    plan = plan_of(optuna.storages.RDBStorage(url), confirm=1)
    searcher = StudySearcher([plan])
    run_main_trials(searcher)
    first, second = searcher.suggest("c0"), searcher.suggest("c1")
    searcher.on_trial_complete("c0", final(0.8, 0.5))
    # the driver dies with the second confirmation RUNNING; a resume fails it and queues it
    # again with what it confirms and its seed
    resumed = plan_of(optuna.storages.RDBStorage(url), confirm=1, resume=True)
    study = resumed.study
    (dead,) = [t for t in study.get_trials() if t.number == second["trial"]]
    assert dead.state == State.FAIL and dead.user_attrs["fail_reason"] == INTERRUPTED
    (again,) = study.get_trials(states=(State.WAITING,))
    assert again.user_attrs == {"confirms": second["confirms"],
                                "seed": second["config"]["seed"]}
    assert resumed.queue_confirmations() == 0  # the queued one stands for the interrupted one
    searcher = StudySearcher([resumed])
    spec = searcher.suggest("c2")
    assert (spec["confirms"], spec["config"]["seed"]) == (second["confirms"],
                                                          second["config"]["seed"])
    searcher.on_trial_complete("c2", final(0.6, 0.2))
    assert searcher.suggest("c3") == StudySearcher.FINISHED
    done = [t for t in confirmations(study) if t.state == State.COMPLETE]
    assert sorted((t.user_attrs["confirms"], t.user_attrs["seed"]) for t in done) == sorted(
        [(first["confirms"], SEED + 1), (second["confirms"], SEED + 1)])
    # a confirmation stopped by a Ctrl-C in this driver is queued again the same way
    plan = plan_of(confirm=1)
    searcher = StudySearcher([plan])
    run_main_trials(searcher)
    spec = searcher.suggest("c0")
    searcher.flush()
    (again,) = [t for t in plan.study.get_trials(states=(State.WAITING,))
                if t.user_attrs["confirms"] == spec["confirms"]]
    assert again.user_attrs == {"confirms": spec["confirms"], "seed": spec["config"]["seed"]}
    assert again.system_attrs["fixed_params"] == plan.study.trials[spec["trial"]].params


def test_a_baseline_killed_before_its_parameters_were_drawn_is_queued_again():
    plan = plan_of(k=2)
    trial = plan.ask()  # RUNNING, no parameters yet: the driver died here
    assert trial.params == {} and trial.user_attrs == {"seed": SEED}
    requeue_interrupted(plan.study)
    waiting = plan.study.get_trials(states=(State.WAITING,))
    assert sorted(t.user_attrs["seed"] for t in waiting) == [SEED, SEED + 1]


def test_raising_confirm_on_resume_queues_only_the_missing_seeds(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = StudySearcher([plan_of(optuna.storages.RDBStorage(url), confirm=0)])
    run_main_trials(searcher)
    assert searcher.suggest("x") == StudySearcher.FINISHED
    plan = plan_of(optuna.storages.RDBStorage(url), confirm=1, resume=True)
    assert plan.queue_confirmations() == 2
    plan = plan_of(optuna.storages.RDBStorage(url), confirm=2, resume=True)
    assert plan.queue_confirmations() == 2  # seed + 2 of each; seed + 1 is queued already
    assert plan.queue_confirmations() == 0
    keys = [(t.user_attrs["confirms"], t.user_attrs["seed"]) for t in confirmations(plan.study)]
    assert len(keys) == len(set(keys)) == 4
    # trials.csv shows the queued runs with what they confirm and the seed they will run with
    table = trials_table.frame([plan.study])
    waiting = table[table.state == "WAITING"]
    assert sorted(zip(waiting.confirms, waiting.seed)) == sorted(keys)
    assert not waiting.baseline.any()


# ------------------------------------------------------------------------ a real search
def test_tiny_search_with_baseline_seeds_and_confirmations_resumes_without_duplicates(
        tmp_path):
    seed = 3
    args = [*TINY, "--regimes", "scratch", "--trials", "4", "--baseline-seeds", "2",
            "--max-concurrent", "2", "--seed", str(seed), "--name", "rep",
            "--results", str(tmp_path)]
    proc = search(*args, "--confirm", "1", cwd=tmp_path)
    folder = tmp_path / "rep"
    record = json.loads((folder / "search.json").read_text())
    assert (record["baseline_seeds"], record["confirm"]) == (2, 1)

    def check(confirm: int) -> list[tuple[int, int]]:
        (study,) = studies(folder).values()
        trials = study.get_trials()
        assert not [t for t in trials if t.state != State.COMPLETE]
        main = [t for t in trials if t.user_attrs.get("confirms") is None]
        assert len(main) == 4  # --trials counts the baselines, not the confirmations
        baselines = [t for t in main if t.user_attrs["baseline"]]
        assert sorted(t.user_attrs["config"]["seed"] for t in baselines) == [seed, seed + 1]
        assert {t.params["lr"] for t in baselines} == {models.recipe(
            "mobilenet_v2", "scratch", dense=True)["lr"]}
        assert all(t.params["prune_ratio"] == 0.0 for t in baselines)
        on_front = non_dominated([t.values for t in main])
        front = [t for t, on in zip(main, on_front) if on and not t.user_attrs["baseline"]]
        assert front  # a pruned trial has fewer parameters than any baseline
        by_number = {t.number: t for t in main}
        keys = []
        for t in trials:
            if t.user_attrs.get("confirms") is None:
                continue
            original = by_number[t.user_attrs["confirms"]]
            config, before = t.user_attrs["config"], original.user_attrs["config"]
            assert config["seed"] == t.user_attrs["seed"]
            assert {**config, "seed": before["seed"]} == before  # the same settings
            assert t.params == original.params and not t.user_attrs["baseline"]
            keys.append((original.number, config["seed"] - before["seed"]))
        assert sorted(keys) == sorted((t.number, j) for t in front
                                      for j in range(1, confirm + 1))  # each once
        table = pd.read_csv(folder / "trials.csv")
        confirmed = table[table.confirms.notna()]
        assert sorted(zip(confirmed.confirms.astype(int), confirmed.seed)) == sorted(
            (n, seed + j) for n, j in keys)
        assert not table.baseline[table.confirms.notna()].any()
        return keys

    first = check(confirm=1)
    assert "confirms #" in proc.stdout
    # resumed with one more seed: only the seed + 2 runs are added
    search(*args, "--resume", "--confirm", "2", cwd=tmp_path)
    second = check(confirm=2)
    assert set(first) < set(second) and len(second) == 2 * len(first)
    assert json.loads((folder / "search.json").read_text())["confirm"] == 2
    again = search(*args, "--resume", "--confirm", "2", cwd=tmp_path)
    assert "nothing to run" in again.stdout
    assert check(confirm=2) == second
