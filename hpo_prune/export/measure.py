"""What an exported model costs: parameters and MACs (``pruning.count``), file sizes, and CPU
latency next to the unpruned (dense) model of the same architecture.

Latency: forward passes in eval mode under ``torch.inference_mode`` on the CPU with torch's
current thread count, at each batch size, in the given precision (bf16 autocast or fp32:
``--precision``, by default what this CPU does well, ``training.precision``); the model and the dense one alternate (which goes
first rotates every round), after one warm-up pass each, and the median of ``repeats`` rounds
is reported in milliseconds. The dense model is freshly built (its weights' values do not
change the work done by dense kernels). A weight-pruned model keeps its zeros in dense
tensors, so PyTorch's dense kernels do the same work: expect no speed-up from weight pruning
here, only from filter pruning (smaller layers).
"""
from __future__ import annotations

import os
import statistics
import time

import torch
from torch import nn

from ..pruning import count
from ..training.precision import cpu_model

BATCHES = (1, 32)


def counts(model: nn.Module, dense: nn.Module, image_size: int) -> dict:
    """Parameters (total, nonzero) and MACs per image of ``model``, and of ``dense``."""
    shape = (1, 3, image_size, image_size)
    mine, full = count(model, shape), count(dense, shape)
    return {"params_total": mine["params_total"], "params_nonzero": mine["params_nonzero"],
            "macs": mine["macs"], "macs_dense_kernels": mine["macs_dense"],
            "unpruned_params": full["params_total"], "unpruned_macs": full["macs_dense"],
            "remaining_fraction": mine["params_nonzero"] / full["params_total"]}


def _time(model: nn.Module, x: torch.Tensor, precision: str) -> float:
    started = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        model(x)
    return time.perf_counter() - started


@torch.inference_mode()
def latency(model: nn.Module, dense: nn.Module, image_size: int, repeats: int,
            precision: str, batches=BATCHES) -> dict:
    """``{"batch_B": {"model_ms", "dense_ms", "speedup"}}`` for each batch size, plus how it
    was measured."""
    model.eval()
    dense.eval()
    generator = torch.Generator().manual_seed(0)
    out = {}
    for batch in batches:
        x = torch.randn(batch, 3, image_size, image_size, generator=generator)
        pair = {"model": model, "dense": dense}
        times = {name: [] for name in pair}
        for net in pair.values():  # warm-up: allocations, lazy initialisation
            _time(net, x, precision)
        for i in range(repeats):
            order = list(pair) if i % 2 == 0 else list(reversed(pair))
            for name in order:
                times[name].append(_time(pair[name], x, precision))
        model_ms = 1000 * statistics.median(times["model"])
        dense_ms = 1000 * statistics.median(times["dense"])
        out[f"batch_{batch}"] = {"model_ms": round(model_ms, 3), "dense_ms": round(dense_ms, 3),
                                 "speedup": round(dense_ms / model_ms, 3)}
    out["how"] = {"device": "cpu", "precision": precision,
                  "threads": torch.get_num_threads(), "repeats": repeats,
                  "statistic": "median of alternating rounds after one warm-up pass",
                  "cpu": cpu_model(),
                  "cpu_count": os.cpu_count(), "torch": torch.__version__}
    return out
