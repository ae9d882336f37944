"""Dataset registry: deterministic train / val / test splits held in memory as uint8 tensors.

Each loader reads the dataset through torchvision's own class and on-disk format (or, for the
embedded default ``digits``, scikit-learn's bundled copy) and returns the official train and
test images. The generic part below carves the validation set out of the training split
(seeded, stratified), resizes when asked, and computes the normalisation statistics on the
training images. Test data is never used to select anything.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UsageError
from ..settings import DataSettings
from ..settings.trial import require_resolved
from ..files import atomic_write
from . import folder


DATA_ENV = "HPO_PRUNE_DATA"
TEST_FRACTION = 0.2  # digits and caltech101 have no official test split


@dataclass(frozen=True)
class Defaults:
    """What a dataset's placeholders stand for (hpo_prune.resolution fills them in)."""
    # --image-size 0: the dataset's own input size
    image_size: int = 32
    # --val-fraction 0: a val split large enough that one image is well under the analysis's
    # 1-point tolerance (digits: 288 images, 0.35 points each; 0.1 would leave 144)
    val_fraction: float = 0.1
    # --augment auto: digits are 8x8 images upsampled 4x, where a crop padded by 4 px shifts
    # the digit by a whole source pixel (1/8 of it); without it a pruned VGG16 keeps 2-4
    # points more (docs/training.md). Every other dataset: crop (+ flips where they
    # keep the label).
    augment: str = "crop"
    # --source '' of the pretrained regime: the embedded default is pre-trained offline
    source: str = "imagenet"


DEFAULTS = {"digits": Defaults(val_fraction=0.2, augment="none", source="fractal"),
            "caltech101": Defaults(image_size=64)}


def defaults(name: str) -> Defaults:
    """The defaults of dataset ``name`` (one definition per dataset; an image folder's:
    ``folder.DEFAULT_SIZE`` px)."""
    if folder.is_folder(name):
        return Defaults(image_size=folder.DEFAULT_SIZE)
    return DEFAULTS.get(name, Defaults())


@dataclass
class Split:
    x: torch.Tensor  # uint8, (N, 3, H, W)
    y: torch.Tensor  # int64, (N,)

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Data:
    name: str
    num_classes: int
    train: Split
    val: Split
    test: Split
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    flip: bool  # horizontal flips are label-preserving
    image_size: int


@dataclass
class _Raw:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    flip: bool
    val: tuple[torch.Tensor, torch.Tensor] | None = None  # a val split of its own (folders)


def data_root(settings: DataSettings) -> Path:
    root = settings.data_dir or os.environ.get(DATA_ENV) or "~/.cache/hpo_prune/data"
    return Path(root).expanduser()


def load(settings: DataSettings) -> Data:
    """Load the dataset named by ``settings.dataset`` with its train / val / test splits.
    ``settings`` are resolved (``hpo_prune.resolution.resolve_data``): its input size and
    val fraction are given."""
    require_resolved("datasets.load", settings)
    if folder.is_folder(settings.dataset):
        loader = _folder
    else:
        try:
            loader = DATASETS[settings.dataset]
        except KeyError:
            raise UsageError(f"unknown dataset {settings.dataset!r}: use one of "
                             f"{', '.join(DATASETS)}, or folder:PATH") from None
    raw = loader(data_root(settings), settings)
    size = settings.image_size
    if raw.val is None:
        train_idx, val_idx = stratified_split(raw.train_y, settings.val_fraction,
                                              settings.split_seed,
                                              what="--val-fraction")
        val_x, val_y = raw.train_x[val_idx], raw.train_y[val_idx]
    else:  # the folder's own val/
        train_idx, (val_x, val_y) = torch.arange(len(raw.train_y)), raw.val
    if 0 < settings.train_subset < len(train_idx):
        train_idx = train_idx[stratified_subset(raw.train_y[train_idx], settings.train_subset,
                                                settings.split_seed)]
    train = Split(_resize(raw.train_x[train_idx], size), raw.train_y[train_idx])
    val = Split(_resize(val_x, size), val_y)
    test = Split(_resize(raw.test_x, size), raw.test_y)
    mean, std = normalisation(train.x)
    return Data(settings.dataset, raw.num_classes, train, val, test, mean, std, raw.flip, size)


def normalisation(x: torch.Tensor) -> tuple[tuple, tuple]:
    """Per-channel mean and std of uint8 images (N, 3, H, W), in [0, 1] units."""
    pixels = x.float().div_(255)
    mean = tuple(pixels.mean(dim=(0, 2, 3)).tolist())
    std = tuple(pixels.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())
    return mean, std


def stratified_split(y: torch.Tensor, fraction: float, seed: int, what: str):
    """Indices (kept, held out), held out = `fraction` of each class, seeded."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    try:
        kept, held = train_test_split(index, test_size=fraction, random_state=seed,
                                      stratify=y.numpy(), shuffle=True)
    except ValueError as err:
        fix = (f"choose a {what} that leaves each class at least one image on both sides"
               if what.startswith("--") else "the dataset looks incomplete: place all of it")
        raise UsageError(f"cannot split {len(y)} images of {len(torch.unique(y))} classes "
                         f"with {what}: {err}; {fix}") from None
    return torch.from_numpy(np.sort(kept)), torch.from_numpy(np.sort(held))


def stratified_subset(y: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Sorted indices of `size` items, each class in proportion to its share, seeded.

    Members of each class are shuffled and ranked (j + 0.5) / class size; the `size` lowest
    ranks are kept (ties broken by the shuffle), so any size from 1 to len(y) works.
    """
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    rank = torch.empty(len(y), dtype=torch.float64)
    for c in torch.unique(y):
        members = order[y[order] == c]
        rank[members] = (torch.arange(len(members), dtype=torch.float64) + 0.5) / len(members)
    chosen = order[torch.argsort(rank[order], stable=True)[:size]]
    return torch.sort(chosen).values


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x.contiguous()
    out = []
    for chunk in x.split(1024):
        resized = F.interpolate(chunk.float(), size=(size, size), mode="bilinear",
                                antialias=True, align_corners=False)
        out.append(resized.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def _as_tensors(images: np.ndarray, labels, channels_last: bool) -> tuple:
    x = torch.from_numpy(np.ascontiguousarray(images))
    if channels_last:
        x = x.permute(0, 3, 1, 2)
    return x.contiguous(), torch.as_tensor(np.asarray(labels), dtype=torch.int64)


def _missing(name: str, where: Path, layout: str) -> UsageError:
    return UsageError(f"{name} not found or incomplete in {where} (expected {layout}; a file "
                      "that fails its checksum counts as missing): place the files there, "
                      f"point --data-dir or ${DATA_ENV} at them, or pass --download")


def _torchvision(name: str, make: Callable, where: Path, layout: str, download: bool):
    try:
        return make(download)
    except RuntimeError as err:
        if "not found" in str(err).lower() or "corrupted" in str(err).lower():
            raise _missing(name, where, layout) from None
        raise
    except OSError as err:  # network errors while downloading
        raise UsageError(f"could not download {name} into {where}: {err}; download it "
                         f"elsewhere and copy it there") from None


# ---------------------------------------------------------------------------- loaders
def _digits(root: Path, settings: DataSettings) -> _Raw:
    """scikit-learn's bundled 8x8 digits (no network), upsampled to 32x32 RGB."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float().unsqueeze(1)  # (N,1,8,8), 0..16
    images = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
    x = (images * (255 / 16)).round_().clamp_(0, 255).to(torch.uint8).expand(-1, 3, -1, -1)
    y = torch.from_numpy(bunch.target).long()
    train_idx, test_idx = stratified_split(y, TEST_FRACTION, seed=0, what="the test split")
    return _Raw(x[train_idx].contiguous(), y[train_idx], x[test_idx].contiguous(), y[test_idx],
                10, flip=False)


def _cifar(classes: int):
    def load_cifar(root: Path, settings: DataSettings) -> _Raw:
        from torchvision import datasets

        cls = datasets.CIFAR10 if classes == 10 else datasets.CIFAR100
        name = f"cifar{classes}"
        layout = f"{cls.base_folder}/ with the python pickles"
        parts = {}
        for train in (True, False):
            ds = _torchvision(name, lambda d: cls(str(root), train=train, download=d), root,
                              layout, settings.download)
            parts[train] = _as_tensors(ds.data, ds.targets, channels_last=True)
        return _Raw(*parts[True], *parts[False], classes, flip=True)

    return load_cifar


def _svhn(root: Path, settings: DataSettings) -> _Raw:
    from torchvision import datasets

    where = root / "svhn"
    parts = {}
    for split in ("train", "test"):
        ds = _torchvision("svhn", lambda d: datasets.SVHN(str(where), split=split, download=d),
                          where, "train_32x32.mat and test_32x32.mat", settings.download)
        parts[split] = _as_tensors(ds.data, ds.labels, channels_last=False)
    return _Raw(*parts["train"], *parts["test"], 10, flip=False)


def _caltech101(root: Path, settings: DataSettings) -> _Raw:
    """Caltech101 JPEGs, resized once (shorter side, centre crop) and cached as a tensor file."""
    size = settings.image_size
    cache = root / "caltech101" / f"hpo_prune_{size}px.pt"
    if cache.exists():
        try:
            blob = torch.load(cache, weights_only=True)
            x, y, classes = blob["x"], blob["y"], int(blob["classes"])
        except Exception as err:  # corrupt cache: rebuild it from the JPEGs
            print(f"warning: rebuilding unreadable cache {cache} ({err})")
        else:
            return _caltech_split(x, y, classes)
    from torchvision import datasets

    layout = "caltech101/101_ObjectCategories/<category>/image_*.jpg"
    categories = root / "caltech101" / "101_ObjectCategories"
    if not settings.download and not categories.is_dir():  # torchvision would mkdir the root
        raise _missing("caltech101", root, layout)
    if categories.is_dir() and not (categories / "BACKGROUND_Google").is_dir():
        raise UsageError(f"{categories} lacks BACKGROUND_Google/ (torchvision expects the "
                         "complete 101_ObjectCategories folder): extract the archive again")
    ds = _torchvision("caltech101", lambda d: datasets.Caltech101(str(root), download=d), root,
                      layout, settings.download)
    xs, ys = [], []
    for i in range(len(ds)):
        try:
            image, label = ds[i]
            xs.append(folder.square(image, size))
        except OSError as err:  # missing or unreadable JPEG (PIL errors are OSErrors)
            path = categories / ds.categories[ds.y[i]] / f"image_{ds.index[i]:04d}.jpg"
            reason = "no such file" if not path.is_file() else str(err)
            raise UsageError(f"cannot read caltech101 image {path}: {reason}; restore it from "
                             "the archive (each category numbers its images image_0001.jpg, "
                             "image_0002.jpg, ... without gaps)") from None
        ys.append(label)
    x, y = torch.stack(xs), torch.tensor(ys, dtype=torch.int64)
    classes = len(ds.categories)  # 101: torchvision leaves BACKGROUND_Google out
    atomic_write(cache, lambda tmp: torch.save({"x": x, "y": y, "classes": classes}, tmp))
    return _caltech_split(x, y, classes)


def _caltech_split(x: torch.Tensor, y: torch.Tensor, classes: int) -> _Raw:
    train_idx, test_idx = stratified_split(y, TEST_FRACTION, seed=0, what="the test split")
    return _Raw(x[train_idx], y[train_idx], x[test_idx], y[test_idx], classes, flip=True)


def _folder(root: Path, settings: DataSettings) -> _Raw:
    """An image folder (``folder``): its own val/ and test/ splits where it has them, else
    carved out of train/ (test: 20%, stratified, seed 0, as for caltech101). No flips: for
    images of unknown content a mirror image may change the label (digits, text)."""
    images = folder.read(settings.dataset, settings.image_size)
    x, y = images.train
    if images.test is None:
        train_idx, test_idx = stratified_split(y, TEST_FRACTION, seed=0, what="the test split")
        (x, y), test = (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])
    else:
        test = images.test
    return _Raw(x, y, *test, len(images.classes), flip=False, val=images.val)


DATASETS: dict[str, Callable[[Path, DataSettings], _Raw]] = {
    "digits": _digits,
    "cifar10": _cifar(10),
    "cifar100": _cifar(100),
    "svhn": _svhn,
    "caltech101": _caltech101,
}
