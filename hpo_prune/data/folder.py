"""Your own images: ``--dataset folder:PATH`` reads torchvision's ImageFolder layout.

    PATH/train/<class>/<image>     required; one folder per class (2 or more)
    PATH/val/<class>/<image>       optional: the val split (else carved out of train, seeded
                                   and stratified, by --val-fraction and --split-seed)
    PATH/test/<class>/<image>      optional: the test split (else 20% of train, stratified,
                                   seed 0, as for caltech101)

Files are listed by torchvision's ``ImageFolder`` (classes = the sorted sub-folders of
``train/``; val and test must hold the same classes). Each image is decoded once with PIL,
converted to RGB, resized (shorter side to the image size, then a centre crop) and cached as
uint8 tensors in ``PATH/.hpo_prune/``, keyed by a digest of every file's path, size and
modification time and the image size: a changed folder is read again, never served stale.
A file that is not a readable image is skipped and counted; a class left without images is an
error. The dataset's name in studies and reports is the folder's name (``label``).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UsageError, check
from ..files import atomic_write, slug

PREFIX = "folder:"
SPLITS = ("train", "val", "test")
CACHE_DIR = ".hpo_prune"
DEFAULT_SIZE = 64  # --image-size 0 of a folder: photos are larger than CIFAR's 32 px
PROGRESS_EVERY = 10.0  # seconds between progress lines while decoding


def is_folder(name: str) -> bool:
    return name.startswith(PREFIX)


def path_of(name: str) -> Path:
    return Path(name[len(PREFIX):]).expanduser()


def canonical(name: str) -> str:
    """``folder:PATH`` with PATH absolute (the records name the folder the trials read)."""
    return PREFIX + str(path_of(name).resolve()) if is_folder(name) else name


def label(name: str) -> str:
    """The dataset's name in study names and reports: the folder's name (letters, digits, '-'
    and '_'), or the registered name itself."""
    if not is_folder(name):
        return name
    return slug(path_of(name).resolve().name) or "folder"


def check_folder(name: str) -> None:
    """A UsageError unless ``folder:PATH`` names a folder with train/ and 2 or more classes."""
    root = path_of(name)
    fix = "give a folder holding train/<class>/<image> (torchvision's ImageFolder layout)"
    check(root.is_dir(), f"--dataset {name}: {root} is not a folder; {fix}")
    check((root / "train").is_dir(), f"--dataset {name}: {root} has no train/ folder; {fix}")
    classes = _classes(root / "train")
    check(len(classes) >= 2, f"--dataset {name}: {root / 'train'} holds {len(classes)} class "
          f"folder(s); a classifier needs 2 or more: {fix}")


def _classes(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


@dataclass
class FolderImages:
    """The decoded splits: (x uint8 (N, 3, S, S), y int64) each; val / test None when the
    folder has none."""
    classes: list[str]
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor] | None
    test: tuple[torch.Tensor, torch.Tensor] | None
    skipped: int  # files that were not readable images


def read(name: str, size: int, log=print) -> FolderImages:
    """Every split of ``folder:PATH`` at ``size`` px, from the cache when it is current."""
    check_folder(name)
    root = path_of(name).resolve()
    classes = _classes(root / "train")
    files = {split: _files(root / split, classes, split)
             for split in SPLITS if (root / split).is_dir()}
    digest = _digest(root, files, size)
    cache = root / CACHE_DIR / f"{digest}.pt"
    if cache.exists():
        try:
            blob = torch.load(cache, weights_only=True)
            return _images(blob, classes)
        except Exception as err:  # unreadable: decode again
            log(f"warning: decoding again: unreadable cache {cache} ({err})")
    decoded, skipped = {}, 0
    total = sum(len(f) for f in files.values())
    started, last = time.time(), time.time()
    done = 0
    for split, listed in files.items():
        xs, ys = [], []
        for path, target in listed:
            image = _decode(path, size)
            done += 1
            if time.time() - last >= PROGRESS_EVERY:
                last = time.time()
                log(f"{label(name)}: decoded {done}/{total} images "
                    f"({time.time() - started:.0f}s)")
            if image is None:
                skipped += 1
                continue
            xs.append(image)
            ys.append(target)
        y = torch.tensor(ys, dtype=torch.int64)
        empty = [c for i, c in enumerate(classes) if not (y == i).any()]
        if empty:
            raise UsageError(f"--dataset {name}: class {empty[0]!r} of {split}/ holds no "
                             f"readable image: add images to {root / split / empty[0]} or "
                             "remove the class folder")
        decoded[split] = (torch.stack(xs), y)
    blob = {"classes": classes, "skipped": skipped,
            **{f"{split}_{part}": tensor for split, (x, y) in decoded.items()
               for part, tensor in (("x", x), ("y", y))}}
    try:
        cache.parent.mkdir(exist_ok=True)
        for stale in cache.parent.glob(f"{size}px-*.pt"):  # the folder's older contents
            stale.unlink()
        atomic_write(cache, lambda tmp: torch.save(blob, tmp))
    except OSError as err:  # a read-only folder: decoded again next time
        log(f"warning: cannot cache the decoded images in {cache.parent} ({err.strerror})")
    if skipped:
        log(f"{label(name)}: skipped {skipped} file(s) that are not readable images")
    log(f"{label(name)}: {total - skipped} images of {len(classes)} classes decoded once at "
        f"{size} px ({time.time() - started:.1f}s), cached in {cache}")
    return _images(blob, classes)


def _files(folder: Path, classes: list[str], split: str) -> list[tuple[Path, int]]:
    """(file, class index) of every file under ``folder``'s class folders, as ImageFolder
    lists them (every file counts here; the unreadable ones are skipped when decoded)."""
    from torchvision.datasets import ImageFolder

    found = _classes(folder)
    check(found == classes, f"{folder} holds the classes {', '.join(found) or 'none'}, but "
          f"train/ holds {', '.join(classes)}: give {split}/ the same class folders")
    listing = ImageFolder(str(folder), is_valid_file=lambda path: not Path(path).name
                          .startswith("."), allow_empty=True)
    return [(Path(path), target) for path, target in listing.samples]


def _digest(root: Path, files: dict, size: int) -> str:
    h = hashlib.sha256(f"{size}".encode())
    for split, listed in files.items():
        for path, target in listed:
            stat = path.stat()
            h.update(f"{split}/{path.relative_to(root)}:{target}:{stat.st_size}:"
                     f"{stat.st_mtime_ns}\n".encode())
    return f"{size}px-{h.hexdigest()[:16]}"


def _decode(path: Path, size: int) -> torch.Tensor | None:
    """The image at ``path`` as uint8 (3, size, size): RGB, shorter side resized to ``size``,
    centre-cropped; None when it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return square(image, size)


def square(image, size: int) -> torch.Tensor:
    """A PIL image as uint8 (3, size, size): RGB, shorter side resized to ``size``, then
    centre-cropped (the one rule for decoded photos: folders and caltech101)."""
    from torchvision.transforms import functional as TF

    image = TF.center_crop(TF.resize(image.convert("RGB"), size), [size, size])
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def _images(blob: dict, classes: list[str]) -> FolderImages:
    check(list(blob["classes"]) == classes, "cache out of date")
    split = {s: (blob[f"{s}_x"], blob[f"{s}_y"]) if f"{s}_x" in blob else None
             for s in SPLITS}
    return FolderImages(classes, split["train"], split["val"], split["test"],
                        int(blob["skipped"]))
