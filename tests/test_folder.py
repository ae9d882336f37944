"""--dataset folder:PATH: an image folder in torchvision's ImageFolder layout, written here as
real PNG / JPEG files (RGB and greyscale, of several sizes), read, split, cached and re-read
when it changes; the bad folders exit with one clear line."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hpo_prune.data import datasets, folder
from hpo_prune.resolution import resolve_data
from hpo_prune.errors import UsageError
from hpo_prune.settings import DataSettings
from helpers import write_bad_folder, write_folder

def load(root: Path, **kwargs):
    return datasets.load(resolve_data(DataSettings(dataset=f"folder:{root}", **kwargs)))


def test_a_folder_is_read_split_and_sized(tmp_path):
    root = write_folder(tmp_path / "pets", per_class=10)
    data = load(root, image_size=24, val_fraction=0.25)
    assert data.num_classes == 3 and data.image_size == 24
    # 30 readable images: 20% test (6), then 25% of the other 24 as val (6), stratified
    assert (len(data.train), len(data.val), len(data.test)) == (18, 6, 6)
    for split in (data.train, data.val, data.test):
        assert split.x.shape[1:] == (3, 24, 24) and split.x.dtype == torch.uint8
        assert torch.bincount(split.y, minlength=3).min() >= 2  # every class in every split
    # the classes are the sorted folder names, and their images differ as written
    means = [data.train.x[data.train.y == k].float().mean() for k in range(3)]
    assert means[0] < means[1] < means[2]
    cache = list((root / folder.CACHE_DIR).glob("*.pt"))
    assert len(cache) == 1 and torch.load(cache[0], weights_only=True)["skipped"] == 2
    # the default size of a folder: 64 px
    assert load(root).image_size == 64 and datasets.defaults(f"folder:{root}").image_size == 64


def test_the_folders_own_val_and_test_splits_are_used(tmp_path):
    root = write_folder(tmp_path / "pets", per_class=4, splits=("train", "val", "test"),
                        junk=False)
    data = load(root, image_size=16)
    assert (len(data.train), len(data.val), len(data.test)) == (12, 12, 12)
    subset = load(root, image_size=16, train_subset=6)
    assert len(subset.train) == 6 and len(subset.val) == 12


def test_the_cache_is_used_and_a_changed_folder_is_read_again(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "pets", per_class=10)
    first = load(root, image_size=16, val_fraction=0.25)
    monkeypatch.setattr(folder, "_decode", lambda *a: pytest.fail("decoded again"))
    again = load(root, image_size=16, val_fraction=0.25)
    assert torch.equal(first.train.x, again.train.x)
    monkeypatch.undo()
    extra = root / "train" / "dog" / "extra.png"
    Image.fromarray(np.full((30, 30, 3), 120, np.uint8)).save(extra)
    changed = load(root, image_size=16, val_fraction=0.25)
    assert len(changed.train) + len(changed.val) + len(changed.test) == 31
    assert len(list((root / folder.CACHE_DIR).glob("16px-*.pt"))) == 1  # the stale one went
    os.utime(extra, ns=(0, 0))  # the same names and sizes, another file time: read again
    calls = []
    real = folder._decode
    monkeypatch.setattr(folder, "_decode", lambda *a: calls.append(1) or real(*a))
    load(root, image_size=16, val_fraction=0.25)
    assert len(calls) == 33  # every file, the two unreadable ones too


@pytest.mark.parametrize("case", ["missing", "no_train", "one_class", "empty_class",
                                  "other_classes"])
def test_bad_folders_are_refused_with_one_line(tmp_path, case):
    root = write_bad_folder(tmp_path / "pets", case)
    with pytest.raises(UsageError) as err:
        load(root, image_size=16)
    text = str(err.value)
    assert "\n" not in text
    assert {"missing": "is not a folder", "no_train": "has no train/ folder",
            "one_class": "holds 1 class folder(s)",
            "empty_class": "class 'fox' of train/ holds no readable image",
            "other_classes": "give val/ the same class folders"}[case] in text
    assert not (root / folder.CACHE_DIR).exists()  # nothing half-made


def test_export_folder_writes_digits_in_the_imagefolder_layout(tmp_path):
    from hpo_prune.data import export_folder

    counts = export_folder.write(tmp_path / "digits_png")
    assert counts == {"train": 1437, "test": 360}
    assert sorted(p.name for p in (tmp_path / "digits_png" / "train").iterdir()) == [
        f"{k:03d}" for k in range(10)]
    data = load(tmp_path / "digits_png", image_size=32, val_fraction=0.2)
    digits = datasets.load(resolve_data(DataSettings(dataset="digits", val_fraction=0.2)))
    assert (len(data.train), len(data.val), len(data.test)) == (len(digits.train),
                                                                len(digits.val),
                                                                len(digits.test))
    # the same test images (written in class order)
    order = torch.argsort(digits.test.y, stable=True)
    assert torch.equal(data.test.x, digits.test.x[order])
    assert folder.label(f"folder:{tmp_path / 'digits_png'}") == "digits_png"
