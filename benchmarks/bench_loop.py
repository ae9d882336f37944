"""Images/s of the trial's training loop (``hpo_prune.training.loop.train_epoch``) vs a plain PyTorch loop
on the same model, batch size and images (target: >= 0.95x).

    python benchmarks/bench_loop.py [--model vgg16] [--batch-size 64] [--images 128]
        [--repeats 9] [--threads 0] [--device cpu] [--precision auto]

The plain loop is the most favourable baseline: images pre-normalised to float once, then
``randperm`` batches -> forward -> backward -> SGD step -> LR-scheduler step, nothing else.
``train_epoch`` does more per batch: uint8 -> float normalisation, the NaN guard (a loss
read-back per step on the CPU, every 25 steps on CUDA) and, in the third column, pad + random
crop + horizontal flip.
Both loops use channels_last and the trials' precision (``--precision auto``: bf16 autocast
where the device computes it natively, else fp32), as trials do. Each repeat times one
epoch of every variant, in rotating order, after one warm-up epoch each; the figures are
medians over repeats. On a CPU shared with other work, wall-clock rates are noisy; images per
CPU-second of this process (also printed) are the steadier comparison there.
"""
from __future__ import annotations

import copy
import statistics
import sys
import time

import torch
from torch import nn

from hpo_prune import TrialConfig, models
from hpo_prune.resolution import resolve_data
from hpo_prune.data import datasets
from hpo_prune.data.augment import BatchTransform
from hpo_prune.errors import ArgumentParser, check, cli_main
from hpo_prune.training.loop import autocast, train_epoch
from hpo_prune.resolution import precision_of
from hpo_prune.training.precision import cpu_model
from hpo_prune.trial import resolve_device


def plain_epoch(model, optimizer, scheduler, x: torch.Tensor, y: torch.Tensor,
                batch_size: int, generator: torch.Generator, precision: str) -> None:
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    for idx in torch.randperm(len(y), generator=generator).split(batch_size):
        idx = idx.to(x.device)
        with autocast(x.device, precision):
            loss = loss_fn(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)


def _trainer(model: nn.Module):
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10_000)
    return model, optimizer, scheduler


@cli_main
def main(argv=None) -> int:
    p = ArgumentParser(prog="python benchmarks/bench_loop.py", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="vgg16", help="a model of the registry (default: vgg16)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--images", type=int, default=128, help="training images per epoch")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                   help="as the trials' --precision (default: auto)")
    args = p.parse_args(argv)
    check(args.repeats >= 1 and args.images >= args.batch_size >= 2,
          "need --repeats >= 1 and --images >= --batch-size >= 2")
    if args.threads:
        torch.set_num_threads(args.threads)
    data = datasets.load(resolve_data(TrialConfig(train_subset=args.images).data))  # digits, 32 px, offline
    split, device = data.train, resolve_device(args.device)
    precision = precision_of(args.precision, str(device))
    normalise = BatchTransform(data.mean, data.std, flip=False, pad=0, device=device,
                               channels_last=True, precision=precision)
    augment = BatchTransform(data.mean, data.std, flip=True, pad=4, device=device,
                             channels_last=True, precision=precision)
    x_float = normalise(split.x)  # the plain loop gets its images ready-made
    y_device = split.y.to(device)
    torch.manual_seed(0)
    base = models.build(args.model, data.num_classes, data.image_size).to(
        device, memory_format=torch.channels_last)

    variants = {}
    for name, transform in (("plain", None), ("train_epoch", normalise),
                            ("train_epoch+aug", augment)):
        model, optimizer, scheduler = _trainer(base)
        generator = torch.Generator().manual_seed(0)
        if transform is None:
            run = (lambda m=model, o=optimizer, s=scheduler, g=generator:
                   plain_epoch(m, o, s, x_float, y_device, args.batch_size, g, precision))
        else:
            run = (lambda m=model, o=optimizer, s=scheduler, g=generator, t=transform:
                   train_epoch(m, o, s, split, t, args.batch_size, g))
        variants[name] = run
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"cpu, {torch.get_num_threads()} threads")
    print(f"{args.model}, batch {args.batch_size}, {len(split)} images/epoch, {where}, "
          f"{precision}, CPU {cpu_model()}, "
          f"{args.repeats} repeats (+1 warm-up)", flush=True)
    names = list(variants)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(args.repeats + 1):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            started, started_cpu = time.perf_counter(), time.process_time()
            variants[name]()
            if repeat > 0:
                wall[name].append(len(split) / (time.perf_counter() - started))
                cpu[name].append(len(split) / (time.process_time() - started_cpu))
        if repeat > 0:
            print(f"  repeat {repeat}: " + "  ".join(f"{n} {wall[n][-1]:.1f}" for n in names),
                  flush=True)
    for label, rates in (("images/s (wall)", wall), ("images per CPU-second", cpu)):
        median = {name: statistics.median(values) for name, values in rates.items()}
        print(f"median {label}: " + "  ".join(f"{n} {median[n]:.1f}" for n in names))
        print(f"  train_epoch / plain {median['train_epoch'] / median['plain']:.3f}x, with "
              f"crop+flip {median['train_epoch+aug'] / median['plain']:.3f}x (target >= 0.95x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
