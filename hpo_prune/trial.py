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
from .settings import TrialConfig
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
    final: dict  # its val_images and test_images say what the accuracies were measured on
    init: dict
    num_classes: int
    image_size: int
    model: nn.Module = field(repr=False)
    data: dict = field(default_factory=dict)  # facts_of(the trial's data)

    def metrics(self) -> dict:
        """The metrics.json document."""
        return {"config": self.config.to_dict(), "init": self.init, "data": self.data,
                "epochs": self.epochs, "final": self.final}


def facts_of(data: datasets.Data) -> dict:
    """What a trial's data were, stored with its metrics and its model so that no reader
    loads the dataset again to learn them: classes, split sizes, input size, and the mean and
    std its images were normalised with (a deployed model needs them)."""
    return {"classes": data.num_classes, "train_images": len(data.train),
            "val_images": len(data.val), "test_images": len(data.test),
            "image_size": data.image_size, "mean": list(data.mean), "std": list(data.std)}


def build_model(config: TrialConfig, data: datasets.Data, weights: dict | None = None,
                probe: bool = True) -> tuple[nn.Module, dict]:
    """The seeded model with its init regime applied (``weights``: the source's tensors, if
    already loaded); its head is fitted by a linear probe of the initial features (pre-trained,
    or the seeded init's from scratch: both regimes get the same head options) when the
    resolved ``head_init`` says so (``probe=False`` skips it: a resumed trial loads its own
    head). ``config`` is resolved (``hpo_prune.resolution``)."""
    config.require_resolved("build_model")
    train = config.train
    torch.manual_seed(train.seed)
    model = models.build(config.net.model, data.num_classes, data.image_size, config.net.head)
    init = sources.initialise(model, config, weights)
    if train.head_init == "probe" and probe:
        device = resolve_device(train.device)
        model.to(device)
        init.update(fit_head(model, data.train, transforms_for(data, device, "none",
                                                               train.precision)))
    return model, init


def run_trial(config: TrialConfig, reporter: Reporter | None = None, resume: dict | None = None,
              data: datasets.Data | None = None,
              log: Callable[[str], None] | None = None,
              weights: dict | None = None, test_every_epoch: bool = False) -> TrialResult:
    """Train one configuration; evaluate on val every epoch and on test once at the end.
    ``data`` and ``weights`` (the pretrained source's tensors) may come preloaded. Running out
    of memory raises TrialOutOfMemory (a UsageError). ``config`` is resolved
    (``hpo_prune.resolution.resolve_trial``, run once by the command line or the search that
    made it): every record of the trial holds it as it is, and a placeholder left in it is a
    ValueError, never a guess. ``test_every_epoch``: see ``training.fit.fit``."""
    config.require_resolved("run_trial")
    with out_of_memory_is_a_failure(config.train.batch_size):
        data = data if data is not None else datasets.load(config.data)
        model, init = build_model(config, data, weights, probe=resume is None)
        done = fit(model, config.train, config.prune, data, reporter, resume, log,
                   name=config.net.model, test_every_epoch=test_every_epoch)
    facts = facts_of(data)
    final = {**done.final, "val_images": facts["val_images"],
             "test_images": facts["test_images"], "classes": facts["classes"]}
    return TrialResult(config, done.epochs, final, init, data.num_classes, data.image_size,
                       done.model, facts)
