"""The replay harness (``benchmarks/replay.py``) on a synthetic table whose right answer is
known by construction, and the proof that it replays the search's own sampler factory and
early-stopping rule, not copies of them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import replay  # noqa: E402
import tabular  # noqa: E402

SEEDS = (9_000_000, 9_000_001, 9_000_002)
# the cell's distance from the best one, in accuracy: the best schedule is lin at the top of
# the space's range; the family's recipe (agp at the bottom of the scratch range) is 0.15 off
SCHEDULE_COST = {"agp": 0.10, "one_cycle": 0.05, "cos": 0.03, "lin": 0.0}
LEVEL_BASE = {0.0: 0.97, 0.5: 0.96, 0.8: 0.93, 0.9: 0.88, 0.95: 0.80}


def write_table(path: Path, seeds=SEEDS) -> Path:
    """Every cell of the real table's design, with accuracies set by SCHEDULE_COST, the
    learning rate's place in the grid (in the range: bottom 0.05, top 0; outside: 0.2; for
    the pruned cells) and a small seed noise; the curves rise to the final value, so early
    epochs rank as the last."""
    jobs = tabular.cells("vgg16", tabular.LEVELS, tabular.LR_POINTS, seeds, 4)
    names = tabular.columns(4)
    rows = []
    rng = np.random.default_rng(0)
    for job in jobs:
        key, config = job["key"], job["config"]
        lrs = sorted({j["key"]["lr"] for j in jobs if j["key"]["regime"] == key["regime"]})
        place = lrs.index(key["lr"])
        lr_cost = {1: 0.05, 2: 0.0}.get(place, 0.2)
        # the unpruned cells (each regime's reference) cost nothing, wherever the dense
        # recipe's rate falls in the grid, so accuracy kept is the pruned cell's cost alone
        cost = (lr_cost + SCHEDULE_COST[key["schedule"]]) if key["level"] > 0 else 0.0
        final = LEVEL_BASE[key["level"]] - cost + rng.normal(0, 0.003)
        row = {**key, "epochs": 4, "commit": "synthetic", "cpu": "none",
               "settings": json.dumps({**config, "precision": "bf16"})}
        for e in range(1, 5):
            row.update({f"val_acc_{e}": final - 0.1 * (4 - e), f"test_acc_{e}": final - 0.1 * (4 - e),
                        f"sparsity_{e}": key["level"] * e / 4, f"seconds_{e}": 10.0})
        row.update({"val_acc": final, "test_acc": final + rng.normal(0, 0.003),
                    "remaining_fraction": 1 - key["level"], "params_remaining": 1,
                    "seconds": 40.0, "wall_seconds": 41.0})
        rows.append(row)
    pd.DataFrame(rows, columns=names).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return replay.Table.read(write_table(tmp_path_factory.mktemp("replay") / "table.csv"))


def test_the_table_holds_every_cell_of_the_design(table):
    # 2 regimes x (4 levels x 4 schedules + 1 unpruned) x 4 learning rates x 3 seeds
    assert len(table.frame) == 2 * (4 * 4 + 1) * 4 * 3 == 408
    assert table.levels == (0.0, 0.5, 0.8, 0.9, 0.95)
    # the grid spans the space's range and a factor of 2 beyond each end
    assert table.lrs["scratch"] == [0.00015, 0.0003, 0.0006, 0.0012]
    assert table.lrs["pretrained"] == [0.00015, 0.000316, 0.000665, 0.0014]


def test_tuning_finds_what_the_table_says_is_best(table):
    """By construction: 12 random runs per level find the best cell (cost 0) almost surely,
    one run finds an average one, and the family's recipe (agp at the range's bottom) is
    0.15 off. So random with 12 runs > random with 1 run > no tuning, at every level."""
    levels = (0.8, 0.95)
    got = {n: [] for n in (1, 12)}
    for rep in range(6):
        found = replay.replay_levels(table, "random", "scratch", rep, levels, 12)
        for n in got:
            got[n].append(np.mean(list(found[n].values())))
    untuned = [np.mean(list(replay.fixed_levels(table, "scratch", levels, rep, None, None)
                            .values())) for rep in range(6)]
    assert np.mean(got[12]) > np.mean(got[1]) > np.mean(untuned)
    # 8 cells in the space's range: 12 draws miss the best one now and then (the next is
    # 0.03 off)
    assert np.mean(got[12]) == pytest.approx(np.mean([LEVEL_BASE[x] for x in levels]),
                                             abs=0.02)
    assert np.mean(untuned) == pytest.approx(np.mean([LEVEL_BASE[x] for x in levels]) - 0.15,
                                             abs=0.01)
    # TPE on the same table lands near the best too
    tpe = [np.mean(list(replay.replay_levels(table, "tpe", "scratch", rep, levels, 12)[12]
                        .values())) for rep in range(3)]
    assert np.mean(tpe) > np.mean(got[1])


def test_recipe_first_is_no_tuning_at_one_run_and_tunes_after(table):
    """``--first-run recipe``, the search's own design: each level's first run is the family's
    recipe (by construction 0.15 off the best cell), so one run per level is exactly no
    tuning; the sampler's later runs can only improve the chosen run here (val = test)."""
    levels = (0.8, 0.95)
    untuned = np.mean(list(replay.fixed_levels(table, "scratch", levels, 0, None, None)
                           .values()))
    first = [replay.replay_levels(table, "tpe", "scratch", rep, levels, 6, first_run="recipe")
             for rep in range(3)]
    for found in first:
        assert np.mean(list(found[1].values())) == pytest.approx(untuned, abs=0.01)
        assert np.mean(list(found[6].values())) > untuned + 0.05
    sampled = replay.replay_levels(table, "tpe", "scratch", 0, levels, 1)
    assert np.mean(list(sampled[1].values())) != pytest.approx(untuned, abs=0.01)


def test_a_run_is_valued_on_the_other_seeds_at_test_or_at_val(table, tmp_path):
    """``--value val``: the same cells, valued at their val accuracy on the other seeds (the
    split a default is chosen on); the seed that chose never values."""
    val = replay.Table.read(table.path, "val_acc")
    key = next(iter(table.cells))
    seeds = sorted(table.cells[key])
    others = [table.cells[key][s] for s in seeds[1:]]
    assert table.valued(key, seeds[0]) == pytest.approx(np.mean([r["test_acc"] for r in others]))
    assert val.valued(key, seeds[0]) == pytest.approx(np.mean([r["val_acc"] for r in others]))
    assert val.valued(key, seeds[0]) != pytest.approx(table.valued(key, seeds[0]), abs=1e-6)


def test_nsga2_is_replayed_with_the_population_each_run_count_gives_it(table):
    """NSGA-II's population depends on the study's size (``make_sampler``), so a search of n
    runs per level is not the first n of a longer one: each n is its own study."""
    found = replay.replay_levels(table, "nsga2", "scratch", 0, (0.8,), 3)
    alone = replay.replay_levels(table, "nsga2", "scratch", 0, (0.8,), 2)
    assert sorted(found) == [1, 2, 3] and found[2] == alone[2]


def test_the_paper_grid_is_one_cycle_at_the_recipe_rate_on_its_own_levels(table):
    got = replay.fixed_levels(table, "scratch", (0.5, 0.8, 0.9, 0.95), 0, "paper_grid", "grid")
    assert sorted(got) == [0.5, 0.8, 0.9]  # 0.95 is not among its sparsities
    for level, value in got.items():  # one_cycle (0.05) at the bottom of the range (0.05)
        assert value == pytest.approx(LEVEL_BASE[level] - 0.10, abs=0.01)


def test_early_stopping_saves_epochs_and_the_one_epoch_baseline_fits_its_budget(table):
    plain = replay.replay_continuous(table, "random", "scratch", 0, 2, asha=False, trials=30)
    asha = replay.replay_continuous(table, "random", "scratch", 0, 2, asha=True, trials=30)
    # the same 30 trials (the same draws), the weak ones stopped early: fewer epochs, less
    # time, and no more than the plain search's front
    assert plain.used == 30 * 4 and plain.started == asha.started == 30
    assert asha.used < plain.used and asha.seconds < plain.seconds
    assert len(asha.done) < 30 == len(plain.done)
    assert 0 < asha.hypervolume() <= plain.hypervolume()
    assert plain.hypervolume(40) <= plain.hypervolume()
    assert np.isnan(asha.hypervolume(120))  # it never used that many epochs
    top = replay.replay_one_epoch(table, "scratch", 0, [40, 120], [1, 2])
    (hv, seconds), (hv40, seconds40) = top[120], top[40]
    assert hv > 0 and hv40 > 0 and seconds40[1] < seconds[1]
    # 68 one-epoch runs and a quarter of each group trained 3 epochs more, 10 s an epoch
    assert seconds[1] == pytest.approx(10 * (68 + 3 * 17), abs=10 * 3 * 2)
    assert seconds[2] == pytest.approx(seconds[1] / 2, abs=40)


def test_the_replay_runs_the_searchs_own_sampler_factory_and_early_stopping(table,
                                                                            monkeypatch):
    """A change to the search's sampler factory or to its ASHA changes the replay."""
    from hpo_prune.search.studies import designs
    from hpo_prune.search.tuning import scheduler

    before = replay.replay_levels(table, "tpe", "scratch", 0, (0.8,), 4)
    made = []
    original = designs.make_sampler

    def counted(kind, seed, trials):
        made.append(kind)
        return original("random", seed + 1, trials)

    monkeypatch.setattr(designs, "make_sampler", counted)
    after = replay.replay_levels(table, "tpe", "scratch", 0, (0.8,), 4)
    assert made == ["tpe"] and after != before
    monkeypatch.undo()
    runs = replay.replay_continuous(table, "random", "scratch", 0, 1, asha=True, trials=20)
    monkeypatch.setattr(scheduler.SparsityASHA, "on_trial_result",
                        lambda self, controller, trial, result: "STOP")
    stopped = replay.replay_continuous(table, "random", "scratch", 0, 1, asha=True, trials=20)
    assert len(stopped.done) < len(runs.done)  # every trial stops after its first epoch


def test_early_stopping_in_the_levels_design_saves_epochs_and_keeps_the_choice(table,
                                                                              monkeypatch):
    """The paper preset's ASHA groups runs by level: the first run of a level is never
    stopped, later weaker ones are. On this table a run weaker at its end is weaker at every
    epoch, so the level's best run is never stopped and the choice is the one without it."""
    from hpo_prune.search.tuning import scheduler

    levels = (0.8, 0.95)
    plain = replay.replay_levels(table, "random", "scratch", 3, levels, 12)
    asha = replay.replay_levels(table, "random", "scratch", 3, levels, 12, asha=True)
    assert asha[1]["epochs"] == 1.0  # one run per level: nothing to compare it with
    assert asha[12]["epochs"] < 0.8
    for n in (1, 6, 12):
        assert {k: v for k, v in asha[n].items() if k != "epochs"} == plain[n]
    monkeypatch.setattr(scheduler.SparsityASHA, "on_trial_result",
                        lambda self, controller, trial, result: "STOP")
    stopped = replay.replay_levels(table, "random", "scratch", 3, levels, 2, asha=True)
    # the replaced rule (its guard for baselines included) stops every trial after its first
    # epoch: no level has a finished run to choose, and 5 trials used 1 epoch of their 4
    assert stopped[2] == {"epochs": 5 * 1 / (5 * 4)}


def test_the_command_writes_the_methods_with_their_intervals(table, tmp_path):
    out = tmp_path / "replay.json"
    assert replay.main(["--table", str(table.path), "--repetitions", "2", "--runs", "2",
                        "--levels", "0.8", "--samplers", "random", "--workers", "2",
                        "--trials", "10", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["table"] == "table.csv"
    names = {m["name"] for m in doc["methods"]}
    assert {"random", "no tuning", "paper grid", "random + ASHA", "one epoch, top K"} <= names
    designs = {m["design"] for m in doc["methods"]}
    assert {"levels epochs scratch", "continuous scratch clock 2 workers"} <= designs
    for m in doc["methods"]:
        assert set(m) >= {"name", "design", "budget", "value", "ci_low", "ci_high"}
        if np.isfinite(m["value"]):
            assert m["ci_low"] <= m["value"] <= m["ci_high"]


def test_the_replay_says_when_its_rates_were_laid_around_another_range(tmp_path, capsys):
    args = ["--repetitions", "1", "--runs", "1", "--levels", "0.8", "--samplers", "random",
            "--workers", "2", "--trials", "4"]
    path = write_table(tmp_path / "table.csv")
    assert replay.main(["--table", str(path), *args]) == 0
    assert "were laid around another lr range" not in capsys.readouterr().out
    frame = pd.read_csv(path)  # the fine-tuned rates laid around twice the space's range
    frame.loc[frame["regime"] == "pretrained", "lr"] *= 2
    frame.to_csv(path, index=False)
    assert replay.main(["--table", str(path), *args]) == 0
    out = capsys.readouterr().out
    assert ("note: the table's pretrained rates (0.0003, 0.000632, 0.00133, 0.0028) were laid "
            "around another lr range than the space's (0.0003 to 0.0007)") in out
    assert "scratch rates" not in out


def test_the_verdict_sizes_find_a_gap_the_table_holds(tmp_path):
    """``verdict_sizes``: searches drawn from the table through the analysis's own verdict.
    Fine-tuned 10 points ahead at 95% (by construction) and level with scratch at 80%: the
    95% verdict names fine-tuned in most searches and its mean difference is the gap; 80%
    names a regime rarely."""
    import verdict_sizes

    path = write_table(tmp_path / "table.csv")
    frame = pd.read_csv(path)
    ahead = (frame["regime"] == "pretrained") & (frame["level"] == 0.95)
    for column in ("val_acc", "test_acc"):
        frame.loc[ahead, column] += 0.10
    frame.to_csv(path, index=False)
    out = tmp_path / "sizes.json"
    assert verdict_sizes.main(["--table", str(path), "--searches", "12", "--designs", "5x1",
                               "--json", str(out)]) == 0
    rows = {r["level"]: r for r in json.loads(out.read_text())["designs"]}
    assert rows[0.95]["mean_difference"] == pytest.approx(10, abs=1)
    assert rows[0.95]["named_fine_tuned"] >= 0.9 and rows[0.95]["named_scratch"] == 0
    assert abs(rows[0.8]["mean_difference"]) < 1 and rows[0.8]["named"] <= 0.25
    assert rows[0.8]["trainings"] == 2 * 5 * 3
    assert verdict_sizes.main(["--table", str(path), "--designs", "5by1"]) == 2
