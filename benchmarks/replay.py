"""Replay the search's samplers and early stopping on the table of real trainings.

    python benchmarks/replay.py --repetitions 50 --json replay.json

reads ``benchmarks/data/tabular_vgg16_digits.csv`` (``benchmarks/tabular.py``) and replays,
with no training, what each search method would have found and what it would have cost. The
replayed search is the project's own code, not a copy of it: the search space
(``search.studies.space``), the designs (``search.studies.designs``: which level a run gets,
which run a level chooses), the Optuna studies and samplers (``search.studies.study``:
``open_study``, ``make_sampler``), ``resolve_trial``, and the sparsity-grouped ASHA
(``search.tuning.scheduler.SparsityASHA``) driven with the table's per-epoch val accuracy. A
sampled configuration is looked up in the table at its nearest values (the pruning ratio at
the nearest level, the learning rate at the nearest of the table's rates on a log scale), and
each replayed trial draws one of the table's seeds at random.

**Levels design** (the default command's): per regime, one study with one unpruned baseline
and ``--runs`` runs per level; each level's best run on val is its choice, valued by its test
accuracy on the table's *other* seeds minus the unpruned reference's test accuracy (the
baseline configuration's mean over the table's seeds): the accuracy kept, in points, as the
analysis defines it (``analysis.levels``). A search with n
runs per level asks the same trials as the first n runs per level of a longer one (one
worker, each trial told before the next is asked), so one study per repetition answers every
n. Methods: the samplers TPE, random and NSGA-II; no tuning (the family's recipe at each
level); the reference study's grid (``--space paper_grid --sampler grid``: one-cycle at the
recipe's rate, at its levels 0.5, 0.8 and 0.9). TPE and random search are replayed with the
sparsity-grouped ASHA too (the paper preset's early stopping, grouped by level, one worker),
with the share of epochs it used. Beside each mean, the spread (sd) of one search's value.

**Continuous design** (``--levels none``): per regime, a study of ``--trials`` trials whose
sampler draws the pruning ratio too, run on 1, 2 or 8 simulated workers, without and with the
sparsity-grouped ASHA (the same trials, the weak ones stopped early; a run is grouped by the
level whose curve it follows); besides, "one epoch, keep the top K" (random configurations
trained one epoch, the best quarter of each sparsity group trained on, as many as the plain
search's epochs allow). Value: the hypervolume of the study's front, chosen on (val accuracy,
remaining fraction) and valued at its runs' test accuracy on the table's other seeds
(reference point: accuracy 0, everything left), against the epochs used and against the simulated wall-clock (an epoch takes the lower
quartile of that epoch's seconds over the table's rows of its level, both regimes: work that
ran beside a training on the machine only ever added time, so a low quantile is the time of
an epoch that trained alone, two at a time, as the table was built).

Every figure is a mean over ``--repetitions`` repetitions, each with its own sampler seed,
with a 95% bootstrap interval over the repetitions. ``--json PATH`` writes ``{"table": FILE,
"methods": [{"name", "design", "budget", "value", "ci_low", "ci_high", "n", "sd"}, ...]}``;
``--figures DIR`` writes evidence_levels.png, evidence_continuous.png (by epochs) and
evidence_wallclock.png.
"""
from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import math
import os
import sys
import time
import types
import warnings
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DEFAULT_TABLE = HERE / "data" / "tabular_vgg16_digits.csv"
SAMPLERS = ("tpe", "random", "nsga2")
RUNS = 12  # runs per level replayed (every n up to it)
WORKERS = (1, 2, 8)
TRIALS = 60  # trials of a continuous search (240 epochs of full 4-epoch trainings)
CHECKPOINTS = (40, 80, 120, 160, 200, 240)  # epochs used at which the hypervolume is read
KEEP_FRACTION = 0.25  # "one epoch, keep the top K": the share of each group trained on
REGIMES = ("pretrained", "scratch")
TIME_QUANTILE = 0.25  # of an epoch's seconds over a level's rows: its simulated time


# ----------------------------------------------------------------------------- the table
@dataclasses.dataclass
class Table:
    """The table's trainings by (regime, level, schedule, lr), each with its seeds' rows."""
    path: Path
    frame: pd.DataFrame
    model: str
    epochs: int
    cells: dict  # key -> {seed: row (a dict)}
    lrs: dict  # regime -> sorted learning rates
    levels: tuple  # sorted, 0 (unpruned) first
    precision: str
    timing: dict  # level -> seconds of epoch 1, 2, ...: their lower quartile over its rows
    memo: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> "Table":
        frame = pd.read_csv(path)
        if frame.empty:
            raise SystemExit(f"error: {path} holds no trainings: build it with "
                             "benchmarks/tabular.py")
        cells: dict = defaultdict(dict)
        for row in frame.to_dict("records"):
            key = (row["regime"], float(row["level"]), row["schedule"], float(row["lr"]))
            cells[key][int(row["seed"])] = row
        lrs = {r: sorted(set(frame.loc[frame["regime"] == r, "lr"].astype(float)))
               for r in frame["regime"].unique()}
        settings = json.loads(frame["settings"].iloc[0])
        epochs = int(frame["epochs"].max())
        # an epoch's time depends on the level (how far the network has shrunk), not on the
        # weights it starts from, the rate or the schedule; other work on the machine only
        # ever added time, so a low quantile over a level's rows keeps it out
        timing = {float(level): [float(part[f"seconds_{e}"].quantile(TIME_QUANTILE))
                                 for e in range(1, epochs + 1)]
                  for level, part in frame.groupby("level")}
        return cls(path, frame, str(frame["model"].iloc[0]), epochs, dict(cells), lrs,
                   tuple(sorted(set(frame["level"].astype(float)))), settings["precision"],
                   timing)

    def key_of(self, plan, trial, resolve) -> tuple:
        """The cell of an asked trial: its config as the searcher builds it (``plan.sample``:
        the sampler draws here) and resolves it, looked up once per distinct parameters."""
        config = plan.sample(trial)
        memo = (config.weights.init, tuple(sorted(trial.params.items())))
        if memo not in self.memo:
            self.memo[memo] = self.key(resolve(config))
        return self.memo[memo], config

    def key(self, config) -> tuple:
        """The table's cell nearest a resolved config."""
        regime = config.weights.init
        level = min(self.levels, key=lambda x: abs(x - config.prune.prune_ratio))
        lr = min(self.lrs[regime], key=lambda x: abs(math.log(x / config.train.lr)))
        schedule = config.prune.schedule
        if level == 0:  # a schedule changes nothing unpruned: the table's one unpruned schedule
            schedule = next(k[2] for k in self.cells if k[0] == regime and k[1] == 0)
        return regime, level, schedule, lr

    def draw(self, key: tuple, rng: np.random.Generator) -> tuple[int, dict] | None:
        seeds = sorted(self.cells.get(key, {}))
        if not seeds:
            return None
        seed = seeds[int(rng.integers(len(seeds)))]
        return seed, self.cells[key][seed]

    def valued(self, key: tuple, seed: int) -> float:
        """Test accuracy of ``key`` on the table's seeds other than ``seed``."""
        others = [r["test_acc"] for s, r in self.cells.get(key, {}).items() if s != seed]
        return float(np.mean(others)) if others else np.nan

    def seconds(self, key: tuple, epoch: int) -> float:
        """Simulated seconds of a cell's epoch (1-based): its level's (``timing``)."""
        return self.timing[key[1]][epoch - 1]

    def clock_marks(self, budget: int, workers: int, points: int = 8) -> list:
        """Simulated seconds the wall-clock hypervolume is read at: ``points`` steps up to
        1.25x the time ``budget`` epochs of full trainings take on ``workers`` workers."""
        per_epoch = np.mean([sum(t) / len(t) for level, t in self.timing.items() if level > 0])
        horizon = 1.25 * budget * per_epoch / workers
        return [float(x) for x in np.linspace(0, horizon, points + 1)[1:]]

    def mean_test(self, key: tuple) -> float:
        runs = self.cells.get(key, {})
        return float(np.mean([r["test_acc"] for r in runs.values()])) if runs else np.nan


# ----------------------------------------------------------------------------- the project's code
def project() -> types.SimpleNamespace:
    """The search's own modules (imported here so that --help stays fast)."""
    import optuna

    from hpo_prune.resolution import resolve_trial
    from hpo_prune.search.studies.designs import design_of
    from hpo_prune.search.studies.study import open_study
    from hpo_prune.settings import TrialConfig

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return types.SimpleNamespace(optuna=optuna, resolve_trial=resolve_trial, spaces=Spaces,
                                 design_of=design_of, open_study=open_study,
                                 TrialConfig=TrialConfig)


class Spaces:
    """``search.studies.space.load``, each space read and checked once per process."""
    loaded: dict = {}

    @classmethod
    def load(cls, name, model):
        from hpo_prune.search.studies import space

        if (name, model) not in cls.loaded:
            cls.loaded[name, model] = space.load(name, model)
        return cls.loaded[name, model]


def base_config(table: Table, regime: str, seed: int):
    return project().TrialConfig(model=table.model, dataset="digits", init=regime,
                                 epochs=table.epochs, seed=seed, precision=table.precision)


def new_study(table: Table, regime: str, seed: int, space, sampler: str, target: int,
              levels: tuple = ()):
    """(plan, design): a new in-memory study of ``regime`` as the search opens one, its design
    built by the search's own ``design_of`` (one baseline, no confirmation runs)."""
    p = project()
    design = p.design_of(space, sampler, seed, target, baseline_seeds=1, confirm=0,
                         levels=levels)
    plan = p.open_study(p.optuna.storages.InMemoryStorage(), f"replay.{regime}",
                        base_config(table, regime, seed), design)
    return plan, design


def reference(table: Table, regime: str, space) -> tuple[tuple, float]:
    """The unpruned baseline's cell (the design's own baseline parameters) and its mean test
    accuracy over the table's seeds."""
    plan, _ = new_study(table, regime, 0, space, "random", 1)
    trial = plan.ask()
    key = table.key(project().resolve_trial(plan.sample(trial)))
    return key, table.mean_test(key)


# ----------------------------------------------------------------------------- levels design
# samplers whose n-th suggestion does not depend on the study's target: a search with n runs
# per level asks the same trials as the first n runs per level of a longer one. NSGA-II's
# population size does depend on it (``make_sampler``): it is replayed once per n.
PREFIX_SAMPLERS = ("tpe", "random")
OWN_STUDY_RUNS = (1, 2, 3, 4, 6, 8, 12)  # the run counts NSGA-II is replayed at
PRINTED_RUNS = OWN_STUDY_RUNS  # the run counts the printed tables show (the JSON holds all)


def replay_levels(table: Table, sampler: str, regime: str, seed: int, levels: tuple,
                  runs: int, asha: bool = False) -> dict[int, dict[float, float]]:
    """n (1 .. runs) -> level -> the chosen run's test accuracy on the other seeds; with
    ``asha``, n -> "epochs" too: the share of the study's full-length epochs it used."""
    if sampler in PREFIX_SAMPLERS:
        return level_study(table, sampler, regime, seed, levels, runs,
                           list(range(1, runs + 1)), asha)
    out = {}
    for n in [n for n in OWN_STUDY_RUNS if n <= runs] or [runs]:
        out.update(level_study(table, sampler, regime, seed, levels, n, [n], asha))
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
                 asha: bool = False) -> LevelSearch:
    """One study of ``runs`` runs per level after its one baseline (trial 0). With ``asha``
    the search's ``SparsityASHA`` (grouped as the design groups: by level) sees each run's
    per-epoch val accuracy and may stop it; one worker, so each run ends before the next is
    asked, and a prefix is still a shorter search."""
    p = project()
    space = p.spaces.load(None, table.model).with_levels(levels)
    target = 1 + runs * len(levels)
    plan, design = new_study(table, regime, seed, space, sampler, target, levels)
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
                answers: list[int], asha: bool = False) -> dict[int, dict[float, float]]:
    """One study of ``runs`` runs per level (``level_search``); its choices after the first n
    runs per level, for each n in ``answers``, valued on the table's other seeds; with
    ``asha``, "epochs": the share of the full-length epochs it used."""
    found = level_search(table, sampler, regime, seed, levels, runs, asha)
    out = {}
    for n in answers:
        size = 1 + n * len(levels)
        out[n] = {level: table.valued(*found.drawn[t.number])
                  for level, t in found.chosen(n, levels).items()}
        if asha:
            out[n]["epochs"] = sum(found.epochs[:size]) / (size * table.epochs)
    return out


def early_stopping(table: Table, design):
    """The search's scheduler as the search builds it for this design."""
    from hpo_prune.search.tuning.scheduler import for_design

    return for_design(table.epochs, design)


def tune_stub(plan, trial, config):
    """The Tune trial the scheduler sees: the config the searcher hands Tune."""
    from hpo_prune.search.tuning.messages import TuneTrial
    from ray.tune.experiment import Trial

    return Trial("trainable", config=TuneTrial(plan.name, trial.number, None, config).to_tune(),
                 stub=True)


def stopped_at(scheduler, plan, trial, config, row: dict, epochs: int) -> int:
    """The epoch at which ``scheduler`` stops a run that trains alone (0: it runs to its
    end), fed the run's per-epoch val accuracy."""
    from ray.tune.schedulers import TrialScheduler

    if scheduler is None:
        return 0
    stub = tune_stub(plan, trial, config)
    scheduler.on_trial_add(None, stub)
    for epoch in range(1, epochs):
        if scheduler.on_trial_result(None, stub, {"epoch": epoch, "val_acc": row[
                f"val_acc_{epoch}"]}) == TrialScheduler.STOP:
            scheduler.on_trial_remove(None, stub)
            return epoch
    scheduler.on_trial_complete(None, stub, {})
    return 0


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


# ----------------------------------------------------------------------------- continuous design
@dataclasses.dataclass
class Run:
    number: int
    trial: object  # the Optuna trial
    key: tuple
    row: dict
    test: float  # the cell's test accuracy on the table's other seeds (its value)
    epoch: int = 0
    stub: object = None  # the Tune trial ASHA sees


@dataclasses.dataclass
class Trace:
    """A replayed continuous search: the runs that ran to their end, in the order they did,
    and with each the simulated clock, the epochs used and the trials started by then."""
    done: list
    marks: list  # (seconds, epochs used, trials started), one per run in ``done``
    end: float = 0.0  # when the last epoch of any run ended (runs stopped early included)
    used: int = 0  # epochs used by the whole search (runs stopped early included)

    def hypervolume(self, epochs: int | None = None) -> float:
        """Of the front of the runs finished once ``epochs`` epochs were used (None: all;
        NaN for more epochs than the search used: it never got there)."""
        if epochs is not None and epochs > self.used:
            return np.nan
        n = sum(1 for _, used, _ in self.marks if epochs is None or used <= epochs)
        return hypervolume_at_test(self.done[:n])

    def hypervolume_by(self, seconds: float) -> float:
        """Of the front of the runs finished by ``seconds`` of simulated wall-clock."""
        return hypervolume_at_test(self.done[:sum(1 for clock, _, _ in self.marks
                                                  if clock <= seconds)])

    @property
    def seconds(self) -> float:
        return max(self.end, self.marks[-1][0] if self.marks else 0.0)

    @property
    def started(self) -> int:
        return self.marks[-1][2] if self.marks else 0


def hypervolume_at_test(done: list[Run]) -> float:
    """The front chosen on (val, remaining) among finished runs, valued at their cells' test
    accuracy on the table's other seeds (the seed that chose a run does not value it)."""
    from analysis.fronts import hypervolume
    from hpo_prune.objectives import non_dominated

    if not done:
        return 0.0
    val = np.array([[r.row["val_acc"], r.row["remaining_fraction"]] for r in done])
    on = non_dominated(val, [True, False])
    test = np.array([[r.test, r.row["remaining_fraction"]]
                     for r, keep in zip(done, on) if keep and np.isfinite(r.test)])
    if not len(test):
        return 0.0
    return hypervolume(test, [0.0, 1.0], ["max", "min"])


def replay_continuous(table: Table, sampler: str, regime: str, seed: int, workers: int,
                      asha: bool, trials: int = TRIALS) -> Trace:
    """A continuous search of ``trials`` trials (``--trials``: it sizes NSGA-II's
    population too) on ``workers`` simulated workers; with ``asha`` the same trials, some
    stopped early."""
    p = project()
    optuna, resolve_trial = p.optuna, p.resolve_trial
    from ray.tune.schedulers import TrialScheduler

    plan, design = new_study(table, regime, seed, p.spaces.load(None, table.model), sampler,
                             trials)
    scheduler = early_stopping(table, design) if asha else None
    rng = np.random.default_rng([seed, 31])
    used, asked, events, trace = 0, 0, [], Trace([], [])

    def start(now: float) -> None:
        nonlocal asked
        while True:  # a cell the partial table lacks fails at once; ask again
            trial = plan.ask()
            key, config = table.key_of(plan, trial, resolve_trial)
            hit = table.draw(key, rng)
            if hit is not None:
                break
            plan.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        run = Run(asked, trial, key, hit[1], table.valued(key, hit[0]))
        asked += 1
        if scheduler is not None:  # grouped by the level whose curve the run follows
            run.stub = tune_stub(plan, trial, config.replace(prune_ratio=key[1]))
            scheduler.on_trial_add(None, run.stub)
        heapq.heappush(events, (now + table.seconds(key, 1), run.number, run))

    for _ in range(min(workers, trials)):
        start(0.0)
    while events:
        clock, _, run = heapq.heappop(events)
        trace.end = max(trace.end, clock)
        run.epoch += 1
        used += 1
        last = run.epoch >= table.epochs
        if not last and scheduler is not None and scheduler.on_trial_result(
                None, run.stub, {"epoch": run.epoch, "val_acc": run.row[
                    f"val_acc_{run.epoch}"]}) == TrialScheduler.STOP:
            plan.study.tell(run.trial, state=optuna.trial.TrialState.PRUNED)
            scheduler.on_trial_remove(None, run.stub)
        elif last:
            plan.study.tell(run.trial, [run.row["val_acc"], run.row["remaining_fraction"]])
            if scheduler is not None:
                scheduler.on_trial_complete(None, run.stub, {})
            trace.done.append(run)
            trace.marks.append((clock, used, asked))
        else:
            heapq.heappush(events, (clock + table.seconds(run.key, run.epoch + 1), run.number,
                                    run))
            continue
        if asked < trials:  # the worker takes the next trial
            start(clock)
    trace.used = used
    return trace


def replay_one_epoch(table: Table, regime: str, seed: int, budgets, workers) -> dict:
    """"One epoch, keep the top K": random configurations trained one epoch; the top
    KEEP_FRACTION of each sparsity group (the design's early-stopping groups) on val at that
    epoch trained to the end. For each budget B, N is the largest that fits B epochs (the
    random sampler's first N draws, so one study serves every budget). Returns budget ->
    (hypervolume, {workers: simulated seconds})."""
    resolve_trial = project().resolve_trial
    plan, design = new_study(table, regime, seed, project().spaces.load(None, table.model),
                             "random", 10**6)
    rng = np.random.default_rng([seed, 37])
    size = {b: int(b / (1 + KEEP_FRACTION * (table.epochs - 1))) for b in budgets}
    runs = []
    while len(runs) < max(size.values()):
        trial = plan.ask()
        key, config = table.key_of(plan, trial, resolve_trial)
        hit = table.draw(key, rng)
        if hit is not None:
            runs.append((Run(len(runs), trial, key, hit[1], table.valued(key, hit[0])),
                         design.rung(key[1])))
    out = {}
    for budget, n in size.items():
        groups = defaultdict(list)
        for run, group in runs[:n]:
            groups[group].append(run)
        kept = []
        for members in groups.values():
            members.sort(key=lambda r: -r.row["val_acc_1"])
            kept += members[:max(1, round(KEEP_FRACTION * len(members)))]
        jobs = [table.seconds(r.key, 1) for r, _ in runs[:n]] + [
            sum(table.seconds(r.key, e) for e in range(2, table.epochs + 1)) for r in kept]
        out[budget] = (hypervolume_at_test(kept), {w: list_schedule(jobs, w) for w in workers})
    return out


def list_schedule(jobs: list[float], workers: int) -> float:
    """When ``jobs`` (seconds each), started in order on the first free of ``workers``, end."""
    free, end = [0.0] * workers, 0.0
    for seconds in jobs:
        begin = heapq.heappop(free)
        end = max(end, begin + seconds)
        heapq.heappush(free, begin + seconds)
    return end


# ----------------------------------------------------------------------------- statistics
def summary(values, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% bootstrap percentile interval over repetitions (NaNs left out)."""
    from analysis.intervals import percentile_interval

    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    low, high = percentile_interval(means)
    return float(values.mean()), low, high


def row(name: str, design: str, budget: str, values) -> dict:
    value, low, high = summary(values)
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    spread = float(finite.std(ddof=1)) if len(finite) > 1 else np.nan
    return {"name": name, "design": design, "budget": budget, "value": value,
            "ci_low": low, "ci_high": high, "n": len(finite), "sd": spread}


# ----------------------------------------------------------------------------- main
def repetition(task: tuple) -> dict:
    """Everything one repetition (its sampler seed ``rep``) replays for one regime; plain
    numbers, so that worker processes can hand them back."""
    path, regime, rep, options = task
    table = TABLES.get(path) or TABLES.setdefault(path, Table.read(Path(path)))
    levels, runs = options["levels"], options["runs"]
    out = {"levels": {}, "continuous": {}}
    if "levels" in options["designs"]:
        for sampler in options["samplers"]:
            for asha in (False, True) if sampler in PREFIX_SAMPLERS else (False,):
                name = f"{sampler}{' + ASHA' if asha else ''}"
                for n, by_level in replay_levels(table, sampler, regime, rep, levels, runs,
                                                 asha).items():
                    for level, value in by_level.items():
                        out["levels"][name, level, n] = value
        for name, space_name, kind in (("no tuning", None, None),
                                       ("paper grid", "paper_grid", "grid")):
            for level, value in fixed_levels(table, regime, levels, rep, space_name,
                                             kind).items():
                out["levels"][name, level, 1] = value
    if "continuous" in options["designs"]:
        trials, checkpoints = options["trials"], options["checkpoints"]
        budget = trials * table.epochs  # the epochs of the trials trained to their end
        for workers in options["workers"]:
            for sampler in options["samplers"]:
                for asha in (False, True):
                    name = f"{sampler}{' + ASHA' if asha else ''}"
                    if workers != options["workers"][0] and sampler != options["samplers"][0]:
                        continue  # the wall-clock by workers: the first sampler's (TPE)
                    trace = replay_continuous(table, sampler, regime, rep, workers, asha,
                                              trials)
                    out["continuous"][name, workers] = {
                        "seconds": trace.seconds, "hv": trace.hypervolume(),
                        "epochs": trace.used,
                        "by_epochs": {c: trace.hypervolume(c) for c in checkpoints},
                        "by_clock": {t: trace.hypervolume_by(t) for t in table.clock_marks(
                            budget, workers)}}
        top = replay_one_epoch(table, regime, rep, sorted({*checkpoints, budget}),
                               options["workers"])
        for workers in options["workers"]:
            out["continuous"]["one epoch, top K", workers] = {
                "seconds": top[budget][1][workers], "hv": top[budget][0], "epochs": budget,
                "by_epochs": {c: top[c][0] for c in checkpoints}}
    return out


TABLES: dict = {}  # a worker process's table, read once


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    p.add_argument("--repetitions", type=int, default=50)
    p.add_argument("--runs", type=int, default=RUNS, help="runs per level replayed (1 .. it)")
    p.add_argument("--levels", nargs="+", type=float, default=None,
                   help="levels replayed (default: the table's pruned levels)")
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    p.add_argument("--workers", nargs="+", type=int, default=list(WORKERS))
    p.add_argument("--trials", type=int, default=TRIALS,
                   help="trials of a continuous search (default: %(default)s)")
    p.add_argument("--designs", nargs="+", default=["levels", "continuous"],
                   choices=("levels", "continuous"))
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="processes replaying repetitions at once (default: the CPU count)")
    p.add_argument("--json", type=Path, default=None, help="write the methods' rows here")
    p.add_argument("--figures", type=Path, default=None,
                   help="write the figures (PNG) into this folder")
    args = p.parse_args(argv)
    started = time.perf_counter()
    table = Table.read(args.table)
    missing = [r for r in REGIMES if r not in table.lrs]
    if missing:
        print(f"error: {args.table} holds no {' or '.join(missing)} trainings yet "
              f"({len(table.frame)} rows): it is incomplete; continue it with python "
              "benchmarks/tabular.py --jobs 2", file=sys.stderr)
        return 2
    thin = sum(1 for runs in table.cells.values() if len(runs) < 2)
    if thin:
        print(f"note: {thin} of {len(table.cells)} cells have fewer than 2 seeds; a run "
              "chosen there cannot be valued on other seeds and is left out", flush=True)
    levels = tuple(args.levels or [x for x in table.levels if x > 0])
    seeds = sorted({int(s) for s in table.frame["seed"]})
    print(f"table {args.table.name}: {len(table.frame)} trainings, {table.model}, "
          f"{table.epochs} epochs, seeds {' '.join(map(str, seeds))}; "
          f"{args.repetitions} repetitions", flush=True)
    options = {"levels": levels, "runs": args.runs, "samplers": args.samplers,
               "workers": args.workers, "trials": args.trials, "designs": args.designs,
               "epochs": table.epochs,
               "checkpoints": [c for c in CHECKPOINTS if c <= args.trials * table.epochs]
               or [args.trials * table.epochs]}
    tasks = [(str(args.table), regime, rep, options) for regime in REGIMES
             for rep in range(args.repetitions)]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            done = list(pool.map(repetition, tasks, chunksize=4))
    else:
        done = [repetition(task) for task in tasks]
    results = {regime: [d for (_, r, _, _), d in zip(tasks, done) if r == regime]
               for regime in REGIMES}
    rows = []
    if "levels" in args.designs:
        rows += levels_rows(table, args, levels, results)
    if "continuous" in args.designs:
        rows += continuous_rows(args, options, results)
    if args.figures:
        for path in figures(rows, args.figures):
            print(f"figure: {path}")
    print(f"\n({time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"table": str(args.table.name), "methods": rows},
                                        indent=1, default=float))
    return 0


def levels_rows(table: Table, args, levels: tuple, results: dict) -> list[dict]:
    space = project().spaces.load(None, table.model)
    refs = {}
    for regime in REGIMES:
        key, refs[regime] = reference(table, regime, space)
        print(f"{regime}: reference (unpruned baseline, {key[2]} schedule n/a, lr {key[3]:g}): "
              f"test {100 * refs[regime]:.1f}% over the table's seeds")
    methods = [m for sampler in args.samplers for m in (
        [sampler, f"{sampler} + ASHA"] if sampler in PREFIX_SAMPLERS else [sampler])]
    methods += ["no tuning", "paper grid"]
    rows = []
    print("\nLevels design: accuracy kept (points: test accuracy minus the unpruned "
          "reference's) at each level, the chosen run valued on the "
          "table's other seeds; mean [95% bootstrap CI] over repetitions, and the spread "
          "(sd) of one search's value. The intervals cover the replay's own draws over one "
          "fixed table (3 seeds a cell), not that table's training noise")
    for level in levels:
        print(f"\nlevel {level:g}")
        print("| method | runs/level | fine-tuned | scratch | fine-tuned - scratch | sd: "
              "fine-tuned / scratch / difference |")
        print("|---|---|---|---|---|---|")
        for method in methods:
            for n in ([1] if method in ("no tuning", "paper grid") else range(1, args.runs + 1)):
                kept = {regime: [d["levels"].get((method, level, n), np.nan) - refs[regime]
                                 for d in results[regime]] for regime in REGIMES}
                if all(np.isnan(kept["pretrained"])) and all(np.isnan(kept["scratch"])):
                    continue
                diff = [a - b for a, b in zip(kept["pretrained"], kept["scratch"])]
                cells, spreads = [], []
                for what, values in (("pretrained", kept["pretrained"]),
                                     ("scratch", kept["scratch"]), ("difference", diff)):
                    r = row(method, f"levels {level:g} {what}", f"{n} runs/level",
                            [100 * v for v in values])
                    rows.append(r)
                    cells.append(f"{r['value']:.1f} [{r['ci_low']:.1f}, {r['ci_high']:.1f}]")
                    spreads.append(f"{r['sd']:.1f}")
                if n in PRINTED_RUNS:
                    print(f"| {method} | {n} | {' | '.join(cells)} | {' / '.join(spreads)} |")
    asha = [m for m in methods if m.endswith(" + ASHA")]
    if asha:
        print("\nLevels design with ASHA (one worker): epochs used, % of the same study's "
              "epochs without early stopping; mean [95% bootstrap CI]")
        print("| method | runs/level | fine-tuned | scratch |")
        print("|---|---|---|---|")
    for method in asha:
        for n in range(1, args.runs + 1):
            cells = []
            for regime in REGIMES:
                r = row(method, f"levels epochs {regime}", f"{n} runs/level",
                        [100 * d["levels"].get((method, "epochs", n), np.nan)
                         for d in results[regime]])
                rows.append(r)
                cells.append(f"{r['value']:.0f} [{r['ci_low']:.0f}, {r['ci_high']:.0f}]")
            if n in PRINTED_RUNS:
                print(f"| {method} | {n} | {' | '.join(cells)} |")
    return rows


def continuous_rows(args, options: dict, results: dict) -> list[dict]:
    rows = []
    checkpoints, first = options["checkpoints"], args.workers[0]
    names = sorted({name for d in results[REGIMES[0]] for name, _ in d["continuous"]})
    print("\nContinuous design: hypervolume (x100) of the front chosen on val, valued at its "
          "runs' test accuracy on the table's other seeds; mean [95% bootstrap CI] over "
          "repetitions ('-': some searches had ended before that many epochs)")
    for regime in REGIMES:
        print(f"\n{regime}, by epochs used ({first} worker(s))")
        print("| method | " + " | ".join(f"{c} epochs" for c in checkpoints) + " |")
        print("|---|" + "---|" * len(checkpoints))
        for name in names:
            cells = []
            for c in checkpoints:
                values = [100 * d["continuous"][name, first]["by_epochs"][c]
                          for d in results[regime]]
                if not np.isfinite(values).all():  # a search that ended before c epochs
                    values = [np.nan] * len(values)
                r = row(name, f"continuous {regime}", f"{c} epochs", values)
                rows.append(r)
                cells.append(f"{r['value']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
                             if r["n"] else "-")
            print(f"| {name} | {' | '.join(cells)} |")
        print(f"\n{regime}, simulated wall-clock (minutes) of a {args.trials}-trial search "
              f"(one epoch, top K: {args.trials * options['epochs']} epochs), the hypervolume "
              "then, and the epochs used")
        print("| method | " + " | ".join(f"{w} workers" for w in args.workers) + " |")
        print("|---|" + "---|" * len(args.workers))
        for name in names:
            cells = []
            for workers in args.workers:
                found = [d["continuous"].get((name, workers)) for d in results[regime]]
                found = [f for f in found if f is not None]
                if not found:
                    cells.append("-")
                    continue
                r = row(name, f"continuous {regime} minutes", f"{workers} workers",
                        [f["seconds"] / 60 for f in found])
                rows.append(r)
                hv = row(name, f"continuous {regime} hypervolume", f"{workers} workers",
                         [100 * f["hv"] for f in found])
                used = row(name, f"continuous {regime} epochs", f"{workers} workers",
                           [f["epochs"] for f in found])
                rows += [hv, used]
                cells.append(f"{r['value']:.1f} min, HV {hv['value']:.2f}, "
                             f"{used['value']:.0f} epochs")
                if "by_clock" in found[0]:  # the hypervolume against simulated wall-clock
                    for t in found[0]["by_clock"]:
                        rows.append(row(name, f"continuous {regime} clock {workers} workers",
                                        f"{t / 60:.2f} min",
                                        [100 * f["by_clock"][t] for f in found]))
            print(f"| {name} | {' | '.join(cells)} |")
    return rows


def style(name: str) -> str:
    """A method's line: dashed with early stopping."""
    return "--" if name.endswith(" + ASHA") else "-"


def figures(rows: list[dict], folder: Path) -> list[Path]:
    """Accuracy kept against runs per level (levels design), and hypervolume against epochs
    used (continuous design), each method's mean with its 95% interval as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    bases = sorted({name.removesuffix(" + ASHA") for name in frame["name"].unique()})
    colour = {name: f"C{bases.index(name.removesuffix(' + ASHA')) % 10}"
              for name in frame["name"].unique()}  # a sampler's colour, with ASHA or not
    written = []
    levels = frame[frame["design"].str.match(r"levels [\d.]+ ")]
    if len(levels):
        parts = levels["design"].str.split(" ", expand=True)
        levels = levels.assign(level=parts[1].astype(float), what=parts[2],
                               runs=levels["budget"].str.split(" ").str[0].astype(int))
        whats = ["pretrained", "scratch", "difference"]
        grid = sorted(levels["level"].unique())
        fig, axes = plt.subplots(len(whats), len(grid), figsize=(3.2 * len(grid), 8.5),
                                 squeeze=False, sharex=True)
        for i, what in enumerate(whats):
            for j, level in enumerate(grid):
                ax = axes[i][j]
                for name, part in levels[(levels["level"] == level)
                                         & (levels["what"] == what)].groupby("name"):
                    part = part.sort_values("runs")
                    if len(part) == 1:  # one run per level: a level line across
                        ax.axhline(part["value"].iloc[0], lw=1.2, label=name,
                                   ls=":" if name == "no tuning" else "--", color="black")
                        continue
                    ax.plot(part["runs"], part["value"], marker="o", ms=3, label=name,
                            color=colour[name], ls=style(name))
                    ax.fill_between(part["runs"], part["ci_low"], part["ci_high"], alpha=0.2,
                                    color=colour[name])
                ax.set_title(f"{what}, level {level:g}", fontsize=9)
                ax.set_xticks([n for n in PRINTED_RUNS if n <= levels["runs"].max()])
                if i == len(whats) - 1:
                    ax.set_xlabel("runs per level")
                if j == 0:
                    ax.set_ylabel("fine-tuned - scratch (points)" if what == "difference"
                                  else "accuracy kept (points)")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        written.append(folder / "evidence_levels.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    cont = frame[frame["design"].str.match(r"continuous \w+$")]
    if len(cont):
        cont = cont.assign(regime=cont["design"].str.split(" ").str[1],
                           epochs=cont["budget"].str.split(" ").str[0].astype(int))
        regimes = sorted(cont["regime"].unique())
        fig, axes = plt.subplots(1, len(regimes), figsize=(5.5 * len(regimes), 4),
                                 squeeze=False)
        for ax, regime in zip(axes[0], regimes):
            for name, part in cont[cont["regime"] == regime].groupby("name"):
                part = part.sort_values("epochs")
                ax.plot(part["epochs"], part["value"], marker="o", ms=3, label=name,
                        color=colour[name], ls=style(name))
                ax.fill_between(part["epochs"], part["ci_low"], part["ci_high"], alpha=0.15,
                                color=colour[name])
            ax.set_title(f"continuous design, {regime}")
            ax.set_xlabel("epochs used")
            ax.set_ylabel("hypervolume at test (x100)")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        written.append(folder / "evidence_continuous.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    clock = frame[frame["design"].str.contains(" clock ")]
    if len(clock):
        parts = clock["design"].str.split(" ", expand=True)
        clock = clock.assign(regime=parts[1], workers=parts[3].astype(int),
                             minutes=clock["budget"].str.split(" ").str[0].astype(float))
        regimes, workers = sorted(clock["regime"].unique()), sorted(clock["workers"].unique())
        fig, axes = plt.subplots(len(regimes), len(workers), squeeze=False,
                                 figsize=(4.2 * len(workers), 3.6 * len(regimes)))
        for i, regime in enumerate(regimes):
            for j, count in enumerate(workers):
                ax = axes[i][j]
                part = clock[(clock["regime"] == regime) & (clock["workers"] == count)]
                for name, line in part.groupby("name"):
                    line = line.sort_values("minutes")
                    ax.plot(line["minutes"], line["value"], marker="o", ms=3, label=name,
                            color=colour[name], ls=style(name))
                    ax.fill_between(line["minutes"], line["ci_low"], line["ci_high"],
                                    alpha=0.15, color=colour[name])
                ends = frame[frame["design"].isin([f"continuous {regime} minutes",
                                                   f"continuous {regime} hypervolume"])
                             & (frame["budget"] == f"{count} workers")
                             & ~frame["name"].isin(part["name"].unique())]
                for name, point in ends.groupby("name"):  # methods whose front forms at the
                    at = point.set_index("design")["value"]  # end: one point there
                    ax.plot(at[f"continuous {regime} minutes"],
                            at[f"continuous {regime} hypervolume"], marker="*", ms=10,
                            ls="", color=colour[name], label=name)
                ax.set_title(f"{regime}, {count} worker(s)", fontsize=9)
                ax.legend(fontsize=6)
                ax.set_xlabel("simulated wall-clock (minutes)")
                if j == 0:
                    ax.set_ylabel("hypervolume at test (x100)")
        fig.tight_layout()
        written.append(folder / "evidence_wallclock.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


if __name__ == "__main__":
    sys.exit(main())
