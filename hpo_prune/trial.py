"""One trial: data + model + init regime -> training (with the pruning schedule) -> metrics.

``run_trial(config, reporter)`` is the only training entry point. ``python -m hpo_prune.train``
calls it with a reporter that writes metrics.json; the Ray Tune trainable calls it with one
that calls ``tune.report``. A reporter is a callable ``reporter(metrics, checkpoint)`` called
after every epoch, where ``checkpoint()`` returns the full training state (pass it back as
``resume=`` to continue from that epoch).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from . import models, sources
from .config import TrialConfig
from .data import datasets
from .training.fit import (Reporter, TrialOutOfMemory, fit, out_of_memory_is_a_failure,
                           resolve_device, transforms_for)
from .training.probe import fit_head

__all__ = ["Reporter", "TrialOutOfMemory", "TrialResult", "build_model", "resolve_device",
           "run_trial", "transforms_for"]


@dataclass
class TrialResult:
    config: TrialConfig
    epochs: list[dict]
    final: dict
    init: dict
    num_classes: int
    image_size: int
    model: nn.Module = field(repr=False)

    def metrics(self) -> dict:
        """The metrics.json document."""
        return {"config": self.config.to_dict(), "init": self.init, "epochs": self.epochs,
                "final": self.final}


def build_model(config: TrialConfig, data: datasets.Data, weights: dict | None = None,
                probe: bool = True) -> tuple[nn.Module, dict]:
    """The seeded model with its init regime applied (``weights``: the source's tensors, if
    already loaded); its head is fitted by a linear probe of the initial features (pre-trained,
    or the seeded init's from scratch: both regimes get the same head options) when the
    resolved ``head_init`` says so (``probe=False`` skips it: a resumed trial loads its own
    head)."""
    torch.manual_seed(config.seed)
    model = models.build(config.model, data.num_classes, data.image_size, config.head)
    init = sources.initialise(model, config, weights)
    resolved = config.resolved()
    if resolved.head_init == "probe" and probe:
        device = resolve_device(config.device)
        model.to(device)
        init.update(fit_head(model, data.train, transforms_for(data, device, "none",
                                                               resolved.precision)))
    return model, init


def run_trial(config: TrialConfig, reporter: Reporter | None = None, resume: dict | None = None,
              data: datasets.Data | None = None,
              log: Callable[[str], None] | None = None,
              weights: dict | None = None) -> TrialResult:
    """Train one configuration; evaluate on val every epoch and on test once at the end.
    ``data`` and ``weights`` (the pretrained source's tensors) may come preloaded. Running out
    of memory raises TrialOutOfMemory (a UsageError)."""
    config = config.validate().resolved()
    with out_of_memory_is_a_failure(config):
        data = data if data is not None else datasets.load(config)
        model, init = build_model(config, data, weights, probe=resume is None)
        done = fit(model, config, data, reporter, resume, log)
    return TrialResult(config, done.epochs, done.final, init, data.num_classes,
                       data.image_size, done.model)
