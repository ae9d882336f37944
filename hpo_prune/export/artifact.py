"""The export folder's content: MODEL_FILE (the compact checkpoint of a weight-pruned model,
the physically smaller module of a filter-pruned one: ``hpo_prune.load_model(DIR)`` reads it),
ONNX_FILE with ``--format onnx``, and EXPORT_FILE (model.json) describing them.

model.json: ``format`` (1), ``source`` (results folder, study, trial, its model_dir), ``picked``
(``--pick``: the rule, the reference and the selected configuration's seed means; null for
``--trial``), ``config`` (the trial's TrialConfig), ``accuracy`` (the trial's own val and test
accuracy as its search recorded them), ``counts`` (parameters and MACs per image, with the
unpruned model's), ``files`` (bytes of each file written, and of the unpruned model saved
dense), ``latency`` (CPU, batch 1 and 32, against the dense model: ``measure``), ``onnx`` (the
file and its check; null for ``--format pt``) and ``input`` (shape, and the per-channel mean and
std the trial normalised its images with, when the dataset loads here).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import torch

from .. import models
from ..files import EXPORT_FILE, MODEL_FILE, ONNX_FILE
from ..training.checkpoint import SavedModel, read_model, save_model
from . import measure, onnx_file
from .choose import Chosen

FORMAT = 1  # of model.json


def _value(x):
    return None if x is None or pd.isna(x) else float(x)


def _normalisation(saved: SavedModel) -> dict:
    """The mean and std the trial's images were normalised with (from the training images,
    as the trial computed them and stored them with its model), or why they are unknown."""
    if saved.normalisation is not None:
        return {"mean": list(saved.normalisation["mean"]),
                "std": list(saved.normalisation["std"])}
    from ..data import datasets  # a model file written before they were stored with it

    try:
        data = datasets.load(saved.config.replace(download=False).data)
    except Exception as err:  # the dataset's files are not on this machine
        return {"mean": None, "std": None,
                "note": f"dataset not loadable here ({' '.join(str(err).split())[:160]})"}
    return {"mean": list(data.mean), "std": list(data.std)}


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module, image_size: int) -> bool:
    x = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        return torch.equal(a(x), b(x))


def write(folder: Path, saved: SavedModel, chosen: Chosen, results_dir: Path, fmt: str,
          repeats: int, precision: str) -> dict:
    """Write the export into ``folder`` (empty); returns model.json's document."""
    size = saved.image_size
    save_model(folder, saved.model, saved.config, saved.num_classes, size,
               normalisation=saved.normalisation)
    exported = read_model(folder)  # what a user gets back from the file
    if not _same_outputs(saved.model, exported.model, size):
        raise RuntimeError("the written model file does not reproduce the trial's model")
    dense = models.build(saved.config.net.model, saved.num_classes, size,
                         saved.config.net.head).eval()
    with tempfile.TemporaryDirectory() as scratch:
        unpruned = save_model(Path(scratch), dense, saved.config, saved.num_classes, size,
                              compact=False).stat().st_size
    files = {MODEL_FILE: (folder / MODEL_FILE).stat().st_size}
    onnx = None
    if fmt == "onnx":
        onnx = onnx_file.export(exported.model, size, folder / ONNX_FILE)
        files[ONNX_FILE] = onnx["bytes"]
    row = chosen.row
    info = {
        "format": FORMAT,
        "source": {"results": str(results_dir), "study": chosen.study, "trial": chosen.number,
                   "model_dir": row["model_dir"], "checkpoint_format": saved.format},
        "picked": chosen.picked,
        "config": saved.config.to_dict(),
        # what chose the trial: val accuracy (--pick), or the user (--trial: None)
        "accuracy": {"val_acc": _value(row["val_acc"]), "test_acc": _value(row["test_acc"]),
                     "selected_on": "val_acc" if chosen.picked else None},
        "counts": measure.counts(exported.model, dense, size),
        "files": {**files, "model_format": exported.format, "unpruned_dense_bytes": unpruned,
                  "ratio_to_unpruned": round(files[MODEL_FILE] / unpruned, 4)},
        "latency": measure.latency(exported.model, dense, size, repeats, precision),
        "onnx": onnx,
        "input": {"shape": ["batch", 3, size, size], "dtype": "float32",
                  "normalisation": _normalisation(saved)},
    }
    (folder / EXPORT_FILE).write_text(json.dumps(info, indent=2))
    return info
