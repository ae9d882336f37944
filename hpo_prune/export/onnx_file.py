"""``--format onnx``: the model as ONNX_FILE, made with ``torch.onnx.export`` and checked by
running it once in ONNX Runtime on the same input as the PyTorch model.

The file takes a batch of any size (input ``images``, N x 3 x S x S, normalised as the trial's
data were; output ``logits``, N x classes) and holds its weights inside (no external data
file). The check feeds both a seeded batch of 2 and requires every logit to agree within
ATOL + RTOL x the largest PyTorch logit. Needs the ``onnx`` extra (onnx, onnxruntime and
onnxscript, which torch's exporter uses): ``require()`` names it when something is missing.
"""
from __future__ import annotations

import contextlib
import importlib
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import UsageError

PACKAGES = ("onnx", "onnxruntime", "onnxscript")
EXTRA = "pip install -e '.[onnx]'"
ATOL, RTOL = 1e-4, 1e-3
CHECK_BATCH = 2


def require() -> None:
    """UsageError naming the extra to install when a package ONNX export needs is missing."""
    missing = []
    for name in PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UsageError(f"--format onnx needs the packages {', '.join(PACKAGES)} (missing: "
                         f"{', '.join(missing)}): install the onnx extra, {EXTRA}, or pass "
                         "--format pt")


def export(model: nn.Module, image_size: int, path: Path) -> dict:
    """Write ``model`` to ``path`` as ONNX and check it; returns what model.json records."""
    import onnxruntime

    model.eval()
    x = torch.randn(CHECK_BATCH, 3, image_size, image_size,
                    generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1)
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
        torch.onnx.export(model, (x,), str(path), dynamo=True, external_data=False,
                          dynamic_shapes=({0: batch},), input_names=["images"],
                          output_names=["logits"])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"images": x.numpy()})
    with torch.inference_mode():
        want = model(x).numpy()
    diff = float(np.abs(got - want).max())
    tolerance = ATOL + RTOL * float(np.abs(want).max())
    if not diff <= tolerance:
        raise UsageError(f"the ONNX file disagrees with the PyTorch model on the same input "
                         f"(largest difference {diff:.3g} > tolerance {tolerance:.3g}); "
                         "nothing was written: export with --format pt")
    return {"file": path.name, "bytes": path.stat().st_size, "input": "images",
            "output": "logits", "input_shape": ["batch", 3, image_size, image_size],
            "check": {"runtime": f"onnxruntime {onnxruntime.__version__}",
                      "batch": CHECK_BATCH, "max_abs_diff": diff, "tolerance": tolerance}}
