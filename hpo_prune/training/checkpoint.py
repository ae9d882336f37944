"""Saving a trained (possibly pruned) model and loading it back: ``load_model(run_dir)``.

MODEL_FILE holds ``{"format", "config", "num_classes", "image_size"}`` and the tensors:
format 1 (dense) under ``state_dict``; format 2 (compact, written when some tensor is mostly
zeros, i.e. for weight-pruned models) the tensors kept as they are under ``tensors`` and the
mostly-zero ones as bit mask + values under ``compact`` (see ``compact``). A dense or
filter-pruned model is written in format 1, as before; both formats load.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..settings import TrialConfig
from ..errors import UsageError
from ..files import METRICS_FILE, MODEL_FILE, atomic_write
from . import compact as compact_tensors

DENSE, COMPACT = 1, 2  # the formats


def save_model(run_dir: Path, model: nn.Module, config: TrialConfig, num_classes: int,
               image_size: int, compact: bool = True,
               normalisation: dict | None = None) -> Path:
    """Write MODEL_FILE in ``run_dir``: compact when that is smaller (``compact=False``:
    always dense, format 1). ``normalisation``: {"mean", "std"} of the inputs it expects."""
    blob = {"format": DENSE, "config": config.to_dict(), "num_classes": num_classes,
            "image_size": image_size}
    if normalisation is not None:
        blob["normalisation"] = {"mean": list(normalisation["mean"]),
                                 "std": list(normalisation["std"])}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    dense, sparse = compact_tensors.encode(state) if compact else (state, {})
    if sparse:
        blob.update(format=COMPACT, tensors=dense, compact=sparse)
    else:
        blob["state_dict"] = state
    path = Path(run_dir) / MODEL_FILE
    atomic_write(path, lambda tmp: torch.save(blob, tmp))
    return path


def write_metrics(run_dir: Path, metrics: dict) -> Path:
    path = Path(run_dir) / METRICS_FILE
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(metrics, indent=2)))
    return path


def is_finished(run_dir: Path) -> bool:
    """A finished run has a metrics.json with a "final" section and its model file."""
    path = Path(run_dir) / METRICS_FILE
    try:
        return "final" in json.loads(path.read_text()) and (Path(run_dir) / MODEL_FILE).exists()
    except (OSError, ValueError):
        return False


@dataclass
class SavedModel:
    """What MODEL_FILE holds: the rebuilt model (eval mode, CPU) and how it was made."""
    model: nn.Module
    config: TrialConfig
    num_classes: int
    image_size: int
    format: int
    normalisation: dict | None = None  # {"mean", "std"}; None in files written before it was


def read_model(run_dir: str | os.PathLike) -> SavedModel:
    """The model saved in ``run_dir`` with its config, classes and input size (see
    ``load_model``)."""
    from .. import models

    path = Path(run_dir) / MODEL_FILE
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        config = TrialConfig.from_dict(blob["config"], where=str(path))
        state = (compact_tensors.decode(blob["tensors"], blob["compact"])
                 if blob.get("format") == COMPACT else blob["state_dict"])
    except UsageError:
        raise
    except Exception as err:
        raise UsageError(f"cannot load a model from {path}: {type(err).__name__}: {err}; "
                         "pass the --out directory of a finished run") from None
    model = models.build(config.net.model, blob["num_classes"], blob["image_size"],
                         config.net.head)
    own = model.state_dict()
    if any(own[k].shape != v.shape for k, v in state.items() if k in own):
        from ..pruning.structured import reshape_like

        size = blob["image_size"]
        reshape_like(model, state, (1, 3, size, size))
    model.load_state_dict(state)
    return SavedModel(model.eval(), config, int(blob["num_classes"]), int(blob["image_size"]),
                      int(blob.get("format", DENSE)), blob.get("normalisation"))


def load_model(run_dir: str | os.PathLike) -> nn.Module:
    """Rebuild the model saved by a trial in ``run_dir`` (eval mode, on the CPU).

    Filter-pruned models come back with their smaller layers; weight-pruned ones with their
    zeros, so the parameter count (nonzero for weight pruning) equals the run's
    ``final.params_remaining``. Reads both formats (see the top).
    """
    return read_model(run_dir).model
