"""A table of real trainings on the embedded default, for replaying searches offline.

    python benchmarks/tabular.py --jobs 2

trains every cell of model x regime x level x schedule x learning rate x seed on digits at the
quick preset's epochs, each through the search's own trial code (``resolve_trial`` then
``run_trial``, as the search's trainable does), and appends one row per training to
``benchmarks/data/tabular_vgg16_digits.csv``. The cells:

- regimes: scratch and pretrained (the fractal checkpoint the default search fine-tunes);
- levels: unpruned and the pruning levels 0.5, 0.8, 0.9, 0.95 (``--levels``);
- schedules: every schedule the model's default search space samples (one for unpruned cells:
  the baseline's, which a schedule does not touch);
- learning rates: a log grid over the space's range for the regime, from half its low end to
  twice its high end (``--lr-points`` values; 4 = factor-2 steps for a range of factor 2, so
  the grid holds both ends of the range, the family's recipe and the baseline's rate);
- seeds: ``TABLE_SEEDS``, a block no search and no recipe sweep uses (``hpo_prune.levels``).

Every row holds the per-epoch val and test accuracy, sparsity and seconds (the test accuracy
of every epoch is stored for replaying early stopping; nothing here chooses on it), the final
val and test accuracy and remaining fraction, the resolved settings (JSON), the commit and the
CPU. The run is resumable: rows already in the file are not trained again, so it can be
stopped at any time (Ctrl-C, kill) and started again with the same command. Cells run seed by
seed, so a partial table holds whole seeds first.

Size of the default table: 2 regimes x (4 levels x 4 schedules + 1 unpruned) x 4 learning rates
x 3 seeds = 408 trainings of 4 epochs (docs/evidence.md gives the time it took).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "data" / "tabular_vgg16_digits.csv"
LEVELS = (0.5, 0.8, 0.9, 0.95)
TABLE_SEEDS = (9_000_000, 9_000_001, 9_000_002)  # no search block reaches them at R <= 10
LR_POINTS = 4
KEY = ("model", "regime", "level", "schedule", "lr", "seed")


def lr_grid(low: float, high: float, points: int) -> list[float]:
    """``points`` log-spaced learning rates from low / 2 to high * 2, rounded to 3 digits."""
    a, b = math.log(low / 2), math.log(high * 2)
    return [float(f"{math.exp(a + (b - a) * i / (points - 1)):.3g}") for i in range(points)]


def cells(model: str, levels, lr_points: int, seeds, epochs: int, dataset: str = "digits",
          extra: dict | None = None) -> list[dict]:
    """Every training of the table, as (key, unresolved TrialConfig overrides), seed by seed:
    the configurations the search's studies would build (the space's fixed values, then the
    sampled ones; the baseline's parameters for unpruned cells)."""
    from hpo_prune import TrialConfig
    from hpo_prune.models import recipe
    from hpo_prune.search.studies import space as spaces
    from hpo_prune.search.studies.study import baseline_params

    space = spaces.load(None, model)
    out = []
    for seed in seeds:
        for regime in ("scratch", "pretrained"):
            optimizer = recipe(model, regime)["optimizer"]
            base = TrialConfig(model=model, dataset=dataset, init=regime, epochs=epochs,
                               seed=seed, **(extra or {}))
            lr = space.spec("lr", regime, optimizer)
            lrs = lr_grid(lr["low"], lr["high"], lr_points)
            schedules = space.spec("schedule", regime, optimizer)["choices"]
            dense = baseline_params(space, base)
            for level, schedule, rate in itertools.chain(
                    ((0.0, dense["schedule"], rate) for rate in lrs),
                    itertools.product(levels, schedules, lrs)):
                values = {**space.fixed, "prune_ratio": level, "schedule": schedule, "lr": rate}
                if schedule == "iterative":
                    values["prune_steps"] = dense.get("prune_steps", 3)
                key = {"model": model, "regime": regime, "level": level, "schedule": schedule,
                       "lr": rate, "seed": seed}
                out.append({"key": key, "config": base.replace(**values).to_dict()})
    return out


def train(job: dict, threads: int) -> dict:
    """One training, as the search's trainable runs it; the table's row."""
    import torch

    torch.set_num_threads(threads)
    from hpo_prune import TrialConfig, run_trial
    from hpo_prune.resolution import resolve_trial

    config = resolve_trial(TrialConfig.from_dict(job["config"]))
    started = time.perf_counter()
    result = run_trial(config, test_every_epoch=True)
    row = {**job["key"], "epochs": len(result.epochs)}
    for e in result.epochs:
        n = e["epoch"]
        row.update({f"val_acc_{n}": e["val_acc"], f"test_acc_{n}": e["test_acc"],
                    f"sparsity_{n}": e["sparsity"], f"seconds_{n}": e["seconds"]})
    final = result.final
    row.update({"val_acc": final["val_acc"], "test_acc": final["test_acc"],
                "remaining_fraction": final["remaining_fraction"],
                "params_remaining": final["params_remaining"],
                "seconds": final["seconds"], "wall_seconds": time.perf_counter() - started,
                "settings": json.dumps(config.to_dict(), sort_keys=True,
                                       separators=(",", ":"))})
    return row


def columns(epochs: int) -> list[str]:
    per_epoch = [f"{name}_{n}" for n in range(1, epochs + 1)
                 for name in ("val_acc", "test_acc", "sparsity", "seconds")]
    return [*KEY, "epochs", *per_epoch, "val_acc", "test_acc", "remaining_fraction",
            "params_remaining", "seconds", "wall_seconds", "commit", "cpu", "settings"]


def key_of(row: dict) -> tuple:
    return (row["model"], row["regime"], float(row["level"]), row["schedule"],
            float(row["lr"]), int(row["seed"]))


def done_keys(path: Path) -> set:
    if not path.exists():
        return set()
    with path.open(newline="") as f:
        return {key_of(row) for row in csv.DictReader(f)}


def table_rescale(path: Path) -> str:
    """How the table's trainings pruned (its first row's settings; none before --rescale)."""
    with path.open(newline="") as f:
        first = next(csv.DictReader(f))
    return json.loads(first["settings"]).get("rescale", "none")


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hpo_prune"],
                               cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
        return out + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="vgg16")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="the table (appended to; rows in it are not trained again)")
    p.add_argument("--levels", nargs="+", type=float, default=list(LEVELS))
    p.add_argument("--lr-points", type=int, default=LR_POINTS)
    p.add_argument("--seeds", nargs="+", type=int, default=list(TABLE_SEEDS))
    p.add_argument("--epochs", type=int, default=None, help="default: the quick preset's")
    p.add_argument("--train-subset", type=int, default=0, help="train on this many images "
                   "(0: all; for a quick check of the harness, not for the table)")
    p.add_argument("--jobs", type=int, default=2, help="trainings at once, one thread each")
    p.add_argument("--limit", type=int, default=0, help="train at most this many (0: all)")
    args = p.parse_args(argv)
    from hpo_prune.resolution import resolve_trial
    from hpo_prune.search.cli import PRESETS
    from hpo_prune.settings import TrialConfig
    from hpo_prune.sources import load_weights

    epochs = args.epochs or PRESETS["quick"]["epochs"]
    extra = {"train_subset": args.train_subset} if args.train_subset else {}
    jobs = cells(args.model, args.levels, args.lr_points, args.seeds, epochs, extra=extra)
    done = done_keys(args.out)
    if done:  # a table holds one way of pruning: rows that prune otherwise go to a new one
        ours, theirs = jobs[0]["config"].get("rescale", "none"), table_rescale(args.out)
        if ours != theirs:
            print(f"error: {args.out} was trained with --rescale {theirs}, the search space "
                  f"now prunes with --rescale {ours}: give a new table with --out",
                  file=sys.stderr)
            return 2
    todo = [j for j in jobs if key_of(j["key"]) not in done]
    if args.limit:
        todo = todo[:args.limit]
    print(f"{len(jobs)} trainings in the table, {len(done)} already in {args.out}, "
          f"{len(todo)} to train now", file=sys.stderr, flush=True)
    if not todo:
        return 0
    # the pre-trained checkpoint, built once before the workers start (they load it)
    pretrained = next(j for j in todo + jobs if j["key"]["regime"] == "pretrained")
    load_weights(resolve_trial(TrialConfig.from_dict(pretrained["config"])))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    names, stamp = columns(epochs), {"commit": commit(), "cpu": cpu_name()}
    new_file = not args.out.exists()
    started, finished = time.perf_counter(), 0
    threads = 1 if args.jobs > 1 else (os.cpu_count() or 1)
    if new_file:
        with args.out.open("w", newline="") as f:
            csv.DictWriter(f, fieldnames=names).writeheader()
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(train, job, threads) for job in todo]
        for future in as_completed(futures):
            row = {**future.result(), **stamp}
            # opened per row: a file replaced meanwhile (a checkout, a copy) still gets it
            with args.out.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=names).writerow(row)
            finished += 1
            elapsed = time.perf_counter() - started
            eta = elapsed / finished * (len(todo) - finished)
            print(f"[{finished}/{len(todo)}] {row['regime']} level {row['level']:g} "
                  f"{row['schedule']} lr {row['lr']:g} seed {row['seed']}: val "
                  f"{row['val_acc']:.3f} test {row['test_acc']:.3f} ({row['wall_seconds']:.0f}s; "
                  f"about {eta / 60:.0f} min left)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
