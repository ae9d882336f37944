"""Saving a trained (possibly pruned) model and loading it back: ``load_model(run_dir)``."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from ..config import TrialConfig
from ..errors import UsageError
from ..files import METRICS_FILE, MODEL_FILE, atomic_write


def save_model(run_dir: Path, model: nn.Module, config: TrialConfig, num_classes: int,
               image_size: int) -> Path:
    blob = {"format": 1, "config": config.to_dict(), "num_classes": num_classes,
            "image_size": image_size,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
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


def load_model(run_dir: str | os.PathLike) -> nn.Module:
    """Rebuild the model saved by a trial in ``run_dir`` (eval mode, on the CPU).

    Filter-pruned models come back with their smaller layers; weight-pruned ones with their
    zeros, so the parameter count (nonzero for weight pruning) equals the run's
    ``final.params_remaining``.
    """
    from .. import models

    path = Path(run_dir) / MODEL_FILE
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        config = TrialConfig.from_dict(blob["config"], where=str(path))
        state = blob["state_dict"]
    except UsageError:
        raise
    except Exception as err:
        raise UsageError(f"cannot load a model from {path}: {type(err).__name__}: {err}; "
                         "pass the --out directory of a finished run") from None
    model = models.build(config.model, blob["num_classes"], blob["image_size"], config.head)
    own = model.state_dict()
    if any(own[k].shape != v.shape for k, v in state.items() if k in own):
        from ..pruning.structured import reshape_like

        size = blob["image_size"]
        reshape_like(model, state, (1, 3, size, size))
    model.load_state_dict(state)
    return model.eval()
