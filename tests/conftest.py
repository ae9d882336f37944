"""Shared fixtures: datasets written in their real on-disk formats, a torch hub cache holding an
ImageNet-shaped checkpoint, and a tiny in-memory split of digits for quick trials.

torchvision verifies the md5 of CIFAR and SVHN files on every load, so the fabricated files'
real md5 sums are patched into the classes' file lists (the check itself still runs).
"""
from __future__ import annotations

import atexit
import hashlib
import os
import pickle
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"  # torchvision's ImageNet weights file name

# no test touches the user's cache: pre-trained checkpoints and the --precision auto choice go
# to a directory of this test run (tests that need their own set it themselves)
os.environ["HPO_PRUNE_CACHE"] = tempfile.mkdtemp(prefix="hpo_prune_cache_")
atexit.register(shutil.rmtree, os.environ["HPO_PRUNE_CACHE"], True)


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random, distinct 32x32 RGB images, (N, 32, 32, 3) uint8."""
    return rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def _labels(classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(classes), per_class))


def write_cifar(root: Path, classes: int, monkeypatch, per_class_train: int = 10,
                per_class_test: int = 2, seed: int = 0) -> dict:
    """CIFAR10/100 python pickles under root/cifar-10-batches-py or root/cifar-100-python.

    Returns the written arrays: train_x, train_y, test_x, test_y (images as (N,32,32,3)).
    """
    from torchvision import datasets

    cls = datasets.CIFAR10 if classes == 10 else datasets.CIFAR100
    rng = np.random.default_rng(seed)
    train_y = _labels(classes, per_class_train, rng)
    test_y = _labels(classes, per_class_test, rng)
    train_x, test_x = _images(rng, len(train_y)), _images(rng, len(test_y))
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    label_key = "labels" if classes == 10 else "fine_labels"

    def dump(name: str, x: np.ndarray, y: np.ndarray) -> list:
        # the real layout: rows of 3072 bytes, the R plane, then G, then B (channel-first)
        entry = {"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1), label_key: y.tolist(),
                 "filenames": [f"img_{i}.png" for i in range(len(y))]}
        if classes == 100:
            entry["coarse_labels"] = (y // 5).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
        return [name, md5(folder / name)]

    train_names = [name for name, _ in cls.train_list]
    chunks = np.array_split(np.arange(len(train_y)), len(train_names))
    train_list = [dump(name, train_x[idx], train_y[idx]) for name, idx in zip(train_names, chunks)]
    test_list = [dump(cls.test_list[0][0], test_x, test_y)]
    meta = dict(cls.meta)
    with open(folder / meta["filename"], "wb") as f:
        pickle.dump({meta["key"]: [f"class_{c}" for c in range(classes)]}, f)
    meta["md5"] = md5(folder / meta["filename"])
    monkeypatch.setattr(cls, "train_list", train_list)
    monkeypatch.setattr(cls, "test_list", test_list)
    monkeypatch.setattr(cls, "meta", meta)
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}


def write_svhn(root: Path, monkeypatch, per_class_train: int = 10, per_class_test: int = 2,
               seed: int = 0) -> dict:
    """SVHN's train_32x32.mat / test_32x32.mat under root/svhn: X (32,32,3,N) uint8 and
    y (N,1) with labels 1..10, where 10 stands for the digit 0. Returns digit labels 0..9."""
    import scipy.io
    from torchvision import datasets

    rng = np.random.default_rng(seed)
    folder = root / "svhn"
    folder.mkdir(parents=True)
    split_list = {k: list(v) for k, v in datasets.SVHN.split_list.items()}
    out = {}
    for split, per_class in (("train", per_class_train), ("test", per_class_test)):
        digits = _labels(10, per_class, rng)
        x = _images(rng, len(digits))
        stored = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)
        path = folder / split_list[split][1]
        scipy.io.savemat(str(path), {"X": x.transpose(1, 2, 3, 0), "y": stored})
        split_list[split][2] = md5(path)
        out[f"{split}_x"], out[f"{split}_y"] = x, digits
    monkeypatch.setattr(datasets.SVHN, "split_list", split_list)
    return out


def write_caltech101(root: Path, per_category: int = 12, seed: int = 0) -> dict:
    """Caltech101's layout: root/caltech101/101_ObjectCategories/<category>/image_0001.jpg ...,
    with the BACKGROUND_Google folder (not a class), JPEGs of varying sizes, and one category
    of greyscale JPEGs. Returns the category names in label order and the greyscale one."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    top = root / "caltech101" / "101_ObjectCategories"
    categories = {"BACKGROUND_Google": "RGB", "airplanes": "RGB", "bonsai": "L",
                  "chair": "RGB"}
    for category, mode in categories.items():
        folder = top / category
        folder.mkdir(parents=True)
        count = 3 if category == "BACKGROUND_Google" else per_category
        for i in range(count):
            h, w = int(rng.integers(40, 120)), int(rng.integers(40, 120))
            shape = (h, w) if mode == "L" else (h, w, 3)
            pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
            Image.fromarray(pixels, mode).save(folder / f"image_{i + 1:04d}.jpg", quality=90)
    classes = sorted(c for c in categories if c != "BACKGROUND_Google")
    return {"classes": classes, "grey": "bonsai", "per_category": per_category}


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache (TORCH_HOME) in a temporary directory."""
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def imagenet_mobilenet_v2(torch_home) -> dict:
    """A 1000-class mobilenet_v2 state dict placed where torchvision's weights API caches it."""
    from torchvision import models

    torch.manual_seed(1234)
    state = models.mobilenet_v2(weights=None, num_classes=1000).state_dict()
    path = torch_home / "hub" / "checkpoints" / MOBILENET_V2_FILE
    torch.save(state, path)
    return {"path": path, "state": state}


@pytest.fixture(scope="session")
def tiny_digits():
    """digits at 16 px with 64 training images and small val/test splits, for quick trials."""
    from hpo_prune import TrialConfig
    from hpo_prune.data import datasets

    from hpo_prune.resolution import resolve_data

    data = datasets.load(resolve_data(TrialConfig(dataset="digits", train_subset=64,
                                                  image_size=16).data))
    small = datasets.Split
    return replace(data, val=small(data.val.x[:40], data.val.y[:40]),
                   test=small(data.test.x[:40], data.test.y[:40]))


from postgres import postgres_server, postgres_url  # noqa: E402,F401  (a test PostgreSQL server)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A checkpoint of the right architecture, as the pretrained regime's source (a search of
    helpers.TINY)."""
    from hpo_prune import models

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("source") / "mobilenet_v2_digits.pt"
    torch.save(models.build("mobilenet_v2", 10, 32).state_dict(), path)
    return path
