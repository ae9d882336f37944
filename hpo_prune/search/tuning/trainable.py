"""The Ray Tune trainable: ``run_trial`` with a reporter that calls ``tune.report``.

Every epoch is reported with a checkpoint of the full training state, so a trial that Tune
retries (a worker died, a node was lost) resumes from its last epoch. The final report's
checkpoint is the trial's trained (pruned) model instead, as ``python -m hpo_prune.train``
writes it (model.pt, metrics.json: ``hpo_prune.load_model`` reads it); Tune keeps one
checkpoint per trial, so a finished trial keeps its model and no optimizer state. The trial's
dataset and the pretrained regime's weights come from the object store (put there once by the
driver), not from disk. A deterministic failure of the trial itself (a diverged loss, a setting
the model can't take) is reported as ``fail_reason`` and ends the trial without a retry;
anything else raises, and Tune retries it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from ...training.checkpoint import save_model, write_metrics
from ...errors import UsageError
from .messages import EPOCH, FINAL, Report, TuneTrial

STATE_FILE = "state.pt"
REPORT_FILE = "report.json"  # in the final checkpoint: the trial's final report


def trainable(spec: dict, data_refs: dict, weight_refs: dict) -> None:
    """One trial: ``spec`` is the TuneTrial the searcher handed Tune (``TuneTrial.to_tune``)."""
    import ray
    from ray import tune

    from ...trial import run_trial

    started = time.perf_counter()
    config = TuneTrial.of(spec).config
    threads = int(os.environ.get("OMP_NUM_THREADS") or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    dataset = config.data.dataset
    weights = (ray.get(weight_refs[dataset])
               if config.weights.init == "pretrained" and dataset in weight_refs else None)
    data = ray.get(data_refs[dataset])
    resume, finished = None, None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            if (Path(folder) / REPORT_FILE).exists():
                finished = json.loads((Path(folder) / REPORT_FILE).read_text())
            else:
                resume = torch.load(Path(folder) / STATE_FILE, map_location="cpu",
                                    weights_only=True)
    if finished is not None:  # retried after its final report: it had finished, say so again
        tune.report(finished, checkpoint=checkpoint)
        return

    def reporter(metrics: dict, state) -> None:
        report_with_checkpoint(dict(metrics), lambda folder: torch.save(state(),
                                                                        folder / STATE_FILE))

    try:
        result = run_trial(config, reporter, resume=resume, data=data, weights=weights)
    except UsageError as err:  # e.g. out of memory: the failed trial's tensors are freed
        reason = str(err)      # once this block ends, before the actor takes the next trial
    else:
        reason = None
    if reason is not None:
        release_memory()
        tune.report(Report.failure(reason).metrics)
        return
    node = ray.get_runtime_context().get_node_id()
    final = {**result.final, FINAL: True, EPOCH: len(result.epochs), "node": node,
             "wall_seconds": time.perf_counter() - started,
             "resumed_from_epoch": resume["epoch"] if resume else 0,
             "params_loaded": result.init["params_loaded"]}

    def write_model(folder: Path) -> None:
        save_model(folder, result.model, result.config, result.num_classes,
                   result.image_size, normalisation=result.data)
        write_metrics(folder, result.metrics())
        (folder / REPORT_FILE).write_text(json.dumps(final))

    report_with_checkpoint(final, write_model)


def report_with_checkpoint(metrics: dict, write: Callable[[Path], None]) -> None:
    """``tune.report`` with a checkpoint of what ``write`` puts in a fresh folder."""
    from ray import tune

    with tempfile.TemporaryDirectory() as folder:
        write(Path(folder))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def release_memory() -> None:
    """Hand freed memory back to the system: Tune reuses this process for the next trial, and
    the allocator would otherwise keep what a failed (e.g. out-of-memory) trial had taken."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    libc = ctypes.util.find_library("c")
    if libc:
        try:
            ctypes.CDLL(libc).malloc_trim(0)  # glibc only
        except AttributeError:
            pass
