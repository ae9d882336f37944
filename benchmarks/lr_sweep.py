"""Recipe sweep: model x regime x optimizer x lr x warm-up x head -> dense and pruned accuracy.

    python benchmarks/lr_sweep.py --models vgg16 --regimes scratch pretrained \\
        --optimizers adamw --factors 0.5 1 2 --warmups 0.1 0.3 --head-inits random probe \\
        --prune-ratio 0 0.9 --seeds 0 1 2 --jobs 2

Every cell trains the embedded default (digits) at the quick preset's epochs with the
family's recipe (``models.RECIPES``) except what the sweep varies, unpruned and pruned to each
``--prune-ratio`` (AGP, weight granularity, the family's scope, criterion and rescaling), over the given
seeds. Both regimes get the same grid: the learning rates are each regime's default times the
same ``--factors`` (or the same ``--lrs``), and the same ``--warmups`` and ``--head-inits``.

Prints one row per cell: val accuracy (mean +- sample std over seeds: what CHOOSES), then test
accuracy (mean +- std and per seed: REPORTED, never used to choose). Then, per (model, regime,
optimizer), the recipe with the best val accuracy averaged over the pruning ratios, and the
recipes within 1 point of it on val: a search space's lr range is where that holds. Check a
chosen recipe on seeds it was not chosen on (``--seeds 3 4 5`` with ``--factors 1`` once the
defaults are moved).
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
    from hpo_prune.resolution import resolve_trial

    config = resolve_trial(TrialConfig(**overrides))
    started = time.perf_counter()
    result = run_trial(config)
    return {"cell": cell, "seed": config.train.seed, "test": result.final["test_acc"],
            "val": result.final["val_acc"], "seconds": time.perf_counter() - started}


def _space_pruning(model: str) -> dict:
    """The scope, criterion and rescaling every trial of the model's default search space
    prunes with."""
    from hpo_prune.search.studies import space

    fixed = space.load(None, model).fixed
    return {"scope": fixed.get("scope", "global"),
            "criterion": fixed.get("criterion", "magnitude"),
            "rescale": fixed.get("rescale", "none")}


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
    p.add_argument("--warmups", nargs="+", type=float, default=None,
                   help="warm-up fractions tried (default: the family's for the regime)")
    p.add_argument("--head-inits", nargs="+", default=None, choices=("random", "probe"),
                   help="head starts tried (default: the family's for the regime)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="default: the quick preset's")
    p.add_argument("--prune-ratio", nargs="+", type=float, default=[0.0, 0.8],
                   help="pruning ratios of every cell, 0 = unpruned (default: 0 0.8)")
    p.add_argument("--dense-only", action="store_true", help="same as --prune-ratio 0")
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
    ratios = [0.0] if args.dense_only else list(args.prune_ratio)
    jobs = []
    for model, regime, optimizer in itertools.product(args.models, args.regimes,
                                                      args.optimizers):
        pruning = _space_pruning(model)
        family = recipe(model, regime, optimizer)
        lrs = args.lrs or [float(f"{family['lr'] * f:.2g}") for f in args.factors]
        for lr, warmup, head in itertools.product(lrs, args.warmups or [family["warmup"]],
                                                  args.head_inits or [family["head_init"]]):
            for ratio in ratios:
                cell = (model, regime, optimizer, lr, warmup, head, ratio)
                for seed in args.seeds:
                    jobs.append((cell, {"model": model, "init": regime, "optimizer": optimizer,
                                        "lr": lr, "warmup": warmup, "head_init": head,
                                        "epochs": epochs, "seed": seed,
                                        "prune_ratio": ratio, "schedule": "agp",
                                        "granularity": "weight", **pruning, **extra},
                                 1 if args.jobs > 1 else (os.cpu_count() or 1)))
    if any(j[1]["init"] == "pretrained" for j in jobs):  # build the fractal checkpoints first
        from hpo_prune.resolution import resolve_trial
        from hpo_prune.sources import load_weights

        for model in args.models:
            load_weights(resolve_trial(TrialConfig(model=model, init="pretrained", **{
                k: v for k, v in extra.items() if k in ("image_size",)})))
    results: dict = {}
    logged = {}
    if args.log and os.path.exists(args.log):
        with open(args.log) as f:
            for line in f:
                done = json.loads(line)
                done["cell"] = tuple(done["cell"])
                if len(done["cell"]) == 5:  # logs from before the warm-up / head columns
                    continue
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
    print("| model | regime | optimizer | lr | warm-up | head | pruned to | val acc (chooses) "
          "| test acc (reported) | test per seed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cell in dict.fromkeys(j[0] for j in jobs):
        runs = sorted(results[cell], key=lambda r: r["seed"])
        model, regime, optimizer, lr, warmup, head, ratio = cell
        tests = [r["test"] for r in runs]
        print(f"| {model} | {regime} | {optimizer} | {lr:g} | {warmup:g} | {head} | "
              f"{ratio:.0%} | {_mean_std([r['val'] for r in runs])} | {_mean_std(tests)} | "
              f"{' '.join(f'{100 * t:.1f}' for t in tests)} |")
    print()
    print("Chosen on val (mean over the pruning ratios and seeds); test reported:")
    print("| model | regime | optimizer | chosen lr, warm-up, head | val | test | within 1 "
          "point on val |")
    print("|---|---|---|---|---|---|---|")
    for key, chosen, within in choose(results):
        print(f"| {' | '.join(key)} | {chosen[0]:g}, {chosen[1]:g}, {chosen[2]} | "
              f"{100 * chosen[3]:.1f} | {100 * chosen[4]:.1f} | "
              f"{'; '.join(f'{c[0]:g}/{c[1]:g}/{c[2]}' for c in within)} |")
    return 0


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} +- {100 * spread:.1f}"


def choose(results: dict) -> list[tuple]:
    """Per (model, regime, optimizer): the (lr, warm-up, head) with the best val accuracy
    averaged over its pruning ratios and seeds (test only reported), and every recipe within 1
    point of it on val."""
    recipes: dict = {}
    for cell, runs in results.items():
        model, regime, optimizer, lr, warmup, head, ratio = cell
        entry = recipes.setdefault((model, regime, optimizer), {}).setdefault(
            (lr, warmup, head), {"val": [], "test": []})
        entry["val"] += [r["val"] for r in runs]
        entry["test"] += [r["test"] for r in runs]
    out = []
    for key, options in recipes.items():
        scored = sorted(((statistics.mean(v["val"]), statistics.mean(v["test"]), option)
                         for option, v in options.items()), key=lambda x: -x[0])
        best = scored[0]
        within = [(*o, v, t) for v, t, o in scored if v >= best[0] - 0.01]
        out.append((key, (*best[2], best[0], best[1]), within))
    return out


def kv_given(name: str, pairs: list[str]) -> bool:
    return any(kv.split("=", 1)[0] == name for kv in pairs)


if __name__ == "__main__":
    sys.exit(main())
