"""Search benchmarks (prints figures; not a test).

1. Scheduling efficiency: a search of --trials trials at full concurrency. Efficiency = (sum of
   the trials' own wall times / concurrency) / wall time of the Tune run (first trial start to
   last trial end, from the Optuna timestamps); also against the whole command's wall time
   (Ray start, data loading and studies included). Target >= 0.95.
2. Sample efficiency: hypervolume (val_acc max, remaining_fraction min, reference (0, 1)) that
   the TPE sampler reaches after N trials, vs the grid protocol (fixed sparsities x fixed
   learning rates) with 3N trials on the same per-trial budget. Target: TPE >= grid.

    python benchmarks/bench_search.py --model mobilenet_v2 --trials 6 --epochs 2 \\
        --train-subset 256
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from analysis.fronts import study_hypervolume


def run(args, *extra, cwd) -> float:
    # one baseline and no confirmation runs: N trials are N different configurations
    cmd = [sys.executable, "-m", "hpo_prune.search", "--model", args.model, "--regimes",
           "scratch", "--epochs", str(args.epochs), "--train-subset", str(args.train_subset),
           "--baseline-seeds", "1", "--confirm", "0", "--results", str(cwd), *extra]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"search failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def study_of(folder: Path) -> optuna.Study:
    url = f"sqlite:///{folder / 'optuna.db'}"
    return optuna.load_study(study_name=optuna.get_all_study_names(url)[0], storage=url)


def complete(folder: Path) -> pd.DataFrame:
    table = pd.read_csv(folder / "trials.csv")
    return table[table.state == "COMPLETE"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mobilenet_v2")
    p.add_argument("--trials", type=int, default=6, help="N (TPE); the grid gets 3N")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-subset", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scheduling-only", action="store_true",
                   help="skip the sample-efficiency measurement (the grid search)")
    args = p.parse_args()
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        command_s = run(args, "--trials", str(args.trials), "--name", "tpe", "--seed",
                        str(args.seed), cwd=root)
        trials = complete(root / "tpe")
        study = study_of(root / "tpe")
        done = [t for t in study.get_trials() if t.datetime_complete is not None]
        span = (max(t.datetime_complete for t in done)
                - min(t.datetime_start for t in done)).total_seconds()
        busy = trials.wall_seconds.sum() / cpus
        print(f"scheduling: {len(trials)} trials, concurrency {cpus}, sum of trial times "
              f"{trials.wall_seconds.sum():.1f}s")
        print(f"  efficiency vs Tune run  ({span:.1f}s): {busy / span:.3f}")
        print(f"  efficiency vs command   ({command_s:.1f}s): {busy / command_s:.3f}")
        if args.scheduling_only:
            return

        space = root / "grid.yaml"
        ratios = np.round(np.linspace(0.0, 0.9, args.trials), 3).tolist()
        space.write_text("params: {}\nfixed: {schedule: one_cycle}\ngrid:\n"
                         f"  prune_ratio: {ratios}\n  lr: [0.005, 0.02, 0.08]\n")
        run(args, "--sampler", "grid", "--space", str(space), "--trials",
            str(3 * args.trials), "--name", "grid", cwd=root)
        grid = complete(root / "grid")
        print("sample efficiency (hypervolume, reference val_acc 0 / remaining 1):")
        print(f"  TPE  after {len(trials):2d} trials: {study_hypervolume(trials):.4f}")
        print(f"  grid after {len(grid):2d} trials: {study_hypervolume(grid):.4f}")


if __name__ == "__main__":
    main()
