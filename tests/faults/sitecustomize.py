"""Fault injection for tests/test_faults.py. Python loads this file in every process of a
search (the driver and Ray's workers) when this folder is on PYTHONPATH; it does nothing unless
HPO_PRUNE_FAULT is set. Everything else stays real: the processes, Ray, Optuna, the files.

HPO_PRUNE_FAULT is JSON, one of:

``{"kill": POINT, "count": N}``: the N-th time the driver passes POINT it SIGKILLs its whole
process group (itself and the local Ray processes it started), like a machine that is lost:

- ``trial-start``: Optuna has asked a trial (RUNNING in the storage) that Tune has not started;
- ``mid-epoch``: a trial has reported its first epoch and trains its next one;
- ``reporting``: a finished trial's measurements are written to the storage, its state is not;
- ``csv-write``: half of trials.csv's new content is in the temporary file, not yet renamed.

``{"raise": MESSAGE, "prune_ratio": R}``: a trial with that prune ratio raises
``RuntimeError(MESSAGE)`` in its worker as it starts (a bug or an I/O error in a trial).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import signal
import sys
import time
from pathlib import Path

FAULT = json.loads(os.environ.get("HPO_PRUNE_FAULT") or "null")
_passed = {"count": 0}


def _at(point: str) -> None:
    if FAULT.get("kill") != point:
        return
    _passed["count"] += 1
    if _passed["count"] == FAULT.get("count", 1):
        sys.stdout.flush()
        os.killpg(os.getpgid(0), signal.SIGKILL)
        time.sleep(60)


def _searcher(module) -> None:
    cls = module.StudySearcher
    suggest, on_result, set_attrs = cls.suggest, cls.on_trial_result, cls._set_attrs

    def patched_suggest(self, trial_id):
        out = suggest(self, trial_id)
        if isinstance(out, dict):
            _at("trial-start")
        return out

    def patched_result(self, trial_id, result):
        on_result(self, trial_id, result)
        if result.get("epoch") == 1 and not result.get("final"):
            _at("mid-epoch")

    def patched_attrs(self, trial, result):
        set_attrs(self, trial, result)
        if result.get("final"):
            _at("reporting")

    cls.suggest, cls.on_trial_result, cls._set_attrs = (patched_suggest, patched_result,
                                                        patched_attrs)


def _trials_table(module) -> None:
    atomic_write = module.atomic_write

    def patched(path, write):
        def half_then_maybe_die(tmp):
            write(tmp)
            if FAULT.get("kill") == "csv-write" and _passed["count"] + 1 == FAULT["count"]:
                data = Path(tmp).read_bytes()
                Path(tmp).write_bytes(data[: len(data) // 2])
            _at("csv-write")
        atomic_write(path, half_then_maybe_die)

    module.atomic_write = patched


def _trial(module) -> None:
    run_trial = module.run_trial

    def patched(config, *args, **kwargs):
        if config.prune.prune_ratio == FAULT["prune_ratio"]:
            raise RuntimeError(FAULT["raise"])
        return run_trial(config, *args, **kwargs)

    module.run_trial = patched


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def __init__(self, patches: dict):
        self.patches = patches

    def find_spec(self, name, path, target=None):
        if name not in self.patches:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        exec_module, patch = spec.loader.exec_module, self.patches[name]

        def patched_exec(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = patched_exec
        return spec


if FAULT:
    if "kill" in FAULT:
        patches = {"hpo_prune.search.tuning.searcher": _searcher,
                   "hpo_prune.results.trials_table": _trials_table}
    else:
        patches = {"hpo_prune.trial": _trial}
    sys.meta_path.insert(0, _PatchOnImport(patches))
