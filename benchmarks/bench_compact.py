"""Compact checkpoints: the model.pt of a weight-pruned VGG16 against the dense file (prints
figures; not a test).

For each sparsity, a seeded VGG16 (10 classes, 32 px: the compact head, 14.7M parameters) is
pruned by global weight magnitude (``magnitude_masks``), saved both ways with ``save_model``
(compact, and ``compact=False``: the dense format 1 every model had before), loaded back with
``load_model`` and checked to give the same outputs and nonzero count. Times are the median of
``--repeats`` saves / loads (a load includes building the module).

    python benchmarks/bench_compact.py [--model vgg16] [--sparsity 0.5 0.8 0.95] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from hpo_prune import models
from hpo_prune.settings import TrialConfig
from hpo_prune.files import MODEL_FILE
from hpo_prune.pruning import count, magnitude_masks
from hpo_prune.training.checkpoint import load_model, save_model

SIZE = 32


def _median_time(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def measure(name: str, sparsity: float, repeats: int, folder: Path) -> dict:
    torch.manual_seed(0)
    model = models.build(name, 10, SIZE).eval()
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, mask in magnitude_masks(model, sparsity).items():
            params[key].mul_(mask)
    config = TrialConfig(model=name, prune_ratio=sparsity)
    out = {}
    for kind, compact in (("dense", False), ("compact", True)):
        target = folder / kind
        target.mkdir(exist_ok=True)
        out[f"{kind}_save_s"], _ = _median_time(
            lambda: save_model(target, model, config, 10, SIZE, compact=compact), repeats)
        out[f"{kind}_bytes"] = (target / MODEL_FILE).stat().st_size
        out[f"{kind}_load_s"], loaded = _median_time(lambda: load_model(target), repeats)
        x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x)), kind
        shape = (1, 3, SIZE, SIZE)
        assert count(loaded, shape)["params_nonzero"] == count(model, shape)["params_nonzero"]
    counted = count(model, (1, 3, SIZE, SIZE))
    out["density"] = counted["params_nonzero"] / counted["params_total"]
    out["ratio"] = out["compact_bytes"] / out["dense_bytes"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vgg16")
    p.add_argument("--sparsity", type=float, nargs="+", default=[0.5, 0.8, 0.95])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(f"| {args.model} weight sparsity (prunable) | density (all params) | dense file | "
          "compact file | compact / dense | save dense / compact | load dense / compact |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for sparsity in args.sparsity:
            r = measure(args.model, sparsity, args.repeats, Path(folder))
            print(f"| {sparsity:.0%} | {r['density']:.1%} | {r['dense_bytes'] / 1e6:.1f} MB | "
                  f"{r['compact_bytes'] / 1e6:.1f} MB | {r['ratio']:.1%} | "
                  f"{r['dense_save_s']:.2f} / {r['compact_save_s']:.2f} s | "
                  f"{r['dense_load_s']:.2f} / {r['compact_load_s']:.2f} s |")


if __name__ == "__main__":
    main()
