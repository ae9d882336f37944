"""Helpers shared by several test files (fixtures live in conftest.py).

Running real searches: ``search`` runs ``python -m hpo_prune.search`` to its end, ``start``
starts one in the background (optionally with a fault injected by tests/faults/
sitecustomize.py, or a memory limit), ``wait_for`` / ``results_logged`` watch it, ``studies``
opens its Optuna studies; ``TINY`` is the smallest search that trains for real.

A results directory written the way the search writes one (``make_search``): Optuna studies
in a temporary SQLite storage (opened by the search's opener), each trial recorded with
``study.add_trial(create_trial(...))`` carrying the user attributes the searcher sets, what
``--keep-models front`` removes by the search's own rule, search.json, and trials.csv exported
by the search's own ``trials_table``; ``T``, ``baseline``, ``baselines`` and
``confirmations`` describe its trials, ``standard_studies`` is the standard fixture.

An image folder in torchvision's ImageFolder layout (``write_folder``), for
``--dataset folder:PATH``.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from PIL import Image

from hpo_prune.results.files import SEARCH_FILE, STORAGE_FILE, TRIALS_FILE
from hpo_prune.objectives import DIRECTIONS, METRICS
from hpo_prune.results import trials_table
from hpo_prune.search.studies import keep
from hpo_prune.results.record import FRONT_REMOVES
from hpo_prune.results.storage import open_storage
from hpo_prune.search.studies.study import study_name
from hpo_prune.settings import TrialConfig

FAULTS = Path(__file__).resolve().parent / "faults"

# ------------------------------------------------------------------------ running searches
# --levels none: the continuous ratio (the level design: test_search_levels.py)
TINY = ["--model", "mobilenet_v2", "--train-subset", "64", "--batch-size", "32",
        "--image-size", "16", "--epochs", "1", "--levels", "none"]
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


def search(*args, cwd, check=True, timeout=400):
    proc = subprocess.run([sys.executable, "-m", "hpo_prune.search", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def studies(folder: Path) -> dict[str, optuna.Study]:
    url = f"sqlite:///{folder / 'optuna.db'}"
    return {name: optuna.load_study(study_name=name, storage=url)
            for name in optuna.get_all_study_names(url)}


def start(args, cwd, fault: dict | None = None, memory_limit: int | None = None
          ) -> subprocess.Popen:
    env = dict(ENV)
    if fault is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FAULTS),
                                                           env.get("PYTHONPATH")]))
        env["HPO_PRUNE_FAULT"] = json.dumps(fault)

    def limit():  # every process of the search (driver, Ray, workers) gets this much heap
        resource.setrlimit(resource.RLIMIT_DATA, (memory_limit, memory_limit))

    return subprocess.Popen([sys.executable, "-m", "hpo_prune.search", *args], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True,
                            preexec_fn=limit if memory_limit else None)


def wait_for(condition, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def results_logged(folder: Path) -> int:
    """Results the driver has handled in the search's first Tune run. Tune's driver appends a
    result to result.json before it registers that result's checkpoint, and handles results in
    order: with 3 lines logged, the checkpoint of epoch 2 is registered (a checkpoint folder on
    disk alone may not be yet, and a trial retried then starts from the one before)."""
    return sum(len(p.read_text().splitlines())
               for p in folder.glob("tune/run-1/*/result.json"))


# ------------------------------------------------- a results directory, written as the search does
COLUMNS = trials_table.COLUMNS
PARAMS_TOTAL = 1000
DRIVER = "testhost:1"
DISTRIBUTIONS = {"prune_ratio": FloatDistribution(0.0, 0.99),
                 "schedule": CategoricalDistribution(["agp", "one_shot", "iterative"]),
                 "lr": FloatDistribution(1e-3, 0.1, log=True)}


def T(val=None, rem=None, test=None, state="COMPLETE", baseline=False, lr=0.01,
      schedule="agp", fail_reason="", seed=0, confirms=None) -> dict:
    """One trial: val_acc, remaining_fraction, test_acc and its state; ``confirms``: the
    number of the trial it repeats with another ``seed`` (a confirmation run)."""
    return {"val": val, "rem": rem, "test": test, "state": state, "baseline": baseline,
            "lr": lr, "schedule": schedule, "fail_reason": fail_reason, "seed": seed,
            "confirms": confirms}


def baseline(val, test, state="COMPLETE", fail_reason="", seed=0):
    return T(val, 1.0 if state == "COMPLETE" else None, test, state=state, baseline=True,
             fail_reason=fail_reason, seed=seed)


def baselines(pairs, seed=0) -> list[dict]:
    """K unpruned baseline trials with seeds seed..seed+K-1: ``pairs`` = [(val, test), ...]."""
    return [baseline(val, test, seed=seed + k) for k, (val, test) in enumerate(pairs)]


def confirmations(number: int, spec: dict, runs) -> list[dict]:
    """Confirmation runs of trial ``number`` (settings ``spec``) with seeds 1, 2, ...:
    ``runs`` = [(val, test), ...]."""
    return [dict(spec, val=val, test=test, seed=spec["seed"] + k + 1, confirms=number)
            for k, (val, test) in enumerate(runs)]


def _measured(spec: dict, prune_ratio: float, number: int) -> dict:
    """What a finished trial's last report gives the searcher to store."""
    rem, remaining = spec["rem"], round(PARAMS_TOTAL * spec["rem"])
    return {"test_acc": spec["test"], "params_total": PARAMS_TOTAL,
            "params_remaining": remaining, "macs_dense": 5000, "macs_remaining": 5 * remaining,
            "achieved_sparsity": 1 - rem, "requested_sparsity": prune_ratio,
            "val_acc_before_pruning": 0.5, "seconds": 1.5, "wall_seconds": 2.0,
            "node": "127.0.0.1", "epochs_run": 3,
            "model_dir": f"tune/run-1/trial_{number}/checkpoint_000002"}


def _record(spec: dict, number: int, model: str, dataset: str, regime: str) -> dict:
    """The trial's params, values and user attrs as the searcher records them."""
    rem = spec["rem"]
    prune_ratio = 0.0 if spec["baseline"] else round(1 - rem, 6) if rem is not None else 0.5
    config = TrialConfig(model=model, dataset=dataset, init=regime, lr=spec["lr"],
                         source="fractal" if regime == "pretrained" else "",
                         prune_ratio=prune_ratio, schedule=spec["schedule"],
                         seed=spec.get("seed", 0)).to_dict()
    done = spec["state"] == "COMPLETE"
    attrs = {"config": config, "baseline": prune_ratio == 0, "driver": DRIVER}
    if spec.get("confirms") is not None:
        attrs["confirms"] = spec["confirms"]
    if done:
        attrs.update(_measured(spec, prune_ratio, number))
    if spec["state"] == "FAIL":
        attrs["fail_reason"] = spec["fail_reason"]
    params = {"prune_ratio": prune_ratio, "schedule": spec["schedule"], "lr": spec["lr"]}
    return {"params": params, "attrs": attrs, "values": [spec["val"], rem] if done else None}


def _study(storage, name: str, model: str, dataset: str, regime: str) -> optuna.Study:
    """A study as the search creates it: directions, metric names, study attributes."""
    study = optuna.create_study(study_name=study_name(name, model, dataset, regime),
                                storage=storage, directions=DIRECTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(METRICS)
    source = "fractal" if regime == "pretrained" else ""
    for key, value in {"model": model, "dataset": dataset, "regime": regime,
                       "source": source}.items():
        study.set_user_attr(key, value)
    return study


def make_search(root: Path, studies: dict[tuple[str, str, str], list[dict]],
                name: str = "demo") -> Path:
    """Write DIR = root/name like python -m hpo_prune.search does; returns DIR.

    ``studies`` maps (model, dataset, regime) to the trials, in trial-number order."""
    directory = Path(root) / name
    directory.mkdir(parents=True)
    url = f"sqlite:///{directory / STORAGE_FILE}"
    storage = open_storage(url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    made = []
    for (model, dataset, regime), trials in studies.items():
        study = _study(storage, name, model, dataset, regime)
        for number, spec in enumerate(trials):
            rec = _record(spec, number, model, dataset, regime)
            study.add_trial(create_trial(state=TrialState[spec["state"]], values=rec["values"],
                                         params=rec["params"], distributions=DISTRIBUTIONS,
                                         user_attrs=rec["attrs"]))
        # what --keep-models front removes, recorded as the search records it (every main
        # trial finished, no confirmation runs)
        removes = keep.front_removes(study.get_trials(), dataset, confirm=0, main_done=True)
        study.set_user_attr(FRONT_REMOVES, [t.number for t in removes])
        made.append(study)
    described = [{"name": s.study_name, **trials_table.study_info(s)} for s in made]
    (directory / SEARCH_FILE).write_text(json.dumps(
        {"name": name, "model": sorted({k[0] for k in studies})[0],
         "datasets": sorted({k[1] for k in studies}), "regimes": sorted({k[2] for k in studies}),
         "storage": url, "studies": described, "seed": 0}))
    trials_table.write(directory / TRIALS_FILE, made)
    return directory


# the standard fixture: one model, one dataset, both regimes; fine-tuned prunes much further
def standard_studies() -> dict:
    pretrained = [baseline(0.95, 0.94),
                  T(0.948, 0.20, 0.93), T(0.946, 0.12, 0.935), T(0.944, 0.10, 0.92),
                  T(0.943, 0.11, 0.93), T(0.936, 0.05, 0.92), T(0.80, 0.02, 0.79),
                  T(0.941, 0.09, 0.925, lr=0.05, schedule="one_shot"),
                  T(0.945, 0.13, 0.93, schedule="iterative"),
                  T(state="PRUNED"), T(state="FAIL", fail_reason="training diverged"),
                  T(state="RUNNING")]
    scratch = [baseline(0.93, 0.925),
               T(0.928, 0.60, 0.92), T(0.924, 0.55, 0.91), T(0.921, 0.50, 0.915),
               T(0.926, 0.58, 0.92), T(0.912, 0.40, 0.90), T(0.85, 0.30, 0.84),
               T(0.923, 0.52, 0.91, lr=0.05, schedule="one_shot"),
               T(0.927, 0.57, 0.92, schedule="iterative"), T(state="PRUNED")]
    return {("vgg16", "digits", "pretrained"): pretrained,
            ("vgg16", "digits", "scratch"): scratch}


# ------------------------------------------------------------- an image folder of your own
FOLDER_CLASSES = ("cat", "dog", "fox")


def write_folder(root: Path, per_class: int = 10, splits=("train",), seed: int = 0,
                 junk: bool = True) -> Path:
    """``per_class`` images per class and split: class k's images are filled with a grey
    level that grows with k (so a network can learn them), each a random size, every third
    one greyscale JPEG; plus a text file and a broken PNG among train/cat's images."""
    rng = np.random.default_rng(seed)
    for split in splits:
        for k, name in enumerate(FOLDER_CLASSES):
            where = root / split / name
            where.mkdir(parents=True)
            for i in range(per_class):
                h, w = rng.integers(20, 48, size=2)
                level = 40 + 80 * k
                pixels = np.clip(rng.normal(level, 10, size=(h, w, 3)), 0, 255).astype(np.uint8)
                if i % 3 == 2:
                    Image.fromarray(pixels[..., 0], "L").save(where / f"{i}.jpg")
                else:
                    Image.fromarray(pixels, "RGB").save(where / f"{i}.png")
    if junk:
        (root / "train" / "cat" / "notes.txt").write_text("not an image")
        (root / "train" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return root


def write_bad_folder(root: Path, kind: str) -> Path:
    """An image folder that is bad in one way: ``missing`` (nothing there), ``no_train`` (an
    empty folder), ``one_class``, ``empty_class`` (class fox holds a text file only) or
    ``other_classes`` (val/ names another class than train/)."""
    if kind == "missing":
        return root
    root.mkdir(parents=True)
    if kind == "one_class":
        (root / "train" / "cat").mkdir(parents=True)
    if kind == "empty_class":
        write_folder(root, per_class=3, junk=False)
        for image in (root / "train" / "fox").iterdir():
            image.unlink()
        (root / "train" / "fox" / "notes.txt").write_text("no images here")
    if kind == "other_classes":
        write_folder(root, per_class=3, splits=("train", "val"), junk=False)
        (root / "val" / "fox").rename(root / "val" / "wolf")
    return root


def replicated_search(folder: Path, seed: int = 0, replicates: int = 2, gain: float = 0.1,
                      **design) -> Path:
    """A finished replicated level search as ``python -m hpo_prune.search --levels 0.9
    --replicates R --trials 2 --baseline-seeds 1 --confirm 0 --seed SEED`` writes it
    (search.json and trials.csv): per replicate and regime one baseline (test 0.95) and one
    run at 0.9 (scratch 0.60, fine-tuned 0.60 + ``gain`` + 0.01 * replicate); ``design``
    overrides search.json keys."""
    from hpo_prune.levels import replicate_seed

    folder.mkdir(parents=True, exist_ok=True)
    name = folder.name
    record = {"name": name, "model": "vgg16", "datasets": ["digits"],
              "regimes": ["pretrained", "scratch"], "seed": seed, "sampler": "tpe",
              "trials": 2, "epochs": 4, "baseline_seeds": 1, "confirm": 0, "levels": [0.9],
              "replicates": replicates, "early_stop": "none", "preset": "quick",
              "settings": {"seed": seed, "precision": "bf16", "source": "",
                           "pretrain_seed": 0}, "studies": []}
    record.update(design)
    rows = []
    for r in range(1, replicates + 1):
        block = replicate_seed(seed, replicates, r)
        for regime in ("pretrained", "scratch"):
            study = f"{name}.r{r}.vgg16.digits.{regime}"
            record["studies"].append({"name": study, "model": "vgg16", "dataset": "digits",
                                      "regime": regime, "replicate": r, "seed": block})
            level = 0.60 + (gain + 0.01 * r) * (regime == "pretrained")
            for trial, (ratio, test) in enumerate(((0.0, 0.95), (0.9, level))):
                rows.append({"study": study, "trial": trial, "state": "COMPLETE",
                             "baseline": ratio == 0, "confirms": "",
                             "level": ratio if ratio else "", "model": "vgg16",
                             "dataset": "digits", "regime": regime, "source": "",
                             "replicate": r, "val_acc": test, "test_acc": test,
                             "remaining_fraction": 1 - ratio, "prune_ratio": ratio,
                             "seed": block + trial, "epochs": 4})
    (folder / "search.json").write_text(json.dumps(record))
    pd.DataFrame(rows).to_csv(folder / "trials.csv", index=False)
    return folder


def param_count(model) -> int:
    """Every parameter of ``model``, counted."""
    return sum(p.numel() for p in model.parameters())
