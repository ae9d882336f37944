"""Resolving a trial's settings, once, at the boundary (the command line, and the search when
it samples a trial): the names checked against the registries where they live, every
placeholder filled in. Every record of the trial then holds the resolved config (metrics.json,
model.pt, model.json, trials.csv, the run hash).

    placeholder             filled in from
    optimizer / lr / warmup models.recipe: the model family's measured recipe for the regime
    / head_init 'auto'      (an unpruned run's from models.DENSE where it has one)
    criterion 'auto'        models.criterion: the family's for the granularity
    head 'auto'             models.head_of: the VGGs' by input size
    image_size / val_fraction 0, augment 'auto', source ''
                            data.datasets.defaults: the dataset's
    precision 'auto'        training.precision.choose: bf16 where the device computes it
                            natively and measures it faster, else fp32 (once per machine)
    pretrain_epochs -1      models.pretrain_epochs: the family's fractal pre-training length
    pretrain_lr 0           models.recipe: the family's from-scratch pruned-trial rate
    warmup 0 with lr_schedule onecycle
                            ONE_CYCLE_WARMUP: one-cycle needs a rising phase (its pct_start)

``resolve_data`` fills in the data part alone, for a layer that loads data before any trial is
resolved (the search loads each dataset once); the layers below take resolved settings
(``TrialConfig.require_resolved``) and never fill a placeholder themselves.
"""
from __future__ import annotations

import dataclasses

from . import library_models
from .data import datasets, folder
from .errors import check
from .models import MODELS, criterion, head_of, pretrain_epochs, recipe
from .pruning.layers import CRITERIA
from .pruning.schedules import SCHEDULES
from .settings import DataSettings, SourceSettings, TrialConfig
from .settings.fields import Flags, flag_of
from .training import precision as precisions
from .training.fit import resolve_device

__all__ = ["check_names", "resolve_trial", "resolve_data", "source_of", "precision_of"]

ONE_CYCLE_WARMUP = 0.3  # torch's own pct_start default

# record key -> (the registry's names, the extra name a placeholder allows)
REGISTRIES = {"dataset": (datasets.DATASETS, None), "model": (MODELS, None),
              "criterion": (CRITERIA, "auto"), "schedule": (SCHEDULES, None)}
OTHERS = {"dataset": ", or folder:PATH (your images)",
          "model": ", or timm:NAME / torchvision:NAME (any classifier of those libraries)"}


def check_names(config: TrialConfig, flags: Flags = flag_of) -> TrialConfig:
    """``config``, if the names it gives exist in their registries (else a UsageError that
    lists them and names the flag); an image folder (``folder:PATH``) checked and named by its
    absolute path, a timm / torchvision model checked against its library."""
    if folder.is_folder(config.data.dataset):
        folder.check_folder(config.data.dataset)
        config = config.replace(dataset=folder.canonical(config.data.dataset))
    if library_models.is_library(config.net.model):
        library_models.check(config.net.model)
    for key, (registry, extra) in REGISTRIES.items():
        value = config.get(key)
        if (key == "dataset" and folder.is_folder(value)
                or key == "model" and library_models.is_library(value)):
            continue
        allowed = ([extra] if extra else []) + list(registry)
        check(value in allowed, f"unknown {key} {value!r}: use one of "
              f"{', '.join(map(str, allowed))}{OTHERS.get(key, '')} (--{flags(key)})")
    return config


def source_of(weights: SourceSettings, dataset: str) -> str:
    """The pretrained regime's source ('' from scratch): the one given, else the dataset's."""
    if weights.init != "pretrained":
        return ""
    return weights.source or datasets.defaults(dataset).source


def precision_of(precision: str, device: str, log=None) -> str:
    """The compute precision a trial on ``device`` gets: the one given, or (``auto``) the one
    this machine does well (``training.precision.choose``)."""
    if precision != precisions.AUTO:
        return precision
    return precisions.choose(resolve_device(device), log=log)


def resolve_data(data: DataSettings) -> DataSettings:
    """``data`` with its input size and val fraction filled in from the dataset's defaults."""
    own = datasets.defaults(data.dataset)
    return dataclasses.replace(data, image_size=data.image_size or own.image_size,
                               val_fraction=data.val_fraction or own.val_fraction)


def resolve_trial(config: TrialConfig) -> TrialConfig:
    """``config`` checked, with every placeholder filled in (see the module's table).
    Resolving a resolved config changes nothing."""
    config = check_names(config.validate())
    data = datasets.defaults(config.data.dataset)
    train, net, prune = config.train, config.net, config.prune
    resolved = resolve_data(config.data)
    size = resolved.image_size
    done = config.replace(
        image_size=size, val_fraction=resolved.val_fraction,
        source=source_of(config.weights, config.data.dataset),
        augment=data.augment if train.augment == "auto" else train.augment,
        criterion=(criterion(net.model, prune.granularity) if prune.criterion == "auto"
                   else prune.criterion),
        head=head_of(net.model, net.head, size),
        precision=precision_of(train.precision, train.device),
        pretrain_epochs=pretrain_epochs(net.model, config.fractal.epochs),
        pretrain_lr=config.fractal.lr or recipe(net.model, "scratch")["lr"])
    if (train.optimizer == "auto" or train.lr <= 0 or train.warmup < 0
            or train.head_init == "auto"):
        family = recipe(net.model, config.weights.init,
                        None if train.optimizer == "auto" else train.optimizer,
                        dense=prune.prune_ratio == 0)
        done = done.replace(optimizer=family["optimizer"],
                            lr=train.lr if train.lr > 0 else family["lr"],
                            warmup=train.warmup if train.warmup >= 0 else family["warmup"],
                            head_init=(family["head_init"] if train.head_init == "auto"
                                       else train.head_init))
    if done.train.lr_schedule == "onecycle" and done.train.warmup == 0:
        done = done.replace(warmup=ONE_CYCLE_WARMUP)
    return done
