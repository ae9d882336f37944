"""The continuous design replayed (``--levels none``): a study that samples the ratio too, on
simulated workers, with and without the sparsity-grouped ASHA; "one epoch, keep the top K";
the paper grid. Valued by the hypervolume of the front chosen on val."""
from __future__ import annotations

import dataclasses
import heapq
from collections import defaultdict

import numpy as np

from replay_search import early_stopping, new_study, project, tune_stub
from replay_table import Table

TRIALS = 60  # trials of a continuous search (240 epochs of full 4-epoch trainings)
KEEP_FRACTION = 0.25  # "one epoch, keep the top K": the share of each group trained on


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


def replay_grid(table: Table, regime: str, seed: int, workers) -> tuple[float, int, dict]:
    """The reference study's grid (``--space paper_grid --sampler grid``) as a continuous
    search: each grid point once, at its nearest cell (a ratio at the nearest table level, as
    for every sampler here), on a seed drawn at random. Returns (hypervolume, epochs used,
    {workers: simulated seconds})."""
    p = project()
    space = p.spaces.load("paper_grid", table.model)
    points = len(space.grid_points(regime))
    plan, _ = new_study(table, regime, seed, space, "grid", points)
    rng = np.random.default_rng([seed, 41])
    runs = []
    for number in range(points):
        trial = plan.ask()
        key, _ = table.key_of(plan, trial, p.resolve_trial)
        hit = table.draw(key, rng)
        if hit is not None:
            runs.append(Run(number, trial, key, hit[1], table.valued(key, hit[0])))
        plan.study.tell(trial, state=p.optuna.trial.TrialState.FAIL)  # not needed further
    jobs = [sum(table.seconds(r.key, e) for e in range(1, table.epochs + 1)) for r in runs]
    return (hypervolume_at_test(runs), len(runs) * table.epochs,
            {w: list_schedule(jobs, w) for w in workers})


def list_schedule(jobs: list[float], workers: int) -> float:
    """When ``jobs`` (seconds each), started in order on the first free of ``workers``, end."""
    free, end = [0.0] * workers, 0.0
    for seconds in jobs:
        begin = heapq.heappop(free)
        end = max(end, begin + seconds)
        heapq.heappush(free, begin + seconds)
    return end
