"""Pruning levels in a search (``--levels``, ``hpo_prune.levels``): the balanced, deterministic
assignment of levels and seeds (the same in both regimes, kept by a resume), each level's
choice on val among its search runs and its fresh-seed runs, queued as soon as that level's
runs have ended, and the models ``--keep-models front`` keeps. On real Optuna studies driven
through the searcher without Ray; one tiny real search (Ray Tune + Optuna) at the end."""
from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest

from hpo_prune.settings import TrialConfig
from hpo_prune.levels import (BLOCK, FRESH_OFFSET, check_levels, check_replicates, choose,
                              fresh_seed, next_level, planned_runs, replicate_seed)
from hpo_prune.errors import UsageError
from hpo_prune.objectives import unpack_correct
from hpo_prune.search.studies import space as spaces
from hpo_prune.search.studies.keep import removable
from hpo_prune.search.tuning.searcher import StudySearcher
from hpo_prune.search.studies.designs import design_of
from hpo_prune.search.studies.study import Mode, open_study, recipe_params
from hpo_prune.models import recipe
from helpers import TINY, search, studies

State = optuna.trial.TrialState
LEVELS = (0.8, 0.9, 0.95)
SEED = 7


def plan_of(regime: str, storage=None, target=6, confirm=2, resume=False, levels=LEVELS,
            first_run="sampler"):
    base = TrialConfig(model="vgg16", dataset="digits", init=regime, epochs=3, seed=SEED)
    space = spaces.load("vgg.yaml", "vgg16").with_levels(levels)
    design = design_of(space, "tpe", SEED, target, baseline_seeds=3, confirm=confirm,
                       levels=levels, first_run=first_run)
    return open_study(storage or optuna.storages.InMemoryStorage(),
                      f"s.vgg16.digits.{regime}", base, design,
                      Mode.RESUME if resume else Mode.NEW)


def final(acc: float, remaining: float) -> dict:
    return {"final": True, "val_acc": acc, "remaining_fraction": remaining, "epoch": 3,
            "test_acc": acc}


def drive(searcher: StudySearcher, accuracy, limit: int = 100) -> list[dict]:
    """Ask and complete trials one at a time until the search is finished; ``accuracy(spec)``
    gives a trial's val accuracy."""
    specs = []
    for i in range(limit):
        spec = searcher.suggest(f"t{i}")
        if spec is StudySearcher.FINISHED or spec is None:
            break
        specs.append(spec)
        ratio = spec["config"]["prune_ratio"]
        searcher.on_trial_complete(f"t{i}", final(accuracy(spec), 1 - ratio))
    return specs


def level_runs(study: optuna.Study, confirmations: bool = False) -> list:
    return [t for t in study.get_trials() if t.user_attrs.get("level") is not None
            and (t.user_attrs.get("confirms") is not None) == confirmations]


# ---------------------------------------------------------------------------- the rules
def test_next_level_is_round_robin_and_fills_the_emptiest_level_first():
    assigned = []
    for _ in range(7):
        assigned.append(next_level(LEVELS, assigned))
    assert assigned == [0.8, 0.9, 0.95, 0.8, 0.9, 0.95, 0.8]
    assert next_level(LEVELS, [0.8, 0.95]) == 0.9  # a failed 0.9 run is replaced first
    assert planned_runs(LEVELS, 7) == {0.8: 3, 0.9: 2, 0.95: 2}


def test_choose_takes_the_best_val_accuracy_ties_to_the_lower_trial():
    assert choose([(3, 0.80), (4, 0.90), (5, 0.85)]) == 4
    assert choose([(6, 0.90), (4, 0.90)]) == 4
    assert choose([(4, float("nan"))]) is None and choose([]) is None


def test_fresh_seeds_are_shared_by_level_and_never_a_search_seed():
    assert fresh_seed(SEED, 1, 2) == SEED + FRESH_OFFSET * 2 + 2
    assert len({fresh_seed(0, i, j) for i in range(4) for j in range(1, 4)}) == 12


@pytest.mark.parametrize("levels, pruned, sampler, confirm, message", [
    ((0.8, 1.0), 5, "tpe", 2, "values in (0, 1)"),
    ((0.8, 0.8), 5, "tpe", 2, "lists 0.8 twice"),
    ((0.8,), 5, "grid", 2, "does not apply to --sampler grid"),
    ((0.8,), 5, "tpe", 0, "would value itself"),
    ((0.5, 0.8, 0.9), 2, "tpe", 2, "--trials leaves 2 pruned trial(s)")])
def test_check_levels_refuses_what_cannot_be_run(levels, pruned, sampler, confirm, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_levels(levels, pruned, sampler, confirm)


def test_one_run_per_level_values_itself_without_fresh_seeds():
    assert check_levels((0.8, 0.95), 2, "tpe", 0) == (0.8, 0.95)


def test_replicate_seed_blocks_are_disjoint_and_shared_by_both_regimes_of_a_replicate():
    # --seed 0, 1, 2 with 4 replicates: 12 blocks, none of them block 0 (the recipe seeds)
    starts = [replicate_seed(seed, 4, r) for seed in range(3) for r in range(1, 5)]
    assert len(set(starts)) == 12 and min(starts) == BLOCK
    assert sorted(starts) == [BLOCK * k for k in range(1, 13)]
    # every seed a replicate uses lies inside its block (16 levels, 10 fresh seeds each)
    design = design_of(spaces.load("vgg.yaml", "vgg16"), "tpe", 1, 40, 3, 10,
                    tuple(i / 20 for i in range(1, 17)), replicates=4)
    top = max(fresh_seed(0, 15, 10), 3 + 40)
    assert top < BLOCK
    for regime in ("pretrained", "scratch"):
        base = TrialConfig(model="vgg16", dataset="digits", init=regime, epochs=3, seed=1)
        replicated = design.replicated(base)
        assert [r for r, _, _ in replicated] == [1, 2, 3, 4]
        for r, config, d in replicated:
            assert config.train.seed == d.seed == replicate_seed(1, 4, r)
            assert config.net.model == "vgg16" and d.levels == design.levels
    # without replicates: the one study as given
    plain = design_of(spaces.load("vgg.yaml", "vgg16"), "tpe", 5, 6)
    base = TrialConfig(model="vgg16", dataset="digits", init="scratch", epochs=3, seed=5)
    assert plain.replicated(base) == [(None, base, plain)]


@pytest.mark.parametrize("replicates, levels, sampler, seed, message", [
    (0, (0.8,), "tpe", 0, "--replicates 0 is not a count"),
    (2, (), "tpe", 0, "applies to the level design only, not to --levels none"),
    (2, (), "grid", 0, "not to --sampler grid"),
    (2, (0.8,), "tpe", -1, "--seed -1 is negative")])
def test_check_replicates_refuses_what_cannot_apply(replicates, levels, sampler, seed, message):
    with pytest.raises(UsageError, match=message):
        check_replicates(replicates, levels, sampler, seed)


# ---------------------------------------------------------------------------- the search
def test_levels_and_seeds_are_balanced_and_the_same_in_both_regimes():
    plans = [plan_of("pretrained"), plan_of("scratch")]
    searcher = StudySearcher(plans)
    drive(searcher, lambda spec: 0.9 - 0.3 * spec["config"]["prune_ratio"])
    by_regime = {}
    for plan in plans:
        runs = level_runs(plan.study)
        # the 3 pruned trials: one per level, in the listed order, seeds after the baselines
        assert [t.params["prune_ratio"] for t in runs] == list(LEVELS)
        assert [t.user_attrs["config"]["seed"] for t in runs] == [SEED + 3, SEED + 4,
                                                                    SEED + 5]
        # the sampler chose the rest: schedule and lr drawn, not queued
        assert all({"schedule", "lr"} <= set(t.params) for t in runs)
        by_regime[plan.base.weights.init] = [
            (t.params["prune_ratio"], t.user_attrs["config"]["seed"])
            for t in runs + level_runs(plan.study, True)]
    assert by_regime["pretrained"] == by_regime["scratch"]


@pytest.mark.parametrize("regime", ["pretrained", "scratch"])
def test_recipe_first_runs_the_familys_recipe_then_lets_the_sampler_draw(regime):
    """--first-run recipe: a level's first run is the recipe (agp at the family's lr for a
    pruned run), a failed one is retried as the recipe, the later runs are the sampler's."""
    plan = plan_of(regime, target=9, confirm=0, first_run="recipe")  # two runs per level
    searcher = StudySearcher([plan])
    failed = []

    def accuracy(spec):  # the first run at 0.9 fails once
        if spec["config"]["prune_ratio"] == 0.9 and not failed:
            failed.append(spec["trial"])
            raise RuntimeError
        return 0.8

    specs = []
    for i in range(40):
        spec = searcher.suggest(f"t{i}")
        if spec is StudySearcher.FINISHED or spec is None:
            break
        specs.append(spec)
        try:
            searcher.on_trial_complete(f"t{i}", final(accuracy(spec),
                                                      1 - spec["config"]["prune_ratio"]))
        except RuntimeError:
            searcher.on_trial_complete(f"t{i}", error=True)
            searcher.record_error(f"t{i}", "RuntimeError")
    lr = recipe("vgg16", regime)["lr"]
    runs = [t for t in level_runs(plan.study) if t.state != State.FAIL]
    assert len(runs) == 6 and failed
    for level in LEVELS:
        first, second = [t for t in runs if t.params["prune_ratio"] == level]
        assert first.params == {"prune_ratio": level, "schedule": "agp", "lr": lr}
        assert second.params["lr"] != lr  # drawn from the space's range
    retried = [t for t in level_runs(plan.study) if t.params["prune_ratio"] == 0.9]
    assert retried[0].state == State.FAIL and retried[1].params == retried[0].params
    assert "the family's recipe first" in plan.design.describe()


def test_a_recipe_outside_the_spaces_choices_is_refused():
    base = TrialConfig(model="vgg16", dataset="digits", init="scratch", epochs=3, seed=SEED)
    space = spaces.load("vgg.yaml", "vgg16").with_levels(LEVELS)
    space.params["schedule"] = {"type": "categorical", "choices": ["lin", "cos"]}
    with pytest.raises(UsageError, match="schedule 'agp' .* is not among its choices"):
        recipe_params(space, base, 0.8)


def test_each_level_is_confirmed_on_fresh_seeds_as_soon_as_its_runs_end():
    plan = plan_of("scratch", target=9)  # 6 pruned trials: two per level
    searcher = StudySearcher([plan])
    val = {}  # trial number -> val accuracy: the later run of each level is the better one

    def accuracy(spec):
        val[spec["trial"]] = 0.5 + 0.01 * spec["trial"]
        return val[spec["trial"]]

    specs = drive(searcher, accuracy)
    numbers = [s["trial"] for s in specs]
    confirms = level_runs(plan.study, True)
    assert len(confirms) == 3 * 2
    for i, level in enumerate(LEVELS):
        search_runs = [t for t in level_runs(plan.study) if t.params["prune_ratio"] == level]
        assert len(search_runs) == 2
        best = max(search_runs, key=lambda t: t.values[0])
        fresh = [t for t in confirms if t.user_attrs["level"] == level]
        assert {t.user_attrs["confirms"] for t in fresh} == {best.number}
        assert sorted(t.user_attrs["config"]["seed"] for t in fresh) == [
            fresh_seed(SEED, i, 1), fresh_seed(SEED, i, 2)]
        assert all(t.params == best.params for t in fresh)
    # the first level's fresh runs were asked before the last level's search runs finished
    first_fresh = min(t.number for t in confirms)
    last_search = max(t.number for t in level_runs(plan.study))
    assert first_fresh < last_search and numbers == sorted(numbers)


def test_an_interrupted_level_trial_keeps_its_level_and_seed_on_resume(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'o.db'}")
    plan = plan_of("scratch", storage=storage)
    searcher = StudySearcher([plan])
    specs = [searcher.suggest(f"t{i}") for i in range(5)]  # 3 baselines and two level trials
    for i in range(4):
        searcher.on_trial_complete(f"t{i}", final(0.9, 1 - specs[i]["config"]["prune_ratio"]))
    interrupted = specs[4]  # the driver dies with it RUNNING
    resumed = plan_of("scratch", storage=storage, resume=True)
    drive(StudySearcher([resumed]), lambda spec: 0.8)
    runs = [t for t in level_runs(resumed.study) if t.state == State.COMPLETE]
    assert [t.params["prune_ratio"] for t in runs] == list(LEVELS)
    assert [t.user_attrs["config"]["seed"] for t in runs] == [SEED + 3, SEED + 4, SEED + 5]
    again = [t for t in runs if t.params["prune_ratio"] == interrupted["config"]["prune_ratio"]]
    assert again[0].params == {k: v for k, v in plan.study.trials[4].params.items()}
    assert len(level_runs(resumed.study, True)) == 3 * 2


def test_keep_front_keeps_one_baseline_and_each_levels_chosen_run():
    plan = plan_of("scratch", target=9)
    searcher = StudySearcher([plan])
    drive(searcher, lambda spec: 0.5 + 0.01 * spec["trial"])
    trials = plan.study.get_trials()
    gone = {t.number for t in removable(plan, trials)}
    kept = {t.number for t in trials if t.state == State.COMPLETE} - gone
    chosen = {t.number for t in plan.design.choices(trials).values()}
    first_baseline = min(t.number for t in trials if t.user_attrs.get("baseline"))
    assert kept == chosen | {first_baseline} and len(chosen) == 3


# ------------------------------------------------------------------------ a real search
def test_a_real_search_with_levels_runs_replicates_of_both_regimes_on_the_same_levels(
        tmp_path, source):  # noqa: F811
    proc = search(*TINY, "--trials", "3", "--baseline-seeds", "1", "--levels", "0.5", "0.9",
                  "--confirm", "1", "--replicates", "2", "--first-run", "recipe", "--source",
                  str(source), "--name", "lv", "--results", str(tmp_path), cwd=tmp_path,
                  timeout=900)
    assert "levels 0.5 0.9" in proc.stdout and "2 replicates" in proc.stdout
    table = pd.read_csv(tmp_path / "lv" / "trials.csv")
    assert set(table["state"]) == {"COMPLETE"}
    assert len(table) == 2 * 2 * (3 + 2 * 1)
    for _, study in table.groupby("study"):
        runs = study[study["level"].notna()]
        assert sorted(runs["level"]) == [0.5] * 2 + [0.9] * 2
        assert (runs["prune_ratio"] == runs["level"]).all()
        # every run stored its per-image test correctness, and it gives its test accuracy
        for _, run in study.iterrows():
            bits = unpack_correct(run["test_correct"], int(run["test_images"]))
            assert bits.mean() == pytest.approx(run["test_acc"])
    blocks = {}
    for (replicate, regime), g in table.groupby(["replicate", "regime"]):
        seeds = sorted(zip(g["level"].fillna(0), g["seed"]))
        blocks.setdefault(replicate, {})[regime] = seeds
        assert all(replicate_seed(0, 2, replicate) <= s < replicate_seed(0, 2, replicate)
                   + BLOCK for _, s in seeds)
    assert sorted(blocks) == [1, 2]
    for replicate in blocks.values():  # paired within a replicate
        assert replicate["pretrained"] == replicate["scratch"]
    assert not {s for _, s in blocks[1]["scratch"]} & {s for _, s in blocks[2]["scratch"]}
    record = json.loads((tmp_path / "lv" / "search.json").read_text())
    assert record["replicates"] == 2 and record["first_run"] == "recipe"
    for (regime, level), runs in table[table["level"].notna()].groupby(["regime", "level"]):
        # one run per level: the family's recipe, no sampled value
        assert set(runs["lr"]) == {recipe("mobilenet_v2", regime)["lr"]}
        assert set(runs["schedule"]) == {"agp"}
    assert sorted(s["replicate"] for s in record["studies"]) == [1, 1, 2, 2]
    assert len(studies(tmp_path / "lv")) == 4
    # --resume keeps the replicates; another count is refused
    again = search(*TINY, "--trials", "3", "--baseline-seeds", "1", "--levels", "0.5", "0.9",
                   "--confirm", "1", "--replicates", "3", "--source", str(source), "--name",
                   "lv", "--results", str(tmp_path), "--resume", cwd=tmp_path, check=False)
    assert again.returncode == 2 and "--replicates 3 differs from the 2" in again.stderr
    again = search(*TINY, "--trials", "3", "--baseline-seeds", "1", "--levels", "0.5", "0.9",
                   "--confirm", "1", "--first-run", "sampler", "--source", str(source),
                   "--name", "lv", "--results", str(tmp_path), "--resume", cwd=tmp_path,
                   check=False)
    assert again.returncode == 2 and "--first-run sampler differs from the recipe" in (
        again.stderr)
