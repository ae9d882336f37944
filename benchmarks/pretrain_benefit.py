"""Does fractal pre-training help on the embedded dataset? Pretrained vs scratch, equal budget.

    python benchmarks/pretrain_benefit.py [--models vgg16 mobilenet_v2] [--seeds 0 1 2]
        [--epochs 4] [--lr 0] [--jobs 1] [--device auto] [--out results/pretrain_benefit]

For each model it first builds (or reuses) the fractal checkpoint with
``python -m hpo_prune.pretrain`` (default pre-training settings unless ``--pretrain-args``
says otherwise), then runs ``python -m hpo_prune.train --dataset digits --init pretrained``
and ``--init scratch`` with the same learning rate, epochs and seeds, and prints final val and
test accuracy as mean +- std (sample std over seeds) per model and regime. Finished runs in
--out are reused, so an interrupted benchmark resumes.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hpo_prune.training.checkpoint import METRICS_FILE, is_finished


def run(cmd: list[str], env: dict, log: Path) -> None:
    started = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    print(f"  [{time.perf_counter() - started:6.0f}s] rc {rc}: {shlex.join(cmd[2:])}",
          flush=True)
    if rc != 0:
        sys.exit(f"failed (rc {rc}), see {log}")


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} +- {std:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["vgg16", "mobilenet_v2"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=4, help="default: the quick preset's")
    p.add_argument("--lr", type=float, default=0.0, help="default 0: the model family's "
                   "recipe for each regime")
    p.add_argument("--device", default="auto")
    p.add_argument("--jobs", type=int, default=1, help="trials run at once (CPU threads are "
                   "shared out among them)")
    p.add_argument("--pretrain-args", default="", help="extra flags for both the pretrain "
                   "command and the trials, e.g. '--fractal-classes 30'")
    p.add_argument("--out", default="results/pretrain_benefit")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    threads = max(1, (os.cpu_count() or 1) // max(args.jobs, 1))
    env.setdefault("OMP_NUM_THREADS", str(threads))
    extra = shlex.split(args.pretrain_args)
    # the pretrain command names the fractal flags without their prefix
    short = {"--fractal-classes": "--classes", "--fractal-per-class": "--per-class",
             "--pretrain-epochs": "--epochs", "--pretrain-lr": "--lr",
             "--pretrain-seed": "--seed"}
    py = [sys.executable, "-m"]

    records = {}
    for model in args.models:
        print(f"{model}: pre-training (or cached)", flush=True)
        run(py + ["hpo_prune.pretrain", "--model", model, "--device", args.device]
            + [short.get(a, a) for a in extra], env, out / f"{model}_pretrain.log")
        from hpo_prune import TrialConfig
        from hpo_prune.resolution import resolve_trial
        from hpo_prune.sources import pretrain

        config = resolve_trial(TrialConfig(model=model, init="pretrained", device=args.device,
                                           **_fields(extra)))
        _, records[model] = pretrain.load(pretrain.settings(config))

    jobs = []
    for model in args.models:
        for init in ("pretrained", "scratch"):
            for seed in args.seeds:
                run_dir = out / f"{model}_{init}_s{seed}"
                if is_finished(run_dir):
                    continue
                cmd = py + ["hpo_prune.train", "--model", model, "--dataset", "digits",
                            "--init", init, "--epochs", str(args.epochs), "--lr",
                            str(args.lr), "--seed", str(seed), "--device", args.device,
                            "--out", str(run_dir), "--overwrite"]
                if init == "pretrained":
                    cmd += extra
                jobs.append((cmd, out / f"{model}_{init}_s{seed}.log"))
    print(f"{len(jobs)} trials to run, {args.jobs} at a time", flush=True)
    with ThreadPoolExecutor(max(args.jobs, 1)) as pool:
        list(pool.map(lambda job: run(job[0], env, job[1]), jobs))

    print(f"\ndigits, {args.epochs} epochs at lr {args.lr or 'of the recipe'}, seeds "
          f"{args.seeds}, device {args.device}; corpus acc = held-out accuracy of the "
          "pre-training (its time):")
    print("| model | init | corpus acc | val acc | test acc | test acc per seed |")
    print("|---|---|---|---|---|---|")
    summary = []
    for model in args.models:
        rec = records[model]
        for init in ("pretrained", "scratch"):
            finals = [json.loads((out / f"{model}_{init}_s{s}" / METRICS_FILE).read_text())
                      ["final"] for s in args.seeds]
            corpus = (f"{rec['corpus_acc']:.3f} ({rec['seconds']:.0f}s)"
                      if init == "pretrained" else "-")
            tests = [f["test_acc"] for f in finals]
            print(f"| {model} | {init} | {corpus} | "
                  f"{mean_std([f['val_acc'] for f in finals])} | {mean_std(tests)} | "
                  f"{' '.join(f'{t:.3f}' for t in tests)} |")
            summary.append({"model": model, "init": init, "seeds": args.seeds,
                            "val_acc": [f["val_acc"] for f in finals], "test_acc": tests,
                            "corpus_acc": rec["corpus_acc"] if init == "pretrained" else None})
    (out / "summary.json").write_text(json.dumps(summary, indent=2))


def _fields(extra: list[str]) -> dict:
    """TrialConfig values of --fractal-*/--pretrain-* flags in `extra`."""
    from hpo_prune import TrialConfig
    from hpo_prune.errors import ArgumentParser

    parser = ArgumentParser()
    TrialConfig.add_arguments(parser, groups=("pretrain",))
    known = vars(parser.parse_args(extra))
    return known


if __name__ == "__main__":
    main()
