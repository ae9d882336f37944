"""Training one model: the optimizer, the pruning schedule, an evaluation on val every epoch and
on test at the end, and the full training state after every epoch (to resume from). Used by
every trial and by the pre-training; the loop itself is ``loop.train_epoch``."""
from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
from torch import nn

from ..settings import PruneSettings, TrainSettings
from ..settings.trial import require_resolved
from ..data.augment import BatchTransform
from ..data.datasets import Data
from ..errors import UsageError
from ..objectives import TEST_CORRECT, pack_correct
from ..pruning import Pruner, unpruned_metrics
from .loop import batches, correctness, evaluate, train_epoch
from .recipe import make_optimizer

__all__ = ["Fitted", "Reporter", "TrialOutOfMemory", "fit", "out_of_memory_is_a_failure",
           "resolve_device", "transforms_for"]


class TrialOutOfMemory(UsageError):
    """An allocation failed: the model and batch do not fit in the memory the trial has."""


@contextlib.contextmanager
def out_of_memory_is_a_failure(batch_size: int):
    """A real allocation failure (CUDA or CPU allocator, or Python's MemoryError) becomes a
    TrialOutOfMemory: the same configuration would fail again, so it is recorded, not retried."""
    try:
        yield
    except (MemoryError, RuntimeError) as err:
        text = str(err)
        if not (isinstance(err, (MemoryError, torch.OutOfMemoryError))
                or "can't allocate memory" in text or "out of memory" in text.lower()):
            raise
        found = re.search(r"[Tt]ried to allocate [^.;(]+", text)
        what = found.group(0).strip() if found else type(err).__name__
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise TrialOutOfMemory(f"out of memory ({what}): lower --batch-size (it is "
                               f"{batch_size}) or --image-size, or give each trial more "
                               "memory") from None


class Reporter(Protocol):
    def __call__(self, metrics: dict, checkpoint: Callable[[], dict]) -> None: ...


@dataclass
class Fitted:
    epochs: list[dict]
    final: dict
    model: nn.Module = field(repr=False)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: no CUDA device is available; use --device cpu")
    return device


def transforms_for(data: Data, device: torch.device, augment: str,
                   precision: str) -> BatchTransform:
    """Normalisation, plus (``augment='crop'``) pad + random crop of training batches and
    horizontal flips where they keep the label; channels_last batches (faster convolutions on
    CPU and GPU alike) computed in ``precision``."""
    crop = augment == "crop"
    return BatchTransform(data.mean, data.std, data.flip and crop,
                          pad=max(data.image_size // 8, 1) if crop else 0, device=device,
                          channels_last=True, precision=precision)


def fit(model: nn.Module, train: TrainSettings, prune: PruneSettings, data: Data,
        reporter: Reporter | None = None, resume: dict | None = None,
        log: Callable[[str], None] | None = None, name: str = "the model",
        test_every_epoch: bool = False) -> Fitted:
    """Train ``model`` (built and initialised by the caller, named ``name``) on ``data`` with
    the recipe ``train`` and the pruning schedule ``prune`` (both resolved:
    ``hpo_prune.resolution``); evaluate on val every epoch and on test once at the end.
    ``test_every_epoch`` adds the masked model's ``test_acc`` to every epoch's metrics, for
    tables of training curves (``benchmarks/tabular.py``): the search never asks for it, so
    test accuracy cannot steer a trial or its scheduler."""
    require_resolved("fit", train)
    device = resolve_device(train.device)
    model.to(device, memory_format=torch.channels_last)
    transform = transforms_for(data, device, train.augment, train.precision)

    steps_per_epoch = len(batches(len(data.train), train.batch_size, torch.Generator()))
    total_steps = steps_per_epoch * train.epochs
    optimizer, scheduler = make_optimizer(model, train, total_steps)
    generator = torch.Generator().manual_seed(train.seed)
    pruner = None
    input_shape = (1, 3, data.image_size, data.image_size)
    if prune.prune_ratio > 0:
        pruner = Pruner(model, prune, total_steps, input_shape,
                        val_acc=lambda: evaluate(model, data.val, transform), seed=train.seed,
                        name=name)
    epochs: list[dict] = []
    start_epoch = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        generator.set_state(resume["generator"])
        if pruner is not None:
            pruner.load_state_dict(resume["pruner"])
        epochs, start_epoch = list(resume["epochs"]), resume["epoch"]

    def checkpoint() -> dict:
        return {"epoch": len(epochs), "epochs": list(epochs), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "generator": generator.get_state(),
                "pruner": pruner.state_dict() if pruner is not None else None}

    for epoch in range(start_epoch, train.epochs):
        lr = scheduler.get_last_lr()[0]
        stats = train_epoch(model, optimizer, scheduler, data.train, transform,
                            train.batch_size, generator, hooks=pruner, log=log, epoch=epoch,
                            label_smoothing=train.label_smoothing)
        started = time.perf_counter()
        val_acc = evaluate(model, data.val, transform)
        metrics = {"epoch": epoch + 1, "train_loss": stats["train_loss"], "val_acc": val_acc,
                   "lr": lr, "seconds": stats["seconds"] + time.perf_counter() - started,
                   "images_per_s": stats["images_per_s"]}
        metrics["sparsity"] = pruner.sparsity() if pruner is not None else 0.0
        if test_every_epoch:
            metrics["test_acc"] = evaluate(model, data.test, transform)
        epochs.append(metrics)
        if log is not None:
            log(_epoch_line(metrics, train.epochs))
        if reporter is not None:
            reporter(metrics, checkpoint)

    final = {"val_acc": epochs[-1]["val_acc"]}
    if pruner is not None:
        model = pruner.finish()
        final.update(pruner.final_metrics())
        final["val_acc"] = evaluate(model, data.val, transform)
    else:
        final.update(unpruned_metrics(model, input_shape))
    correct = correctness(model, data.test, transform)
    final["test_acc"] = correct.sum().item() / max(len(data.test), 1)
    final[TEST_CORRECT] = pack_correct(correct.numpy())
    final["remaining_fraction"] = final["params_remaining"] / final["params_total"]
    final["seconds"] = sum(e["seconds"] for e in epochs)
    return Fitted(epochs, final, model)


def _epoch_line(m: dict, epochs: int) -> str:
    line = (f"epoch {m['epoch']}/{epochs}  loss {m['train_loss']:.4f}  val_acc "
            f"{m['val_acc']:.4f}  lr {m['lr']:.2e}  {m['seconds']:.1f}s "
            f"({m['images_per_s']:.0f} img/s)")
    if m.get("sparsity"):
        line += f"  sparsity {m['sparsity']:.3f}"
    return line
