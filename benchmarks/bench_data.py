"""Images/s of the tensor data pipeline (uint8 tensors in memory, ``BatchTransform`` batches:
pad + random crop, horizontal flip, normalisation) vs torchvision's DataLoader + PIL transforms
(RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize) over the same images
(target: >= 3x).

    python benchmarks/bench_data.py [--batch-size 64] [--repeats 7] [--workers 0 2]
        [--device cpu] [--threads 0]

The images are the embedded digits training split (32 px RGB uint8). The DataLoader reads them
like torchvision's CIFAR10 does (one ``Image.fromarray`` per item), shuffled, with 0 and 2
worker processes (persistent, so worker start-up is not timed). Both sides hand a normalised
float batch and its labels to the trial's device. Each repeat times one epoch of every variant
in rotating order after a warm-up epoch; the figures are medians over repeats.
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from hpo_prune import TrialConfig
from hpo_prune.resolution import resolve_data
from hpo_prune.data import datasets
from hpo_prune.data.augment import BatchTransform, to_device
from hpo_prune.errors import ArgumentParser, check, cli_main
from hpo_prune.training.loop import batches
from hpo_prune.trial import resolve_device


class PILImages(Dataset):
    """(N, H, W, 3) uint8 images as PIL images through a transform, like torchvision CIFAR10."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def tensor_epoch(split: datasets.Split, transform: BatchTransform, batch_size: int,
                 generator: torch.Generator) -> int:
    seen = 0
    for idx in batches(len(split), batch_size, generator):
        transform(split.x[idx], generator)  # the normalised float batch, on the device
        y = to_device(split.y[idx], transform.device)
        seen += len(y)
    _sync(transform.device)
    return seen


def loader_epoch(loader: DataLoader, device: torch.device) -> int:
    seen = 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        seen += len(y)
    _sync(device)
    return seen


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@cli_main
def main(argv=None) -> int:
    from torchvision import transforms as T

    p = ArgumentParser(prog="python benchmarks/bench_data.py", description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                   help="DataLoader worker counts to compare (default: 0 2)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args(argv)
    check(args.repeats >= 1 and args.batch_size >= 2 and min(args.workers) >= 0,
          "need --repeats >= 1, --batch-size >= 2 and --workers >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = datasets.load(resolve_data(TrialConfig().data))
    split = data.train
    transform = BatchTransform(data.mean, data.std, flip=True, pad=4, device=device,
                               channels_last=True)
    pil = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                     T.Normalize(data.mean, data.std)])
    images = split.x.permute(0, 2, 3, 1).contiguous().numpy()  # HWC, as CIFAR10 stores them
    dataset = PILImages(images, split.y.numpy(), pil)

    variants = {"tensor": (lambda g=torch.Generator().manual_seed(0):
                           tensor_epoch(split, transform, args.batch_size, g))}
    for workers in args.workers:
        loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                            num_workers=workers, persistent_workers=workers > 0,
                            generator=torch.Generator().manual_seed(0),
                            pin_memory=device.type == "cuda")
        variants[f"dataloader_w{workers}"] = lambda l=loader: loader_epoch(l, device)
    names = list(variants)
    print(f"{len(split)} images of 32 px per epoch, batch {args.batch_size}, device {device}, "
          f"{torch.get_num_threads()} torch threads, {args.repeats} repeats (+1 warm-up)",
          flush=True)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(args.repeats + 1):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            started = time.perf_counter()
            seen = variants[name]()
            if repeat > 0:
                rates[name].append(seen / (time.perf_counter() - started))
        if repeat > 0:
            print(f"  repeat {repeat}: " + "  ".join(f"{n} {rates[n][-1]:.0f}" for n in names),
                  flush=True)
    median = {name: statistics.median(values) for name, values in rates.items()}
    print("median images/s: " + "  ".join(f"{n} {median[n]:.0f}" for n in names))
    best = max((n for n in names if n != "tensor"), key=median.get)
    print(f"tensor / best DataLoader ({best}): {median['tensor'] / median[best]:.1f}x "
          "(target >= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
