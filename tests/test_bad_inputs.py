"""The bad-input corpus: every command, fed something wrong, answers with exit status 2 and one
line on stderr that names the problem and the fix, prints no traceback, runs no code smuggled
into a file, and leaves nothing behind that could later pass for a result.

Most cases call the command's ``main(argv)`` in this process (``cli_main`` turns a UsageError
into SystemExit(2)); a few run the real ``python -m ...`` entry points. Every case runs in an
empty working directory with the caches, the data root, the torch hub and $HOME inside it, and
that whole tree is compared before and after: no file or folder may appear, vanish or change.

A case is (command, argv, expected substrings of the error line, setup). The setup writes the
bad files and returns values for the ``{placeholders}`` of argv; ``{tmp}`` is the directory.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from conftest import write_caltech101, write_cifar
from hpo_prune.results.files import LOCK_FILE
from hpo_prune.training import precision

CUDA = torch.cuda.is_available()
DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: a download attempt fails at once
MARKER = "pwned"  # the file a smuggled payload would create in the working directory

TRAIN = ["--model", "mobilenet_v2", "--dataset", "digits", "--train-subset", "64",
         "--epochs", "1", "--batch-size", "16", "--image-size", "16", "--device", "cpu"]
PRETRAIN = ["--model", "mobilenet_v2", "--image-size", "16", "--classes", "3",
            "--per-class", "8", "--epochs", "1", "--device", "cpu"]
SEARCH = ["--model", "mobilenet_v2", "--train-subset", "64", "--batch-size", "32",
          "--image-size", "16", "--epochs", "1", "--regimes", "scratch", "--trials", "1",
          "--levels", "none", "--name", "s"]


@dataclass
class Case:
    command: str  # train, pretrain, search or analysis
    argv: list[str]
    expect: tuple[str, ...]  # substrings of the error line: the problem and the fix
    setup: Callable[[Path, pytest.MonkeyPatch], dict] | None = None
    real: bool = False  # run `python -m ...` in a subprocess instead of main(argv)
    base: bool = True  # prepend the command's small default arguments


# ------------------------------------------------------------------------------ bad files
def _payload(tmp: Path) -> str:
    return f"touch {tmp / MARKER}"


class _RunsCode:
    """Pickles as a call of os.system: loading it without weights_only would run the shell."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def random_bytes(tmp, mp) -> dict:
    path = tmp / "in" / "random.pt"
    path.parent.mkdir()
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return {"file": str(path)}


def code_pickle(tmp, mp) -> dict:
    path = tmp / "in" / "code.pt"
    path.parent.mkdir()
    torch.save({"state_dict": {"features.0.0.weight": _RunsCode(_payload(tmp))}}, path)
    return {"file": str(path)}


def tensorless(tmp, mp) -> dict:
    path = tmp / "in" / "tensorless.pt"
    path.parent.mkdir()
    torch.save({"epoch": 3, "note": "no weights"}, path)
    return {"file": str(path)}


def other_architecture(tmp, mp) -> dict:
    """A real checkpoint of vgg16_bn, offered to vgg16: a few names and shapes coincide."""
    from hpo_prune import models

    path = tmp / "in" / "vgg16_bn.pt"
    path.parent.mkdir()
    torch.manual_seed(0)
    torch.save(models.build("vgg16_bn", 10, 32).state_dict(), path)
    return {"file": str(path)}


def unrelated_architecture(tmp, mp) -> dict:
    from hpo_prune import models

    path = tmp / "in" / "mobilenet_v2.pt"
    path.parent.mkdir()
    torch.manual_seed(0)
    torch.save(models.build("mobilenet_v2", 10, 16).state_dict(), path)
    return {"file": str(path)}


def space(text: str) -> Callable:
    def write(tmp, mp) -> dict:
        path = tmp / "in" / "space.yaml"
        path.parent.mkdir()
        path.write_text(text.format(payload=_payload(tmp)))
        return {"space": str(path)}

    return write


def binary_space(tmp, mp) -> dict:
    path = tmp / "in" / "space.yaml"
    path.parent.mkdir()
    path.write_bytes(b"\xff\xfe\x00params" + np.random.default_rng(1).bytes(256))
    return {"space": str(path)}


def cifar_truncated(tmp, mp) -> dict:
    write_cifar(tmp / "data", 10, mp)
    batch = tmp / "data" / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:1000])
    return {}


def caltech(damage: str) -> Callable:
    def write(tmp, mp) -> dict:
        write_caltech101(tmp / "data", per_category=6)
        top = tmp / "data" / "caltech101" / "101_ObjectCategories"
        if damage == "background":
            for f in (top / "BACKGROUND_Google").iterdir():
                f.unlink()
            (top / "BACKGROUND_Google").rmdir()
        elif damage == "gap":  # image_0003.jpg missing: torchvision asks for image_0006.jpg
            (top / "airplanes" / "image_0003.jpg").unlink()
        else:  # a JPEG cut short by a broken copy
            (top / "chair" / "image_0002.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
        return {}

    return write


def _pretrain_settings() -> dict:
    from hpo_prune.sources import pretrain
    from hpo_prune.settings import TrialConfig

    from hpo_prune.resolution import resolve_trial

    return pretrain.settings(resolve_trial(TrialConfig(
        model="mobilenet_v2", image_size=16, fractal_classes=3, fractal_per_class=8,
        pretrain_epochs=1, precision=precision.choose(torch.device("cpu")))))


def pretrain_cache(content: str) -> Callable:
    """The cached checkpoint of PRETRAIN's settings (and of the trial's --source fractal),
    with a good record but a bad .pt file."""
    def write(tmp, mp) -> dict:
        from hpo_prune.sources import pretrain

        s = _pretrain_settings()
        pt, meta = pretrain.paths(s)  # $HPO_PRUNE_CACHE is tmp/cache
        pt.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"settings": s, "corpus_acc": 0.5}))
        if content == "random":
            pt.write_bytes(np.random.default_rng(2).bytes(2048))
        elif content == "code":
            torch.save({"format": 1, "settings": s, "head": [],
                        "state_dict": {"x": _RunsCode(_payload(tmp))}}, pt)
        else:  # a good checkpoint, of other settings
            torch.save({"format": 1, "settings": {**s, "epochs": 9}, "head": [],
                        "state_dict": {"x": torch.zeros(1)}}, pt)
        return {}

    return write


def cache_is_a_file(tmp, mp) -> dict:
    (tmp / "in").mkdir()
    (tmp / "in" / "afile").write_text("a file, not a folder")
    mp.setenv("HPO_PRUNE_CACHE", str(tmp / "in" / "afile" / "cache"))
    return {}


def a_file(tmp, mp) -> dict:
    (tmp / "in").mkdir()
    (tmp / "in" / "afile").write_text("a file, not a folder")
    return {"file": str(tmp / "in" / "afile")}


def search_dir(record=None, db: bytes | None = None, trials: str | None = None) -> Callable:
    """results/s (the SEARCH's folder) holding a search.json (text, or JSON of `record`), and
    an optuna.db and a trials.csv if given."""
    def write(tmp, mp) -> dict:
        folder = tmp / "results" / "s"
        folder.mkdir(parents=True)
        text = record if isinstance(record, str) else json.dumps(record)
        (folder / "search.json").write_text(text)
        if db is not None:
            (folder / "optuna.db").write_bytes(db)
        if trials is not None:
            (folder / "trials.csv").write_text(trials)
        return {"dir": str(folder)}

    return write


def empty_dir(tmp, mp) -> dict:
    (tmp / "in").mkdir()
    return {"dir": str(tmp / "in")}


def results_with(**files: bytes | str) -> Callable:
    def write(tmp, mp) -> dict:
        folder = tmp / "in"
        folder.mkdir()
        for name, content in files.items():
            path = folder / name.replace("_", ".")
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        return {"dir": str(folder)}

    return write


def two_searches(seed: int = 1, **design) -> Callable:
    """Two replicated level searches, the second run with ``seed`` and ``design``."""
    def write(tmp, mp) -> dict:
        from helpers import replicated_search

        a = replicated_search(tmp / "in" / "a", 0)
        b = replicated_search(tmp / "in" / "b", seed, **design)
        return {"dir": str(a), "dir2": str(b)}

    return write


def good_search(tmp, mp) -> dict:
    from helpers import make_search, standard_studies

    folder = make_search(tmp / "in", standard_studies())
    (tmp / "in" / "afile").write_text("a file, not a folder")
    return {"dir": str(folder), "file": str(tmp / "in" / "afile")}


def compact_checkpoint(tmp, mp) -> dict:
    """A weight-pruned run's model.pt (compact format: no plain state dict inside)."""
    from hpo_prune import models
    from hpo_prune.settings import TrialConfig
    from hpo_prune.pruning import magnitude_masks
    from hpo_prune.training.checkpoint import save_model

    (tmp / "in").mkdir()
    torch.manual_seed(0)
    model = models.build("mobilenet_v2", 10, 16)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in magnitude_masks(model, 0.8).items():
            params[name].mul_(mask)
    save_model(tmp / "in", model, TrialConfig(model="mobilenet_v2"), 10, 16)
    return {"file": str(tmp / "in" / "model.pt")}


def search_without_baseline(tmp, mp) -> dict:
    from helpers import T, make_search

    folder = make_search(tmp / "in", {("vgg16", "digits", "scratch"): [T(0.9, 0.5, 0.89),
                                                                       T(0.8, 0.3, 0.79)]})
    return {"dir": str(folder)}


def export_folder(*names: str) -> Callable:
    """good_search, and an --out folder ({out}) holding ``names``."""
    def write(tmp, mp) -> dict:
        values = good_search(tmp, mp)
        (tmp / "out").mkdir()
        for name in names:
            (tmp / "out" / name).write_text("{}")
        return {**values, "out": str(tmp / "out")}

    return write


def without_onnxruntime(tmp, mp) -> dict:
    mp.setitem(sys.modules, "onnxruntime", None)  # what `import onnxruntime` finds missing
    return good_search(tmp, mp)


def pets(kind: str) -> Callable:
    """An image folder {tmp}/in/pets that is bad in one way (``kind``)."""
    def setup(tmp, mp) -> dict:
        from helpers import write_bad_folder

        return {"dir": str(write_bad_folder(tmp / "in" / "pets", kind))}

    return setup


# ------------------------------------------------------------------------------ the corpus
CUDA_MISSING = pytest.mark.skipif(CUDA, reason="needs a machine without CUDA")
GARBAGE = np.random.default_rng(3).bytes(1024)

CASES = {
    # --- python -m hpo_prune.train: unknown names
    "train-unknown-model": Case("train", ["--model", "resnet50"],
                                ("unknown model 'resnet50'", "use one of vgg16")),
    "train-unknown-dataset": Case("train", ["--dataset", "mnist"],
                                  ("unknown dataset 'mnist'", "use one of digits")),
    "train-folder-missing": Case("train", ["--dataset", "folder:{tmp}/nowhere"],
                                 ("is not a folder", "ImageFolder layout")),
    "train-folder-without-train": Case("train", ["--dataset", "folder:{dir}"],
                                       ("has no train/ folder", "train/<class>/<image>"),
                                       pets("no_train")),
    "train-folder-one-class": Case("train", ["--dataset", "folder:{dir}"],
                                   ("holds 1 class folder(s)", "2 or more"),
                                   pets("one_class")),
    "train-folder-class-without-images": Case(
        "train", ["--dataset", "folder:{dir}"],
        ("class 'fox' of train/ holds no readable image", "add images to"),
        pets("empty_class")),
    "train-unknown-timm-model": Case("train", ["--model", "timm:resnet1"],
                                     ("timm has no model 'resnet1'",
                                      "did you mean timm:resnet18")),
    "train-unknown-torchvision-model": Case("train", ["--model", "torchvision:resnt18"],
                                            ("torchvision has no model 'resnt18'",
                                             "did you mean torchvision:resnet18")),
    "train-model-without-linear-classifier": Case(
        "train", ["--model", "torchvision:squeezenet1_0", "--image-size", "64"],
        ("its classifier cannot be found", "whose head is a Linear layer")),
    "train-image-size-below-the-models": Case(
        "train", ["--model", "timm:vit_tiny_patch16_224", "--image-size", "32"],
        ("does not take 32 px inputs", "larger --image-size")),
    "search-folder-missing": Case("search", ["--dataset", "folder:{tmp}/nowhere"],
                                  ("is not a folder", "ImageFolder layout")),
    "search-unknown-timm-model": Case("search", ["--model", "timm:resnet1"],
                                      ("timm has no model 'resnet1'",
                                       "did you mean timm:resnet18")),
    "train-unknown-regime": Case("train", ["--init", "imagenet"],
                                 ("unknown init 'imagenet'", "scratch, pretrained")),
    "train-unknown-source": Case("train", ["--init", "pretrained", "--source", "nowhere.pt"],
                                 ("unknown source 'nowhere.pt'", "path of an existing")),
    "train-unknown-granularity": Case("train", ["--granularity", "channel"],
                                      ("unknown granularity 'channel'", "weight, filter")),
    "train-unknown-criterion": Case("train", ["--criterion", "taylor"],
                                    ("unknown criterion 'taylor'", "magnitude, lamp, random")),
    "train-unknown-schedule": Case("train", ["--schedule", "exp"],
                                   ("unknown schedule 'exp'", "one_shot")),
    "train-unknown-scope": Case("train", ["--scope", "layer"], ("unknown scope", "global")),
    "train-unknown-precision": Case("train", ["--precision", "fp16"],
                                    ("unknown precision 'fp16'", "auto, bf16, fp32")),
    "train-unknown-device": Case("train", ["--device", "tpu"],
                                 ("unknown device 'tpu'", "use auto, cpu")),
    # --- train: out-of-range numbers
    "train-prune-ratio-above-1": Case("train", ["--prune-ratio", "1.5"],
                                      ("--prune-ratio must be in [0, 1)", "1.5")),
    "train-prune-ratio-negative": Case("train", ["--prune-ratio=-0.1"],
                                       ("--prune-ratio must be in [0, 1)",)),
    "train-optimizer-unknown": Case("train", ["--optimizer", "lamb"],
                                    ("unknown optimizer 'lamb'", "auto, adamw, sgd")),
    "train-lamp-filters": Case("train", ["--criterion", "lamp", "--granularity", "filter"],
                               ("--criterion lamp scores single weights",
                                "--granularity weight")),
    "train-rescale-filters": Case("train", ["--rescale", "norm", "--granularity", "filter"],
                                  ("--rescale norm rescales layers of single-weight masks",
                                   "--granularity weight")),
    "train-rescale-unknown": Case("train", ["--rescale", "bn"], ("rescale", "none, norm")),
    "train-warmup-one": Case("train", ["--warmup", "1"], ("--warmup must be in [0, 1)",)),
    "train-head-init-unknown": Case("train", ["--head-init", "zero"],
                                    ("unknown head_init 'zero'", "auto, probe, random")),
    "train-label-smoothing": Case("train", ["--label-smoothing", "1.5"],
                                  ("--label-smoothing must be in [0, 1)",)),
    "train-lr-negative": Case("train", ["--lr=-0.1"], ("--lr must be > 0", "-0.1")),
    "train-lr-nan": Case("train", ["--lr", "nan"], ("--lr must be a finite number",)),
    "train-epochs-zero": Case("train", ["--epochs", "0"], ("--epochs must be >= 1",)),
    "train-epochs-not-a-number": Case("train", ["--epochs", "two"],
                                      ("--epochs", "invalid int value: 'two'", "--help")),
    "train-batch-size-zero": Case("train", ["--batch-size", "0"],
                                  ("--batch-size must be >= 1",)),
    "train-val-fraction-negative": Case("train", ["--val-fraction=-0.1"],
                                    ("--val-fraction must be in (0, 1)",)),
    "train-val-fraction-one": Case("train", ["--val-fraction", "1"],
                                   ("--val-fraction must be in (0, 1)",)),
    "train-val-fraction-too-small": Case(
        "train", ["--val-fraction", "0.001"],
        ("cannot split 1437 images", "choose a --val-fraction that leaves each class")),
    "train-momentum-one": Case("train", ["--momentum", "1"], ("--momentum must be in [0, 1)",)),
    "train-weight-decay-negative": Case("train", ["--weight-decay=-1e-4"],
                                        ("--weight-decay must be >= 0",)),
    "train-image-size-8": Case("train", ["--image-size", "8"],
                               ("--image-size must be 0 (dataset default) or >= 16",)),
    "train-vgg-at-16px": Case("train", ["--model", "vgg16"],
                              ("vgg16 needs inputs of at least 32 px", "--image-size 32")),
    "train-subset-negative": Case("train", ["--train-subset=-5"],
                                  ("--train-subset must be >= 0",)),
    "train-prune-steps-zero": Case("train", ["--prune-steps", "0"],
                                   ("--prune-steps must be >= 1",)),
    "train-cuda-missing": Case("train", ["--device", "cuda"],
                               ("no CUDA device is available", "--device cpu")),
    # --- train: flags that contradict each other
    "train-prune-start-after-end": Case("train", ["--prune-start", "0.6", "--prune-end", "0.5"],
                                        ("--prune-start < --prune-end", "[0.6, 0.5]")),
    "train-source-with-scratch": Case("train", ["--source", "fractal"],
                                      ("--source 'fractal'", "drop --source")),
    # --- train: missing or corrupt data
    "train-cifar10-missing": Case("train", ["--dataset", "cifar10"],
                                  ("cifar10 not found", "--download")),
    "train-svhn-missing": Case("train", ["--dataset", "svhn"], ("svhn not found", "--download")),
    "train-cifar10-truncated": Case("train", ["--dataset", "cifar10"],
                                    ("cifar10 not found or incomplete", "checksum"),
                                    cifar_truncated),
    "train-caltech101-no-background": Case(
        "train", ["--dataset", "caltech101"], ("lacks BACKGROUND_Google", "extract the archive"),
        caltech("background")),
    "train-caltech101-missing-image": Case(
        "train", ["--dataset", "caltech101"],
        ("airplanes/image_0003.jpg: no such file", "restore it from the archive"),
        caltech("gap")),
    "train-caltech101-corrupt-jpeg": Case(
        "train", ["--dataset", "caltech101"],
        ("cannot read caltech101 image", "chair/image_0002.jpg", "restore it from the archive"),
        caltech("jpeg")),
    # --- train: missing or corrupt checkpoints
    "train-source-random-bytes": Case("train", ["--init", "pretrained", "--source", "{file}"],
                                      ("cannot read checkpoint", "random.pt", "torch.save"),
                                      random_bytes),
    "train-source-runs-code": Case("train", ["--init", "pretrained", "--source", "{file}"],
                                   ("cannot read checkpoint", "Weights only load failed;",
                                    "weights_only=True"), code_pickle, real=True),
    "train-source-without-tensors": Case(
        "train", ["--init", "pretrained", "--source", "{file}"],
        ("holds no state dict of tensors", "torch.save(model.state_dict()"), tensorless),
    "train-source-unrelated-architecture": Case(
        "train", ["--model", "vgg16", "--image-size", "32", "--init", "pretrained", "--source",
                  "{file}"], ("does not fit vgg16", "same architecture"),
        unrelated_architecture),
    "train-source-other-architecture": Case(
        "train", ["--model", "vgg16", "--image-size", "32", "--init", "pretrained", "--source",
                  "{file}"], ("does not fit vgg16", "same architecture"), other_architecture),
    "train-fractal-cache-runs-code": Case(
        "train", ["--init", "pretrained", "--source", "fractal", "--fractal-classes", "3",
                  "--fractal-per-class", "8", "--pretrain-epochs", "1"],
        ("is corrupt", "--rebuild"), pretrain_cache("code")),
    "train-out-is-a-file": Case("train", ["--out", "{file}"], ("is a file", "directory"),
                                a_file),
    # --- python -m hpo_prune.pretrain
    "pretrain-unknown-source": Case("pretrain", ["--source", "imagenet"],
                                    ("unknown pre-training source 'imagenet'", "fractal")),
    "pretrain-unknown-head": Case("pretrain", ["--head", "huge"],
                                  ("unknown head 'huge'", "compact")),
    "pretrain-unknown-model": Case("pretrain", ["--model", "resnet"], ("unknown model 'resnet'",
                                                                       "mobilenet_v2")),
    "pretrain-classes-one": Case("pretrain", ["--classes", "1"], ("--classes must be >= 2",)),
    "pretrain-lr-negative": Case("pretrain", ["--lr=-0.5"],
                                 ("--lr must be a finite number > 0",)),
    "pretrain-vgg-at-16px": Case("pretrain", ["--model", "vgg16"],
                                 ("vgg16 needs inputs of at least 32 px", "--image-size 32")),
    "pretrain-unknown-precision": Case("pretrain", ["--precision", "float16"],
                                       ("unknown precision 'float16'", "auto, bf16, fp32")),
    "pretrain-cuda-missing": Case("pretrain", ["--device", "cuda"],
                                  ("no CUDA device is available", "--device cpu")),
    "pretrain-cache-random-bytes": Case("pretrain", [], ("is corrupt", "--rebuild"),
                                        pretrain_cache("random")),
    "pretrain-cache-runs-code": Case("pretrain", [], ("is corrupt", "--rebuild"),
                                     pretrain_cache("code")),
    "pretrain-cache-other-settings": Case("pretrain", [], ("no checkpoint of these settings",
                                                           "--rebuild"),
                                          pretrain_cache("other")),
    "pretrain-cache-dir-is-a-file": Case("pretrain", [], ("cannot create the cache directory",
                                                          "writable directory"),
                                         cache_is_a_file, real=True),
    # --- python -m hpo_prune.search: unknown names
    "search-unknown-model": Case("search", ["--model", "resnet50"],
                                 ("unknown model 'resnet50'", "use one of")),
    "search-unknown-dataset": Case("search", ["--dataset", "mnist"],
                                   ("unknown dataset 'mnist'", "use one of")),
    "search-unknown-sampler": Case("search", ["--sampler", "cmaes"],
                                   ("--sampler", "invalid choice: 'cmaes'", "choose from")),
    "search-unknown-regime": Case("search", ["--regimes", "imagenet"],
                                  ("--regimes", "invalid choice: 'imagenet'", "choose from")),
    "search-unknown-preset": Case("search", ["--preset", "huge"], ("--preset", "choose from")),
    "search-unknown-space": Case("search", ["--space", "nope"],
                                 ("search space 'nope' not found", "vgg.yaml")),
    "search-unknown-source": Case("search", ["--regimes", "pretrained", "--source", "nowhere.pt"],
                                  ("unknown source 'nowhere.pt'", "path of an existing")),
    # --- search: out-of-range numbers
    "search-unknown-precision": Case("search", ["--precision", "half"],
                                     ("invalid choice: 'half'", "'auto', 'bf16', 'fp32'")),
    "search-trials-zero": Case("search", ["--trials", "0"], ("--trials must be >= 1",)),
    "search-epochs-zero": Case("search", ["--epochs", "0"], ("--epochs must be >= 1",)),
    "search-gpus-negative": Case("search", ["--gpus-per-trial", "-1"],
                                 ("--gpus-per-trial must be >= 0",)),
    "search-cpus-zero": Case("search", ["--cpus-per-trial", "0"],
                             ("--cpus-per-trial must be > 0",)),
    "search-max-concurrent-zero": Case("search", ["--max-concurrent", "0"],
                                       ("--max-concurrent must be >= 1",)),
    "search-retries-negative": Case("search", ["--retries", "-1"], ("--retries must be >= 0",)),
    "search-baseline-seeds-zero": Case("search", ["--baseline-seeds", "0"],
                                       ("--baseline-seeds must be >= 1", "got 0")),
    "search-confirm-negative": Case("search", ["--confirm", "-1"],
                                    ("--confirm must be >= 0", "0 = no confirmation runs",
                                     "got -1")),
    # --- search: pruning levels (the later flag wins over the base's --levels none)
    "search-levels-above-1": Case("search", ["--trials", "6", "--levels", "0.8", "1.2"],
                                  ("--levels 1.2", "values in (0, 1)")),
    "search-levels-zero": Case("search", ["--trials", "6", "--levels", "0", "0.8"],
                               ("--levels 0 ", "values in (0, 1)")),
    "search-levels-not-a-number": Case("search", ["--levels", "most"],
                                       ("'most' is not a number", "fractions of weights")),
    "search-levels-repeated": Case("search", ["--trials", "6", "--levels", "0.8", "0.9", "0.8"],
                                   ("--levels lists 0.8 twice", "each level once")),
    "search-levels-more-than-trials": Case(
        "search", ["--trials", "4", "--baseline-seeds", "2", "--levels", "0.5", "0.8", "0.9"],
        ("--levels gives 3 levels", "2 pruned trial(s)", "raise --trials")),
    "search-levels-with-grid": Case(
        "search", ["--sampler", "grid", "--space", "paper_grid", "--levels", "0.8"],
        ("--levels does not apply to --sampler grid", "--levels none")),
    "search-levels-confirm-zero": Case(
        "search", ["--trials", "4", "--levels", "0.8", "--confirm", "0"],
        ("--confirm 0 with 3 pruned trials", "would value itself", "--confirm 2")),
    # --- search: replicates of the level design
    "search-replicates-zero": Case(
        "search", ["--trials", "3", "--levels", "0.8", "--replicates", "0"],
        ("--replicates 0 is not a count", "give 1 or more")),
    "search-replicates-not-an-integer": Case(
        "search", ["--trials", "3", "--levels", "0.8", "--replicates", "two"],
        ("--replicates", "'two'")),
    "search-first-run-front-design": Case(
        "search", ["--first-run", "recipe", "--levels", "none"],
        ("--first-run recipe applies to the level design only", "give --levels")),
    "search-first-run-unknown": Case(
        "search", ["--first-run", "best"], ("--first-run", "'best'")),
    "search-replicates-front-design": Case(
        "search", ["--replicates", "2"],
        ("--replicates 2 applies to the level design only", "--levels none", "give --levels")),
    "search-replicates-grid": Case(
        "search", ["--sampler", "grid", "--space", "paper_grid", "--replicates", "2"],
        ("--replicates 2 applies to the level design only", "--sampler grid")),
    "search-replicates-negative-seed": Case(
        "search", ["--trials", "3", "--levels", "0.8", "--seed", "-1"],
        ("--seed -1 is negative", "give 0 or more")),
    "search-levels-none-and-values": Case("search", ["--levels", "none", "0.8"],
                                          ("--levels none stands alone",)),
    "search-resume-other-levels": Case(
        "search", ["--resume", "--trials", "6", "--levels", "0.8", "0.95"],
        ("--levels 0.8 0.95 differs from the levels", "(0.8 0.9)", "drop --levels"),
        search_dir({"name": "s", "model": "mobilenet_v2", "levels": [0.8, 0.9]})),
    "search-val-fraction-above-1": Case("search", ["--val-fraction", "1.5"],
                                        ("--val-fraction must be in (0, 1)",)),
    "search-batch-size-zero": Case("search", ["--batch-size", "0"],
                                   ("--batch-size must be >= 1",)),
    # --- search: malformed and hostile search spaces (nothing in them may run)
    "search-space-apply-os-system": Case(
        "search", ["--space", "{space}"], ("python/object/apply:os.system", "plain YAML"),
        space("params: !!python/object/apply:os.system ['{payload}']\n"), real=True),
    "search-space-object-new": Case(
        "search", ["--space", "{space}"], ("python/object/new", "plain YAML"),
        space("fixed: !!python/object/new:subprocess.Popen [['sh', '-c', '{payload}']]\n")),
    "search-space-python-name": Case(
        "search", ["--space", "{space}"], ("python/name:os.system", "plain YAML"),
        space("params:\n  lr: !!python/name:os.system\n")),
    "search-space-broken-yaml": Case("search", ["--space", "{space}"], ("line", "plain YAML"),
                                     space("params: {{lr: [\n")),
    "search-space-binary": Case("search", ["--space", "{space}"], ("space.yaml", "YAML"),
                                binary_space),
    "search-space-out-of-range": Case(
        "search", ["--space", "{space}"], ("params.prune_ratio", "[0, 1)"),
        space("params:\n  prune_ratio: {{type: float, low: 0.0, high: 1.0}}\n")),
    "search-space-empty-lr-range-for-an-optimizer": Case(
        "search", ["--space", "{space}"], ("params.lr.optimizers.sgd", "empty range",
                                           "low (0.1) must be < high (0.01)"),
        space("params:\n  lr: {{type: float, low: 0.0001, high: 0.001, optimizers: {{sgd: "
              "{{low: 0.1, high: 0.01}}}}}}\n")),
    "search-space-no-lr-range-for-an-optimizer": Case(
        "search", ["--space", "{space}"], ("params.lr", "no range for optimizer sgd",
                                           "optimizers.sgd"),
        space("params:\n  lr: {{type: float, optimizers: {{adamw: {{low: 0.0001, high: "
              "0.001}}}}}}\n")),
    # --- search: flags that contradict each other
    "search-grid-only-space-without-grid-sampler": Case(
        "search", ["--space", "paper_grid"], ("samples nothing but its grid", "--sampler grid")),
    "search-grid-sampler-without-grid": Case(
        "search", ["--sampler", "grid", "--trials", "1", "--space", "{space}"],
        ("needs a 'grid' section", "grid:"),
        space("params:\n  lr: {{type: float, low: 0.01, high: 0.1}}\n")),
    "search-grid-sampler-without-grid-default-trials": Case(
        "search", ["--model", "mobilenet_v2", "--regimes", "scratch", "--sampler", "grid",
                   "--space", "{space}"], ("needs a 'grid' section", "grid:"),
        space("params:\n  lr: {{type: float, low: 0.01, high: 0.1}}\n"), base=False),
    "search-source-with-scratch-only": Case("search", ["--source", "fractal"],
                                            ("--source only applies", "add it to --regimes")),
    "search-dataset-twice": Case("search", ["--dataset", "digits", "digits"],
                                 ("--dataset lists a dataset twice", "list each once")),
    "search-regimes-twice": Case("search", ["--regimes", "scratch", "scratch"],
                                 ("--regimes lists a regime twice", "list each once")),
    "search-bad-name": Case("search", ["--name", "a/b"], ("--name 'a/b'", "letters, digits")),
    # --- search: unreachable cluster or database, and results folders that don't fit
    "search-unreachable-ray": Case("search", ["--address", "127.0.0.1:1"],
                                   ("cannot reach the Ray cluster at --address 127.0.0.1:1",
                                    "ray start --head"), real=True),
    "search-malformed-address": Case("search", ["--address", "localhost"],
                                     ("--address 'localhost' must be HOST:PORT",)),
    "search-unreachable-database": Case(
        "search", ["--storage", "postgresql://u@127.0.0.1:1/db"],
        ("cannot open --storage postgresql://u@127.0.0.1:1/db", "database is reachable")),
    "search-storage-not-a-url": Case("search", ["--storage", "results.db"],
                                     ("cannot open --storage results.db", "check the URL")),
    "search-storage-in-missing-folder": Case(
        "search", ["--storage", "sqlite:///{tmp}/nowhere/optuna.db"],
        ("unable to open database file", "check the URL")),
    "search-results-is-a-file": Case("search", ["--results", "{file}"],
                                     ("--results", "directory"), a_file),
    "search-resume-nothing": Case("search", ["--resume"], ("holds no search to resume",
                                                           "drop --resume")),
    "search-resume-other-model": Case(
        "search", ["--resume"], ("holds a search of model 'vgg16'", "choose another --name"),
        search_dir({"name": "s", "model": "vgg16"})),
    "search-resume-other-baseline-seeds": Case(
        "search", ["--resume", "--baseline-seeds", "3"],
        ("--baseline-seeds 3 differs from the 2", "pass --baseline-seeds 2"),
        search_dir({"name": "s", "model": "mobilenet_v2", "baseline_seeds": 2})),
    # every setting that shapes a result is compared with the record; trials.csv and
    # search.json stay as they were (the corpus compares the whole tree)
    "search-resume-other-epochs": Case(
        "search", ["--resume"], ("--epochs 1 differs from the 3", "pass --epochs 3"),
        search_dir({"name": "s", "model": "mobilenet_v2", "settings": {"epochs": 3}},
                   trials="study,number,state\ns,0,COMPLETE\n")),
    "search-resume-other-image-size": Case(
        "search", ["--resume"], ("--image-size 16 differs from the 32", "pass --image-size 32"),
        search_dir({"name": "s", "model": "mobilenet_v2",
                    "settings": {"epochs": 1, "image_size": 32}})),
    "search-resume-other-precision": Case(
        "search", ["--resume", "--precision", "fp32"],
        ("--precision fp32 differs from the bf16", "pass --precision bf16 or auto"),
        search_dir({"name": "s", "model": "mobilenet_v2", "settings": {"epochs": 1,
                                                                       "precision": "bf16"}})),
    "search-resume-record-bad-precision": Case(
        "search", ["--resume"], ("precision 'fp8' is not one of bf16, fp32",),
        search_dir({"name": "s", "model": "mobilenet_v2", "settings": {"precision": "fp8"}})),
    "search-resume-other-space": Case(
        "search", ["--resume"], ("samples another space", "restore that file"),
        search_dir({"name": "s", "model": "mobilenet_v2", "settings": {"space": "0" * 16}})),
    "search-resume-record-bad-baseline-seeds": Case(
        "search", ["--resume"], ("baseline_seeds 'three' is not a count",),
        search_dir({"name": "s", "model": "mobilenet_v2", "baseline_seeds": "three"})),
    "search-existing-without-resume": Case(
        "search", [], ("already holds search 's'", "pass --resume"),
        search_dir({"name": "s", "model": "mobilenet_v2"})),
    "search-resume-corrupt-record": Case("search", ["--resume"], ("not a search record",),
                                         search_dir("{ not json")),
    "search-resume-record-not-a-mapping": Case("search", ["--resume"], ("not a search record",),
                                               search_dir([1, 2, 3])),
    "search-resume-corrupt-database": Case(
        "search", ["--resume"], ("optuna.db", "not a database"),
        search_dir({"name": "s", "model": "mobilenet_v2"}, db=GARBAGE)),
    "search-cifar100-missing": Case("search", ["--dataset", "cifar100"],
                                    ("cifar100 not found", "--download")),
    "search-source-random-bytes": Case(
        "search", ["--regimes", "pretrained", "--source", "{file}"],
        ("cannot read checkpoint", "torch.save"), random_bytes),
    # a compact (weight-pruned) run checkpoint is refused as a source, not half loaded
    "train-source-compact-checkpoint": Case(
        "train", ["--init", "pretrained", "--source", "{file}"],
        ("holds no state dict of tensors",), compact_checkpoint),
    "search-keep-models-unknown": Case("search", ["--keep-models", "some"],
                                       ("--keep-models", "invalid choice", "front")),
    "search-resume-record-bad-keep-models": Case(
        "search", ["--resume"], ("keep_models 'most' is not one of front, all, none",),
        search_dir({"name": "s", "model": "mobilenet_v2", "keep_models": "most"})),
    # --- python -m hpo_prune.export (good_search: the analysis's fixture; its model
    # folders are not on disk)
    "export-no-trial-or-pick": Case("export", ["--results", "{dir}", "--out", "{tmp}/o"],
                                    ("one of the arguments --trial --pick is required",),
                                    good_search),
    "export-unknown-pick": Case("export", ["--results", "{dir}", "--pick", "within-3pt",
                                           "--out", "{tmp}/o"],
                                ("invalid choice: 'within-3pt'", "within-1pt"), good_search),
    "export-unknown-precision": Case("export", ["--results", "{dir}", "--trial", "1",
                                                "--precision", "int8", "--out", "{tmp}/o"],
                                     ("invalid choice: 'int8'", "'auto', 'bf16', 'fp32'"),
                                     good_search),
    "export-results-missing": Case("export", ["--results", "{tmp}/nowhere", "--trial", "1",
                                              "--out", "{tmp}/o"],
                                   ("does not exist", "python -m hpo_prune.search")),
    "export-which-study": Case("export", ["--results", "{dir}", "--trial", "1", "--out",
                                          "{tmp}/o"],
                               ("holds 2 studies", "pass --study",
                                "demo.vgg16.digits.pretrained"), good_search),
    "export-unknown-study": Case("export", ["--results", "{dir}", "--study", "imagenet",
                                            "--trial", "1", "--out", "{tmp}/o"],
                                 ("--study 'imagenet' is not a study", "use one of"),
                                 good_search),
    "export-unknown-trial": Case("export", ["--results", "{dir}", "--study", "scratch",
                                            "--trial", "99", "--out", "{tmp}/o"],
                                 ("has no trial 99", "0 to 9"), good_search),
    "export-trial-stopped-early": Case(
        "export", ["--results", "{dir}", "--study", "pretrained", "--trial", "9", "--out",
                   "{tmp}/o"], ("trial 9 of demo.vgg16.digits.pretrained is PRUNED",
                                "only COMPLETE trials"), good_search),
    "export-trial-failed": Case(
        "export", ["--results", "{dir}", "--study", "pretrained", "--trial", "10", "--out",
                   "{tmp}/o"], ("is FAIL (training diverged)", "pick a COMPLETE one"),
        good_search),
    "export-model-not-kept": Case(  # trial 4 (0.943, 0.11) is dominated by 3 (0.944, 0.10)
        "export", ["--results", "{dir}", "--study", "pretrained", "--trial", "4", "--out",
                   "{tmp}/o"], ("model was not kept", "--keep-models front",
                                "--keep-models all would have kept it"), good_search),
    "export-model-missing": Case(  # trial 6 is on the front: front kept it, it was moved
        "export", ["--results", "{dir}", "--study", "pretrained", "--trial", "6", "--out",
                   "{tmp}/o"], ("is missing (moved or deleted", "results folder"),
        good_search),
    "export-pick-without-baseline": Case(
        "export", ["--results", "{dir}", "--pick", "within-1pt", "--out", "{tmp}/o"],
        ("--pick within-1pt needs the study's unpruned reference", "pass --trial N"),
        search_without_baseline),
    "export-out-holds-an-export": Case(
        "export", ["--results", "{dir}", "--study", "pretrained", "--trial", "6", "--out",
                   "{out}"], ("already holds a finished export", "--overwrite"),
        export_folder("model.json", "model.pt")),
    "export-out-holds-other-files": Case(
        "export", ["--results", "{dir}", "--study", "pretrained", "--trial", "6", "--out",
                   "{out}", "--overwrite"], ("holds other files (notes.txt)", "empty folder"),
        export_folder("model.json", "notes.txt")),
    "export-out-is-a-file": Case(
        "export", ["--results", "{dir}", "--study", "pretrained", "--trial", "6", "--out",
                   "{file}"], ("is a file", "folder path"), good_search),
    "export-onnx-not-installed": Case(
        "export", ["--results", "{dir}", "--study", "pretrained", "--trial", "6", "--out",
                   "{tmp}/o", "--format", "onnx"],
        ("--format onnx needs", "missing: onnxruntime", "pip install -e '.[onnx]'"),
        without_onnxruntime),
    # --- python -m analysis
    "analysis-empty-folder": Case("analysis", ["--results", "{dir}"],
                                  ("holds neither trials.csv nor an Optuna storage",
                                   "pass the results directory"), empty_dir, real=True),
    "analysis-results-is-a-file": Case("analysis", ["--results", "{file}"],
                                       ("is a file, not a results directory",), a_file),
    "analysis-corrupt-trials-csv": Case("analysis", ["--results", "{dir}"],
                                        ("trials.csv is not a readable CSV",
                                         "pass the results directory"),
                                        results_with(trials_csv=GARBAGE)),
    "analysis-corrupt-search-json": Case("analysis", ["--results", "{dir}"],
                                         ("search.json is not valid JSON",
                                          "pass the results directory"),
                                         results_with(search_json="{ not json",
                                                      trials_csv="study\n")),
    "analysis-corrupt-optuna-db": Case("analysis", ["--results", "{dir}"],
                                       ("is not an SQLite database", "pass the optuna.db"),
                                       results_with(optuna_db=GARBAGE)),
    "analysis-csv-only-but-storage-asked": Case(
        "analysis", ["--results", "{dir}", "--trials-from", "storage"],
        ("has no Optuna storage", "--trials-from csv"), results_with(trials_csv="study\n")),
    "analysis-unknown-trials-from": Case("analysis", ["--results", "{dir}", "--trials-from",
                                                      "db"],
                                         ("--trials-from", "invalid choice: 'db'"), empty_dir),
    "analysis-missing-storage-file": Case(
        "analysis", ["--storage", "sqlite:///{tmp}/missing.db", "--out", "{tmp}/report"],
        ("no such file", "pass the storage URL")),
    "analysis-unreachable-database": Case(
        "analysis", ["--storage", "postgresql://u@127.0.0.1:1/db", "--out", "{tmp}/report"],
        ("cannot open the Optuna storage postgresql://u@127.0.0.1:1/db", "Connection refused;",
         "check the URL")),
    "analysis-pool-same-seed": Case(
        "analysis", ["--results", "{dir}", "{dir2}", "--out", "{tmp}/o"],
        ("share trial seed 100000", "different --seed values"), two_searches(0)),
    "analysis-pool-other-design": Case(
        "analysis", ["--results", "{dir}", "{dir2}", "--out", "{tmp}/o"],
        ("differs from", "in levels ([0.8] vs [0.9])", "analyse them apart"),
        two_searches(1, levels=[0.8])),
    "analysis-pool-not-replicated": Case(
        "analysis", ["--results", "{dir}", "{dir2}", "--out", "{tmp}/o"],
        ("is not a replicated level search", "--replicates"),
        two_searches(1, levels=[])),
    "analysis-pool-without-out": Case(
        "analysis", ["--results", "{dir}", "{dir2}"], ("several --results", "--out DIR"),
        two_searches(1)),
    "analysis-out-is-a-file": Case("analysis", ["--results", "{dir}", "--out", "{file}",
                                                "--no-optuna-pages", "--bootstrap", "100"],
                                   ("--out", "directory"), good_search),
}


# ------------------------------------------------------------------------------ the check
def snapshot(root: Path) -> dict[str, object]:
    """Every path under root: folders as such, files with their size and modification time."""
    tree = {}
    for path in root.rglob("*"):
        stat = path.lstat()
        key = path.relative_to(root).as_posix()
        tree[key] = "dir" if path.is_dir() else (stat.st_size, stat.st_mtime_ns)
    return tree


def _main(command: str):
    if command == "analysis":
        from analysis.__main__ import main
    else:
        import importlib

        main = importlib.import_module(f"hpo_prune.{command}").main
    return main


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"the bad input was not refused: the command {what}")

    return refuse


@pytest.fixture(scope="session")
def matplotlib_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("matplotlib")


@pytest.fixture
def workdir(tmp_path, monkeypatch, matplotlib_cache):
    """An empty working directory holding every place a command could write to (but
    matplotlib's font cache, which importing the analysis builds once per $HOME)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLCONFIGDIR", str(matplotlib_cache))
    for name, folder in (("HPO_PRUNE_CACHE", "cache"), ("HPO_PRUNE_DATA", "data"),
                         ("TORCH_HOME", "torch"), ("HF_HUB_CACHE", "hf"), ("HOME", "home")):
        monkeypatch.setenv(name, str(tmp_path / folder))
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, DEAD_PROXY)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    _cache_precision(tmp_path / "cache")
    monkeypatch.setattr("hpo_prune.search.runner.start_ray", _refuse("started Ray"))
    monkeypatch.setattr("hpo_prune.training.fit.train_epoch", _refuse("started training"))
    environ = dict(os.environ)
    yield tmp_path
    for name in set(os.environ) - set(environ):  # the search sets Ray's variables itself
        del os.environ[name]


def _cache_precision(cache: Path) -> None:
    """This machine's --precision auto, cached as a first run here caches it: measuring it is
    no result, and a refused command must not be the one that writes it."""
    cpu = torch.device("cpu")
    cache.mkdir()
    (cache / precision.CACHE_FILE).write_text(json.dumps(
        {precision.machine_key(cpu): {"precision": precision.choose(cpu)}}))


def _case_params():
    for name, case in CASES.items():
        marks = [CUDA_MISSING] if "cuda-missing" in name else []
        yield pytest.param(case, id=name, marks=marks)


@pytest.mark.parametrize("case", _case_params())
def test_bad_input(case: Case, workdir: Path, monkeypatch, capfd):
    values = {"tmp": str(workdir)}
    if case.setup is not None:
        values.update(case.setup(workdir, monkeypatch))
    base = {"train": TRAIN, "pretrain": PRETRAIN, "search": SEARCH, "analysis": [],
            "export": []}
    argv = [*(base[case.command] if case.base else []),
            *(arg.format(**values) for arg in case.argv)]
    before = snapshot(workdir)
    capfd.readouterr()
    if case.real:
        module = {"analysis": "analysis"}.get(case.command, f"hpo_prune.{case.command}")
        proc = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True,
                              text=True, timeout=120)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        with pytest.raises(SystemExit) as stop:
            _main(case.command)(argv)
        code = stop.value.code
        out, err = capfd.readouterr()
    after = snapshot(workdir)

    lines = err.splitlines()
    assert code == 2, (code, out[-2000:], err[-2000:])
    assert "Traceback" not in out and "Traceback" not in err, err[-3000:]
    assert len(lines) == 1 and lines[0].strip(), err[-3000:]
    for expected in case.expect:
        assert expected in lines[0], lines[0]
    assert not (workdir / MARKER).exists(), "a payload in the input ran"
    # the search's driver lock in a results folder that was there before stays, empty and
    # unlocked, by design: deleting a lock file races with a driver that is waiting on it
    new = sorted(k for k in set(after) - set(before)
                 if not (k.endswith(f"/{LOCK_FILE}") and k.rsplit("/", 1)[0] in before))
    gone = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert (new, gone, changed) == ([], [], []), "the failed command touched the tree"


def test_the_docs_count_the_cases():
    """docs/reliability.md's table states the size of this corpus: it must be this one's."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "reliability.md").read_text()
    assert f"({len(CASES)} cases:" in text
