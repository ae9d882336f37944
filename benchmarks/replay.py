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
with the share of epochs it used, and TPE with ``--first-run recipe`` ("tpe, recipe first":
each level's first run the family's recipe, the later ones TPE's). Beside each mean, the
spread (sd) of one search's value.

**Continuous design** (``--levels none``): per regime, a study of ``--trials`` trials whose
sampler draws the pruning ratio too, run on 1, 2 or 8 simulated workers, without and with the
sparsity-grouped ASHA (the same trials, the weak ones stopped early; a run is grouped by the
level whose curve it follows); besides, "one epoch, keep the top K" (random configurations
trained one epoch, the best quarter of each sparsity group trained on, as many as the plain
search's epochs allow); and the paper grid (its 8 ratios once each, one-cycle at the recipe's
rate: 32 epochs). Value: the hypervolume of the study's front, chosen on (val accuracy,
remaining fraction) and valued at its runs' test accuracy on the table's other seeds
(reference point: accuracy 0, everything left), against the epochs used and against the simulated wall-clock (an epoch takes the lower
quartile of that epoch's seconds over the table's rows of its level, both regimes: work that
ran beside a training on the machine only ever added time, so a low quantile is the time of
an epoch that trained alone, two at a time, as the table was built).

``--value val`` values every chosen run and front at its val accuracy on the table's other
seeds instead of its test accuracy: the split a default may be chosen on (test is reported,
never chooses). Every figure is a mean over ``--repetitions`` repetitions, each with its own
sampler seed,
with a 95% bootstrap interval over the repetitions. ``--json PATH`` writes ``{"table": FILE,
"methods": [{"name", "design", "budget", "value", "ci_low", "ci_high", "n", "sd"}, ...]}``;
``--figures DIR`` writes evidence_levels.png, evidence_continuous.png (by epochs) and
evidence_wallclock.png.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from replay_continuous import TRIALS, replay_continuous, replay_grid, replay_one_epoch
from replay_figures import figures
from replay_levels import PREFIX_SAMPLERS, PRINTED_RUNS, fixed_levels, reference, replay_levels
from replay_search import project
from replay_table import DEFAULT_TABLE, REGIMES, Table

SAMPLERS = ("tpe", "random", "nsga2")
RUNS = 12  # runs per level replayed (every n up to it)
WORKERS = (1, 2, 8)
RECIPE_FIRST = "tpe"  # the sampler replayed with --first-run recipe too (the presets')
# epochs used at which the hypervolume is read (32: the paper grid's 8 points x 4 epochs)
CHECKPOINTS = (32, 40, 80, 120, 160, 200, 240)


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
    value = options.get("value", "test_acc")
    table = TABLES.get((path, value)) or TABLES.setdefault((path, value),
                                                         Table.read(Path(path), value))
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
        if RECIPE_FIRST in options["samplers"]:
            for n, by_level in replay_levels(table, RECIPE_FIRST, regime, rep, levels, runs,
                                             first_run="recipe").items():
                for level, value in by_level.items():
                    out["levels"][f"{RECIPE_FIRST}, recipe first", level, n] = value
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
        grid, grid_epochs, grid_seconds = replay_grid(table, regime, rep, options["workers"])
        for workers in options["workers"]:
            out["continuous"]["one epoch, top K", workers] = {
                "seconds": top[budget][1][workers], "hv": top[budget][0], "epochs": budget,
                "by_epochs": {c: top[c][0] for c in checkpoints}}
            out["continuous"]["paper grid", workers] = {
                "seconds": grid_seconds[workers], "hv": grid, "epochs": grid_epochs,
                "by_epochs": {c: grid if c == grid_epochs else np.nan for c in checkpoints}}
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
    p.add_argument("--value", choices=("test", "val"), default="test",
                   help="what values a chosen run (and a front) on the table's other seeds: "
                   "its test accuracy (reported), or its val accuracy there (the split a "
                   "default may be chosen on) (default: %(default)s)")
    p.add_argument("--json", type=Path, default=None, help="write the methods' rows here")
    p.add_argument("--figures", type=Path, default=None,
                   help="write the figures (PNG) into this folder")
    args = p.parse_args(argv)
    started = time.perf_counter()
    table = Table.read(args.table, f"{args.value}_acc")
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
          f"{args.repetitions} repetitions; chosen runs valued at their {args.value} accuracy "
          "on the other seeds", flush=True)
    options = {"levels": levels, "runs": args.runs, "samplers": args.samplers,
               "workers": args.workers, "trials": args.trials, "designs": args.designs,
               "epochs": table.epochs, "value": table.value,
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
    from hpo_prune.models import recipe
    from tabular import lr_grid

    space = project().spaces.load(None, table.model)
    refs = {}
    pruning = space.fixed.get("rescale", "none")
    if table.rescale != pruning:
        print(f"note: the table's trainings pruned with --rescale {table.rescale}, the search "
              f"space now prunes with --rescale {pruning}: this replay speaks of the table's "
              "training, not of today's trials")
    for regime in REGIMES:
        lr, rates = space.spec("lr", regime, recipe(table.model, regime)["optimizer"]), \
            table.lrs[regime]
        if rates != lr_grid(lr["low"], lr["high"], len(rates)):
            print(f"note: the table's {regime} rates ({', '.join(f'{x:g}' for x in rates)}) "
                  f"were laid around another lr range than the space's ({lr['low']:g} to "
                  f"{lr['high']:g}): a sampled rate is looked up at the nearest of them")
        key, refs[regime] = reference(table, regime, space)
        print(f"{regime}: reference (unpruned baseline, {key[2]} schedule n/a, lr {key[3]:g}): "
              f"test {100 * refs[regime]:.1f}% over the table's seeds")
    methods = [m for sampler in args.samplers for m in (
        [sampler, f"{sampler} + ASHA"] if sampler in PREFIX_SAMPLERS else [sampler])]
    methods += [f"{RECIPE_FIRST}, recipe first"] * (RECIPE_FIRST in args.samplers)
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


if __name__ == "__main__":
    sys.exit(main())
