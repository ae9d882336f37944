"""Learning-rate sweep: model x regime x optimizer x lr -> dense and pruned test accuracy.

    python benchmarks/lr_sweep.py --models vgg16 mobilenet_v2 --regimes scratch pretrained \\
        --optimizers adamw sgd --seeds 0 1 2 --jobs 2

Every cell trains the embedded default (digits) at the quick preset's epochs with the
family's recipe (``models.RECIPES``) except the learning rate, once unpruned and once pruned
to ``--prune-ratio`` (AGP, weight granularity, the scope of the model's search space), over
the given seeds. Prints one row per cell: mean +- sample std of the test accuracy over seeds,
the per-seed values and the val accuracy (selection uses val; test is reported). The
learning-rate ranges of search_spaces/*.yaml come from this table: a range is where the
measured accuracy is within a few points of the best.
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

DEFAULT_LRS = {"adamw": [3e-4, 1e-3, 3e-3], "sgd": [0.01, 0.03, 0.1]}


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


def _space_scope(model: str) -> str:
    from hpo_prune.search import space

    loaded = space.load(None, model)
    return loaded.fixed.get("scope", "global")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["vgg16", "vgg16_bn", "mobilenet_v1",
                                                    "mobilenet_v2"])
    p.add_argument("--regimes", nargs="+", default=["scratch", "pretrained"])
    p.add_argument("--optimizers", nargs="+", default=["adamw", "sgd"])
    p.add_argument("--lrs", nargs="+", type=float, default=None,
                   help="learning rates (default: per optimizer, %s)" % DEFAULT_LRS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="default: the quick preset's")
    p.add_argument("--prune-ratio", type=float, default=0.8)
    p.add_argument("--dense-only", action="store_true")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="other TrialConfig settings for every run, e.g. batch_size=32")
    p.add_argument("--jobs", type=int, default=1, help="parallel trials (one thread each "
                   "when > 1)")
    args = p.parse_args(argv)
    from hpo_prune import TrialConfig
    from hpo_prune.search.cli import PRESETS

    epochs = args.epochs or PRESETS["quick"]["epochs"]
    extra = TrialConfig.from_dict(dict(kv.split("=", 1) for kv in args.set)).to_dict()
    extra = {k: v for k, v in extra.items() if kv_given(k, args.set)}
    ratios = [0.0] if args.dense_only else [0.0, args.prune_ratio]
    jobs = []
    for model, regime, optimizer in itertools.product(args.models, args.regimes,
                                                      args.optimizers):
        scope = _space_scope(model)
        for lr in args.lrs or DEFAULT_LRS[optimizer]:
            for ratio in ratios:
                cell = (model, regime, optimizer, lr, ratio)
                for seed in args.seeds:
                    jobs.append((cell, {"model": model, "init": regime, "optimizer": optimizer,
                                        "lr": lr, "epochs": epochs, "seed": seed,
                                        "prune_ratio": ratio, "schedule": "agp",
                                        "granularity": "weight", "scope": scope, **extra},
                                 1 if args.jobs > 1 else (os.cpu_count() or 1)))
    if any(j[1]["init"] == "pretrained" for j in jobs):  # build the fractal checkpoints first
        from hpo_prune.sources import resolve

        for model in args.models:
            resolve(TrialConfig(model=model, init="pretrained", **{
                k: v for k, v in extra.items() if k in ("image_size",)}))
    results: dict = {}
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for done in pool.map(_run, jobs):
            results.setdefault(done["cell"], []).append(done)
            print(f"  {done['cell']} seed {done['seed']}: test {done['test']:.4f} "
                  f"({done['seconds']:.0f}s)", file=sys.stderr, flush=True)
    print(f"digits, {epochs} epochs, seeds {args.seeds}, {' '.join(args.set)} "
          f"({time.perf_counter() - started:.0f}s)")
    print("| model | regime | optimizer | lr | pruned to | test acc | per seed | val acc |")
    print("|---|---|---|---|---|---|---|---|")
    for cell, runs in results.items():
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
