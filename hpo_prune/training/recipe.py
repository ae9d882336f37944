"""The training recipe of a trial: its optimizer and its learning-rate schedule per optimizer
step (linear warm-up from 0, then cosine decay to 0 or a constant; or torch's one-cycle).

``train`` must be resolved (``hpo_prune.resolution``): no 'auto' values left."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..settings import TrainSettings

__all__ = ["make_optimizer", "lr_factor"]


def lr_factor(step: int, total: int, warmup: float, schedule: str) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based) of ``total``."""
    ramp = round(warmup * total)
    if step < ramp:
        return (step + 1) / (ramp + 1)
    if schedule == "constant":
        return 1.0
    progress = (step - ramp) / max(total - ramp, 1)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def make_optimizer(model: nn.Module, train: TrainSettings, total_steps: int):
    """(optimizer, scheduler) for ``total_steps`` optimizer steps; the scheduler steps once per
    optimizer step."""
    if train.optimizer == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=train.lr,
                                      betas=(train.momentum, 0.999),
                                      weight_decay=train.weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=train.lr, momentum=train.momentum,
                                    weight_decay=train.weight_decay)
    if train.lr_schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=train.lr, total_steps=max(total_steps, 2),
            pct_start=train.warmup, cycle_momentum=False)  # > 0: hpo_prune.resolution
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, total_steps, train.warmup,
                                              train.lr_schedule))
    return optimizer, scheduler
