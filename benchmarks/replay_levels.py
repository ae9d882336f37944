"""The levels design replayed: per regime a study with one baseline and n runs per level, each
level's best run on val valued on the table's other seeds; no tuning and the paper grid."""
from __future__ import annotations

import dataclasses

import numpy as np

from replay_search import base_config, early_stopping, new_study, project, stopped_at
from replay_table import Table


# samplers whose n-th suggestion does not depend on the study's target: a search with n runs
# per level asks the same trials as the first n runs per level of a longer one. NSGA-II's
# population size does depend on it (``make_sampler``): it is replayed once per n.
PREFIX_SAMPLERS = ("tpe", "random")
OWN_STUDY_RUNS = (1, 2, 3, 4, 6, 8, 12)  # the run counts NSGA-II is replayed at
PRINTED_RUNS = OWN_STUDY_RUNS  # the run counts the printed tables show (the JSON holds all)


def replay_levels(table: Table, sampler: str, regime: str, seed: int, levels: tuple,
                  runs: int, asha: bool = False, first_run: str = "sampler"
                  ) -> dict[int, dict[float, float]]:
    """n (1 .. runs) -> level -> the chosen run's test accuracy on the other seeds; with
    ``asha``, n -> "epochs" too: the share of the study's full-length epochs it used;
    ``first_run`` as the search's ``--first-run``."""
    if sampler in PREFIX_SAMPLERS:
        return level_study(table, sampler, regime, seed, levels, runs,
                           list(range(1, runs + 1)), asha, first_run)
    out = {}
    for n in [n for n in OWN_STUDY_RUNS if n <= runs] or [runs]:
        out.update(level_study(table, sampler, regime, seed, levels, n, [n], asha, first_run))
    return out


@dataclasses.dataclass
class LevelSearch:
    """A replayed study of the levels design: its trials, the design that chooses among them,
    and per trial number the table cell and seed it drew and the epochs it used."""
    design: object
    trials: list
    drawn: dict  # trial number -> (cell key, seed)
    epochs: list  # per trial, in order

    def chosen(self, n: int, levels: tuple) -> dict:
        """level -> the chosen trial of the first n runs per level (the design's choice)."""
        size = 1 + n * len(levels)
        return dataclasses.replace(self.design, target=size).choices(self.trials[:size])


def level_search(table: Table, sampler: str, regime: str, seed: int, levels: tuple, runs: int,
                 asha: bool = False, first_run: str = "sampler") -> LevelSearch:
    """One study of ``runs`` runs per level after its one baseline (trial 0). With ``asha``
    the search's ``SparsityASHA`` (grouped as the design groups: by level) sees each run's
    per-epoch val accuracy and may stop it; one worker, so each run ends before the next is
    asked, and a prefix is still a shorter search."""
    p = project()
    space = p.spaces.load(None, table.model).with_levels(levels)
    target = 1 + runs * len(levels)
    plan, design = new_study(table, regime, seed, space, sampler, target, levels, first_run)
    optuna, resolve_trial = p.optuna, p.resolve_trial
    scheduler = early_stopping(table, design) if asha else None
    rng = np.random.default_rng([seed, 17])
    drawn, epochs = {}, []
    for _ in range(target):
        trial = plan.ask()
        key, config = table.key_of(plan, trial, resolve_trial)
        hit = table.draw(key, rng)
        if hit is None:  # a cell the (partial) table lacks: the trial fails
            plan.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            epochs.append(0)
            continue
        drawn[trial.number] = (key, hit[0])
        stopped = stopped_at(scheduler, plan, trial, config, hit[1], table.epochs)
        epochs.append(stopped or table.epochs)
        if stopped:
            plan.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            plan.study.tell(trial, [hit[1]["val_acc"], hit[1]["remaining_fraction"]])
    return LevelSearch(design, plan.study.get_trials(deepcopy=False), drawn, epochs)


def level_study(table: Table, sampler: str, regime: str, seed: int, levels: tuple, runs: int,
                answers: list[int], asha: bool = False, first_run: str = "sampler"
                ) -> dict[int, dict[float, float]]:
    """One study of ``runs`` runs per level (``level_search``); its choices after the first n
    runs per level, for each n in ``answers``, valued on the table's other seeds; with
    ``asha``, "epochs": the share of the full-length epochs it used."""
    found = level_search(table, sampler, regime, seed, levels, runs, asha, first_run)
    out = {}
    for n in answers:
        size = 1 + n * len(levels)
        out[n] = {level: table.valued(*found.drawn[t.number])
                  for level, t in found.chosen(n, levels).items()}
        if asha:
            out[n]["epochs"] = sum(found.epochs[:size]) / (size * table.epochs)
    return out


def reference(table: Table, regime: str, space) -> tuple[tuple, float]:
    """The unpruned baseline's cell (the design's own baseline parameters) and its mean test
    accuracy over the table's seeds."""
    plan, _ = new_study(table, regime, 0, space, "random", 1)
    trial = plan.ask()
    key = table.key(project().resolve_trial(plan.sample(trial)))
    return key, table.mean_test(key)


def fixed_levels(table: Table, regime: str, levels: tuple, seed: int, space_name: str | None,
                 sampler: str) -> dict[float, float]:
    """One run per level of a design without tuning: the family's recipe (``space_name``
    None: the trial's own defaults) or the paper grid's points; each valued on the table's
    other seeds (the run's own seed drawn at random)."""
    p = project()
    optuna, resolve_trial, spaces = p.optuna, p.resolve_trial, p.spaces
    rng = np.random.default_rng([seed, 29])
    out = {}
    if space_name is None:
        space = spaces.load(None, table.model)
        for level in levels:
            config = resolve_trial(base_config(table, regime, seed).replace(
                **space.fixed, prune_ratio=level))
            key = table.key(config)
            hit = table.draw(key, rng)
            out[level] = table.valued(key, hit[0]) if hit else np.nan
        return out
    space = spaces.load(space_name, table.model)
    points = len(space.grid_points(regime))
    plan, _ = new_study(table, regime, seed, space, sampler, points)
    for _ in range(points):
        trial = plan.ask()
        config = resolve_trial(plan.sample(trial))
        ratio = config.prune.prune_ratio
        if ratio in levels:
            key = table.key(config)
            hit = table.draw(key, rng)
            out[ratio] = table.valued(key, hit[0]) if hit else np.nan
        plan.study.tell(trial, state=optuna.trial.TrialState.FAIL)  # not needed further
    return out
