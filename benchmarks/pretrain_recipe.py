"""How sure is the fractal pre-training? Corpus accuracy over models, precisions and seeds.

    python benchmarks/pretrain_recipe.py [--models vgg16 ...] [--precisions fp32 bf16]
        [--seeds 0 1 2] [--epochs E] [--lr LR] [--warmup W] [--per-class M]
        [--out results/pretrain_recipe.jsonl]

Each row is one real pre-training through ``sources.pretrain`` (the product's own corpus,
recipe and training loop) in a throwaway cache, with the recipe fields given here replacing
the defaults; it prints the held-out corpus accuracy per epoch, the seconds and the CPU.
The recipe is chosen on that held-out corpus split only (never on a target dataset).
Finished rows in --out are skipped, so an interrupted run resumes; the table at the end
covers every row of --out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path
from unittest import mock

import torch

from hpo_prune.settings import TrialConfig
from hpo_prune.sources import pretrain
from hpo_prune.training.precision import cpu_model


def recipe(model: str, precision: str, seed: int, args) -> dict:
    """The pre-training settings of one row: the defaults, less what the flags replace."""
    config = TrialConfig(model=model, precision=precision, pretrain_seed=seed,
                         **({"pretrain_epochs": args.epochs} if args.epochs else {}),
                         **({"pretrain_lr": args.lr} if args.lr else {}),
                         **({"fractal_per_class": args.per_class} if args.per_class else {}))
    from hpo_prune.resolution import resolve_trial

    s = pretrain.settings(resolve_trial(config))
    if args.warmup >= 0:
        s["training"]["warmup"] = args.warmup
    return s


def one(s: dict) -> dict:
    """One real pre-training of settings ``s`` in a throwaway cache, as a row."""
    with tempfile.TemporaryDirectory() as cache, \
            mock.patch.dict(os.environ, {pretrain.CACHE_ENV: cache}):
        pretrain.ensure(s, log=lambda line: print("   ", line, flush=True))
        _, record = pretrain.load(s)
    return {"model": s["model"], "precision": s["training"]["precision"], "seed": s["seed"],
            **s["training"], "per_class": s["per_class"], "corpus_acc": record["corpus_acc"],
            "by_epoch": record["by_epoch"], "seconds": record["seconds"], "cpu": cpu_model(),
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "machine": platform.machine()}


def key(row: dict) -> tuple:
    return (row["model"], row["precision"], row["seed"], row["epochs"], row["lr"],
            row["warmup"], row["per_class"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["vgg16", "vgg16_bn", "mobilenet_v1",
                                                   "mobilenet_v2"])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=0, help="0 = the default")
    p.add_argument("--lr", type=float, default=0.0, help="0 = the default")
    p.add_argument("--warmup", type=float, default=-1.0, help="-1 = the default")
    p.add_argument("--per-class", type=int, default=0, help="0 = the default")
    p.add_argument("--out", default="results/pretrain_recipe.jsonl")
    args = p.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    done = {key(r) for r in rows}
    for model in args.models:
        for precision in args.precisions:
            for seed in args.seeds:
                s = recipe(model, precision, seed, args)
                if key({"model": model, "precision": precision, "seed": seed,
                        **s["training"], "per_class": s["per_class"]}) in done:
                    continue
                print(f"{model} {precision} seed {seed}", flush=True)
                row = one(s)
                rows.append(row)
                with open(out, "a") as f:
                    f.write(json.dumps(row) + "\n")
    print("\n| model | precision | epochs | lr | warm-up | per class | seed | corpus acc "
          "(by epoch) | seconds | CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['precision']} | {r['epochs']} | {r['lr']:g} | "
              f"{r['warmup']:g} | {r['per_class']} | {r['seed']} | {r['corpus_acc']:.3f} "
              f"({' '.join(f'{a:.2f}' for a in r['by_epoch'])}) | {r['seconds']:.0f} | "
              f"{r['cpu']} |")
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault(key(r)[:2] + key(r)[3:], []).append(r["corpus_acc"])
    print("\nworst / mean corpus accuracy over seeds:")
    for k, accs in groups.items():
        print(f"  {k}: worst {min(accs):.3f}, mean {statistics.mean(accs):.3f} "
              f"({len(accs)} seeds)")


if __name__ == "__main__":
    main()
