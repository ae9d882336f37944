"""Run one trial from the shell and write its metrics.json and model.pt.

    python -m hpo_prune.train --model vgg16 --dataset digits --init scratch --lr 0.01 \\
        --epochs 3 --seed 0 --out runs/demo
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .data import folder
from .files import METRICS_FILE, MODEL_FILE, slug
from .training.checkpoint import is_finished, save_model, write_metrics
from .resolution import resolve_trial
from .settings import TrialConfig
from .errors import ArgumentParser, UsageError, cli_main


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m hpo_prune.train",
                       description="Train (and prune) one configuration: evaluate on val every "
                       "epoch and on test at the end, write OUT/metrics.json and OUT/model.pt.")
    p.add_argument("--out", default=None, help="run directory (default: runs/MODEL_DATASET_"
                   "INIT_HASH, the hash of every setting that changes the result)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished run already in --out")
    TrialConfig.add_arguments(p)
    return p


@cli_main
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    # resolved once, here: the folder's hash, metrics.json and model.json all hold it
    config = resolve_trial(TrialConfig.from_args(args))
    name = f"{config.net.model}_{folder.label(config.data.dataset)}_{config.weights.init}"
    out = Path(args.out or f"runs/{slug(name)}_{config.run_hash()}")
    if is_finished(out):
        if not args.overwrite:
            raise UsageError(f"{out} already holds a finished run: pass --overwrite to replace "
                             "it, or choose another --out")
    existing = out
    while not existing.exists():  # fail now, not after training, on a path we can't write
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--out {out}: {existing} is a file; pass a directory path")
    if not os.access(existing, os.W_OK):
        raise UsageError(f"--out {out}: {existing} is not writable; choose another --out")
    for name in (METRICS_FILE, MODEL_FILE):  # a failed rerun must not look finished
        (out / name).unlink(missing_ok=True)

    from .trial import run_trial

    def log(line: str) -> None:
        print(line, flush=True)

    print(f"trial {config.net.model} on {config.data.dataset}, init {config.weights.init}"
          + (f" from {config.weights.source}" if config.weights.init == "pretrained" else "")
          + f", {config.train.epochs} epochs -> {out}", flush=True)
    result = run_trial(config, log=log)
    out.mkdir(parents=True, exist_ok=True)
    save_model(out, result.model, result.config, result.num_classes, result.image_size,
               normalisation=result.data)
    write_metrics(out, result.metrics())
    f = result.final
    print(f"val_acc {f['val_acc']:.4f}  test_acc {f['test_acc']:.4f}  params "
          f"{f['params_remaining']:,}/{f['params_total']:,} "
          f"({f['remaining_fraction']:.1%} remaining)  -> {out / METRICS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
