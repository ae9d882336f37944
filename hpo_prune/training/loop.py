"""The training loop: one epoch of SGD over in-memory tensors, and evaluation. Used by every
trial, the pre-training and the benchmarks; there is no second copy."""
from __future__ import annotations

import contextlib
import math
import time
from typing import Callable

import torch
from torch import nn

from ..data.augment import BatchTransform, to_device
from ..data.datasets import Split
from ..errors import UsageError


SYNC_EVERY = 25  # on CUDA, read the loss back (a device sync) only every this many steps


class TrialDiverged(UsageError):
    """The loss became NaN or infinite (usually a learning rate that is too high)."""


def autocast(device: torch.device, precision: str):
    """bf16 autocast (matmuls and convolutions in bfloat16, weights and the loss in float32)
    on CUDA and on CPUs (oneDNN; ~1.8x the float32 speed on an AVX512-BF16 CPU, ~15x slower
    where bf16 is emulated: ``training.precision``), or none ('fp32')."""
    if precision == "bf16" and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def batches(n: int, batch_size: int, generator: torch.Generator | None):
    """Index batches over n items; shuffled for training when a generator is given, and then a
    trailing batch of one image is dropped (BatchNorm cannot train on it)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    chunks = list(order.split(batch_size))
    if generator is not None and len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks.pop()
    return chunks


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, split: Split,
                transform: BatchTransform, batch_size: int, generator: torch.Generator,
                hooks=None, log: Callable[[str], None] | None = None, epoch: int = 0,
                label_smoothing: float = 0.0) -> dict:
    """One epoch. ``hooks`` (e.g. the pruner) gets ``before_step()`` and ``after_step()``
    around every optimizer step. Returns mean train loss, seconds and images seen."""
    model.train()
    model.to(memory_format=transform.memory_format)
    device = transform.device
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    # the loss is summed on the device; reading it back every step would stall a GPU's queue
    total = torch.zeros((), dtype=torch.float64, device=device)
    seen, started, last_log = 0, time.perf_counter(), time.perf_counter()
    chunks = batches(len(split), batch_size, generator)
    for i, idx in enumerate(chunks):
        if hooks is not None:
            hooks.before_step()
        x = transform(split.x[idx], generator)
        y = to_device(split.y[idx], device)
        with autocast(device, transform.precision):
            loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if hooks is not None:
            hooks.after_step()
        total += loss.detach().double() * len(idx)
        seen += len(idx)
        if device.type != "cuda" or (i + 1) % SYNC_EVERY == 0 or i + 1 == len(chunks):
            value = total.item() / seen  # non-finite once any batch's loss was
            if not math.isfinite(value):
                raise TrialDiverged(f"training diverged: loss {value} at epoch {epoch + 1}, "
                                    f"batch {i + 1}; lower --lr")
        if log is not None and time.perf_counter() - last_log > 15:
            last_log = time.perf_counter()
            log(f"  epoch {epoch + 1}: batch {i + 1}/{len(chunks)}, loss "
                f"{total.item() / seen:.4f}")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    return {"train_loss": total.item() / max(seen, 1), "seconds": seconds,
            "images_per_s": seen / seconds if seconds > 0 else 0.0}


@torch.no_grad()
def correctness(model: nn.Module, split: Split, transform: BatchTransform,
                batch_size: int = 256) -> torch.Tensor:
    """Per image of ``split``, in its order: True where the top-1 class is its label (on the
    CPU)."""
    model.eval()
    model.to(memory_format=transform.memory_format)  # no-op when it is in it already
    device = transform.device
    out = []
    for idx in batches(len(split), batch_size, None):
        with autocast(device, transform.precision):
            logits = model(transform(split.x[idx]))
        out.append(logits.argmax(1) == to_device(split.y[idx], device))
    return torch.cat(out).cpu() if out else torch.zeros(0, dtype=torch.bool)


def evaluate(model: nn.Module, split: Split, transform: BatchTransform,
             batch_size: int = 256) -> float:
    """Top-1 accuracy in [0, 1]."""
    return correctness(model, split, transform, batch_size).sum().item() / max(len(split), 1)
