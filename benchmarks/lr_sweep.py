"""Learning-rate sweep: model x regime x optimizer x lr -> dense and pruned test accuracy.

    python benchmarks/lr_sweep.py --models vgg16 mobilenet_v2 --regimes scratch pretrained \\
        --optimizers adamw sgd --seeds 0 1 2 --jobs 2

Every cell trains the embedded default (digits) at the quick preset's epochs with the
family's recipe (``models.RECIPES``) except the learning rate, once unpruned and once pruned
to ``--prune-ratio`` (AGP, weight granularity, the scope and criterion of the model's search
space), over the given seeds. The learning rates default to the family's default for the
regime and optimizer times 1/3, 1 and 3 (``--factors``). Prints one row per cell: mean +-
sample std of the test accuracy over seeds, the per-seed values and the val accuracy
(selection uses val; test is reported). The
learning-rate ranges of search_spaces/*.yaml come from this table: a range is where the
measured accuracy is within a few points of the best.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

FACTORS = (1 / 3, 1.0, 3.0)  # learning rates tried: the family's default times these


def _run(args: tuple) -> dict:
    cell, overrides, threads = args
    import torch

    torch.set_num_threads(threads)
    from hpo_prune import TrialConfig, run_trial

    config = TrialConfig(**overrides).validate()
    started = time.perf_counter()
    result = run_trial(config)
    return {"cell": cell, "seed": config.seed, "test": result.final["test_acc"],
            "val": result.final["val_acc"], "seconds": time.perf_counter() - started}


def _space_pruning(model: str) -> dict:
    """The scope and criterion every trial of the model's default search space prunes with."""
    from hpo_prune.search import space

    fixed = space.load(None, model).fixed
    return {"scope": fixed.get("scope", "global"), "criterion": fixed.get("criterion",
                                                                          "magnitude")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["vgg16", "vgg16_bn", "mobilenet_v1",
                                                    "mobilenet_v2"])
    p.add_argument("--regimes", nargs="+", default=["scratch", "pretrained"])
    p.add_argument("--optimizers", nargs="+", default=["adamw", "sgd"])
    p.add_argument("--lrs", nargs="+", type=float, default=None,
                   help="learning rates (default: the family's default for the regime and "
                   "optimizer times 1/3, 1 and 3)")
    p.add_argument("--factors", nargs="+", type=float, default=list(FACTORS),
                   help="without --lrs: the learning rates are the family's default times "
                   "these (default: 1/3 1 3; '--factors 1' checks the defaults alone)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="default: the quick preset's")
    p.add_argument("--prune-ratio", type=float, default=0.8)
    p.add_argument("--dense-only", action="store_true")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="other TrialConfig settings for every run, e.g. batch_size=32")
    p.add_argument("--jobs", type=int, default=1, help="parallel trials (one thread each "
                   "when > 1)")
    p.add_argument("--log", default=None, help="JSON-lines file of finished runs: appended to "
                   "as runs finish; runs already in it are not run again (resume a sweep)")
    args = p.parse_args(argv)
    from hpo_prune import TrialConfig
    from hpo_prune.models import recipe
    from hpo_prune.search.cli import PRESETS

    epochs = args.epochs or PRESETS["quick"]["epochs"]
    extra = TrialConfig.from_dict(dict(kv.split("=", 1) for kv in args.set)).to_dict()
    extra = {k: v for k, v in extra.items() if kv_given(k, args.set)}
    ratios = [0.0] if args.dense_only else [0.0, args.prune_ratio]
    jobs = []
    for model, regime, optimizer in itertools.product(args.models, args.regimes,
                                                      args.optimizers):
        pruning = _space_pruning(model)
        default = recipe(model, regime, optimizer)["lr"]
        for lr in args.lrs or [float(f"{default * f:.2g}") for f in args.factors]:
            for ratio in ratios:
                cell = (model, regime, optimizer, lr, ratio)
                for seed in args.seeds:
                    jobs.append((cell, {"model": model, "init": regime, "optimizer": optimizer,
                                        "lr": lr, "epochs": epochs, "seed": seed,
                                        "prune_ratio": ratio, "schedule": "agp",
                                        "granularity": "weight", **pruning, **extra},
                                 1 if args.jobs > 1 else (os.cpu_count() or 1)))
    if any(j[1]["init"] == "pretrained" for j in jobs):  # build the fractal checkpoints first
        from hpo_prune.sources import resolve

        for model in args.models:
            resolve(TrialConfig(model=model, init="pretrained", **{
                k: v for k, v in extra.items() if k in ("image_size",)}))
    results: dict = {}
    logged = {}
    if args.log and os.path.exists(args.log):
        with open(args.log) as f:
            for line in f:
                done = json.loads(line)
                done["cell"] = tuple(done["cell"])
                logged[done["cell"], done["seed"]] = done
    for job in jobs:
        if (job[0], job[1]["seed"]) in logged:
            done = logged[job[0], job[1]["seed"]]
            results.setdefault(done["cell"], []).append(done)
    todo = [j for j in jobs if (j[0], j[1]["seed"]) not in logged]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for done in pool.map(_run, todo):
            results.setdefault(done["cell"], []).append(done)
            print(f"  {done['cell']} seed {done['seed']}: test {done['test']:.4f} "
                  f"({done['seconds']:.0f}s)", file=sys.stderr, flush=True)
            if args.log:
                with open(args.log, "a") as f:
                    f.write(json.dumps(done) + "\n")
    print(f"digits, {epochs} epochs, seeds {args.seeds}, {' '.join(args.set)} "
          f"({time.perf_counter() - started:.0f}s)")
    print("| model | regime | optimizer | lr | pruned to | test acc | per seed | val acc |")
    print("|---|---|---|---|---|---|---|---|")
    for cell in dict.fromkeys(j[0] for j in jobs):
        runs = results[cell]
        model, regime, optimizer, lr, ratio = cell
        tests = [r["test"] for r in sorted(runs, key=lambda r: r["seed"])]
        vals = [r["val"] for r in runs]
        spread = statistics.stdev(tests) if len(tests) > 1 else 0.0
        print(f"| {model} | {regime} | {optimizer} | {lr:g} | {ratio:.0%} | "
              f"{statistics.mean(tests):.3f} +- {spread:.3f} | "
              f"{' '.join(f'{t:.3f}' for t in tests)} | {statistics.mean(vals):.3f} |")
    return 0


def kv_given(name: str, pairs: list[str]) -> bool:
    return any(kv.split("=", 1)[0] == name for kv in pairs)


if __name__ == "__main__":
    sys.exit(main())
