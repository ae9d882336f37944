"""Pruning benchmark (prints figures; not a test).

1. Training throughput of the real ``train_epoch`` with a Pruner's masks (re-applied after
   every step) vs dense, plus the cost of one re-application and of one recomputation (done
   every ``--prune-every`` steps, inside the pruning window only).
2. CPU inference latency of VGG16 and MobileNetV2 after 50% and 80% filter removal vs dense,
   next to the MAC reduction.

    python benchmarks/bench_pruning.py            # about 1.5 minutes on an idle 2-core CPU

Figures on a shared machine are noisy: every measurement is repeated, interleaved, and the
best (lowest time) is kept.
"""
from __future__ import annotations

import argparse
import time

import torch

from hpo_prune.data import datasets
from hpo_prune.resolution import resolve_data
from hpo_prune import models
from hpo_prune.settings import PruneSettings, TrialConfig
from hpo_prune.errors import cli_main
from hpo_prune.training.loop import train_epoch
from hpo_prune.pruning import Pruner, count
from hpo_prune.trial import transforms_for
from hpo_prune.resolution import precision_of, resolve_trial


def _best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def train_throughput(name: str, images: int, batch: int, rounds: int) -> dict:
    """img/s of train_epoch per variant (best of interleaved rounds), and the cost of one
    mask re-application and one mask recomputation (done every --prune-every steps)."""
    config = TrialConfig(model=name, train_subset=images, batch_size=batch)
    data = datasets.load(resolve_data(config.data))
    transform = transforms_for(data, torch.device("cpu"), "crop",
                               precision_of("auto", "cpu"))  # the trials' precision
    shape = (1, 3, data.image_size, data.image_size)
    variants = {"dense": None,
                "weight 0.8": config.replace(prune_ratio=0.8, granularity="weight",
                                             schedule="one_shot"),
                "filter 0.5": config.replace(prune_ratio=0.5, granularity="filter",
                                             schedule="one_shot")}
    runs, extra = {}, {}
    for key, pconfig in variants.items():
        torch.manual_seed(0)
        model = models.build(name, data.num_classes, data.image_size)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9,
                                    weight_decay=5e-4)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
        pruner = None
        if pconfig is not None:  # a one-step window: pruned at once, then fine-tuning
            pruner = Pruner(model, resolve_trial(pconfig).prune, 1, shape, name=name)
            pruner.before_step()
            extra[f"{key}: re-apply masks (every step)"] = _best_time(pruner.after_step, 5)
            extra[f"{key}: recompute masks (every k steps)"] = _best_time(
                lambda: pruner.prune_to(pconfig.prune.prune_ratio), 2)
        runs[key] = (model, optimizer, scheduler, pruner)
    rates = {key: 0.0 for key in variants}
    for r in range(rounds + 1):  # interleaved, so load changes hit all variants; r=0 warms up
        for key, (model, optimizer, scheduler, pruner) in runs.items():
            stats = train_epoch(model, optimizer, scheduler, data.train, transform, batch,
                                torch.Generator().manual_seed(r), hooks=pruner)
            if r:
                rates[key] = max(rates[key], stats["images_per_s"])
    return rates, extra


@torch.inference_mode()
def latency(model: torch.nn.Module, batch: int, size: int, repeats: int) -> float:
    model.eval()
    x = torch.randn(batch, 3, size, size)
    for _ in range(3):
        model(x)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - started)
    return min(times)


def inference(name: str, ratios, batches_: tuple, size: int, scope: str) -> list:
    shape = (1, 3, size, size)
    built = {}
    for ratio in (0.0, *ratios):
        torch.manual_seed(0)
        model = models.build(name, 10, size)
        if ratio:
            config = TrialConfig(model=name, prune_ratio=ratio, granularity="filter",
                                 scope=scope, schedule="one_shot")
            pruner = Pruner(model, resolve_trial(config).prune, 1, shape, name=name)
            pruner.before_step()
            model = pruner.finish()
        built[ratio] = model
    rows = []
    for batch in batches_:
        repeats = 20 if batch == 1 else 4
        timing = {ratio: float("inf") for ratio in built}
        for _ in range(3):  # interleaved rounds against load changes
            for ratio, model in built.items():
                timing[ratio] = min(timing[ratio], latency(model, batch, size, repeats))
        dense = count(built[0.0], shape)["macs_dense"]
        for ratio, model in built.items():
            counted = count(model, shape)
            reduction, speedup = dense / counted["macs_dense"], timing[0.0] / timing[ratio]
            rows.append((name, batch, ratio, counted["params_total"], counted["macs_dense"],
                         reduction, timing[ratio] * 1000, speedup, speedup / reduction))
    return rows


@cli_main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-images", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--scope", default="local", choices=("local", "global"))
    p.add_argument("--prune-every", type=int, default=PruneSettings.prune_every)
    args = p.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; best of "
          f"{args.rounds} interleaved rounds (shared CPU: figures are noisy)")
    print("\n== training throughput (train_epoch, 32 px digits, batch "
          f"{args.batch}, {args.train_images} images per epoch, SGD + momentum + wd)")
    for name in ("mobilenet_v2", "vgg16"):
        rates, extra = train_throughput(name, args.train_images, args.batch, args.rounds)
        for key, rate in rates.items():
            print(f"{name:13s} {key:12s} {rate:7.1f} img/s  {rate / rates['dense']:.3f}x dense")
        step = args.batch / rates["dense"]
        for key, seconds in extra.items():
            print(f"{name:13s}   {key:40s} {seconds * 1000:8.1f} ms "
                  f"({seconds / step:.1%} of a dense step)")
        for key in ("weight 0.8", "filter 0.5"):  # masks recomputed every k steps
            window_step = args.batch / rates[key] + \
                extra[f"{key}: recompute masks (every k steps)"] / args.prune_every
            print(f"{name:13s}   {key}: inside the window (--prune-every "
                  f"{args.prune_every}): {step / window_step:.3f}x dense")
    print(f"\n== CPU inference latency after filter removal ({args.scope} scope, 32 px)")
    print(f"{'model':13s} {'batch':>5s} {'ratio':>5s} {'params':>11s} {'MMACs':>8s} "
          f"{'MAC red.':>8s} {'ms':>8s} {'speedup':>8s} {'spd/MAC':>7s}")
    for name in ("vgg16", "mobilenet_v2"):
        for row in inference(name, (0.5, 0.8), (1, 32), 32, args.scope):
            n, batch, ratio, params, macs, red, ms, speedup, eff = row
            print(f"{n:13s} {batch:5d} {ratio:5.1f} {params:11,d} {macs / 1e6:8.1f} "
                  f"{red:7.2f}x {ms:8.2f} {speedup:7.2f}x {eff:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
