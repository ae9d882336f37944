"""Every dataset loads from files in its real on-disk format; splits are disjoint, stratified,
deterministic, and honour --val-fraction and --train-subset; a missing dataset is a UsageError."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from conftest import write_caltech101, write_cifar, write_svhn
from hpo_prune import TrialConfig
from hpo_prune.resolution import resolve_data
from hpo_prune.data import datasets
from hpo_prune.errors import UsageError


def _rows(x: torch.Tensor) -> list[bytes]:
    return [img.numpy().tobytes() for img in x]


def _chw(images_hwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images_hwc).permute(0, 3, 1, 2)


def _check_splits(data: datasets.Data, written: dict, val_fraction: float) -> None:
    """train + val are exactly the written training images (with their labels), disjoint,
    val is stratified with the requested fraction, and test is the written test split."""
    expected = dict(zip(_rows(_chw(written["train_x"])), written["train_y"].tolist()))
    train, val = _rows(data.train.x), _rows(data.val.x)
    assert not set(train) & set(val)
    assert sorted(train + val) == sorted(expected)
    for split, rows in ((data.train, train), (data.val, val)):
        assert [expected[r] for r in rows] == split.y.tolist()
    n, classes = len(expected), data.num_classes
    assert len(val) == int(np.ceil(val_fraction * n))
    per_class = torch.bincount(data.val.y, minlength=classes)
    assert per_class.max() - per_class.min() <= 1  # stratified: every class equally held out
    assert torch.equal(data.test.x, _chw(written["test_x"]))
    assert data.test.y.tolist() == written["test_y"].tolist()
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == torch.uint8 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == (3, 32, 32)


@pytest.mark.parametrize("classes", [10, 100])
def test_cifar_loads_python_pickles(tmp_path, monkeypatch, classes):
    written = write_cifar(tmp_path, classes, monkeypatch)
    config = TrialConfig(dataset=f"cifar{classes}", data_dir=str(tmp_path))
    data = datasets.load(resolve_data(config.data))
    assert data.num_classes == classes and data.flip and data.image_size == 32
    _check_splits(data, written, 0.1)
    again = datasets.load(resolve_data(config.data))
    assert torch.equal(again.train.x, data.train.x) and torch.equal(again.val.y, data.val.y)


def test_cifar10_val_fraction_and_split_seed(tmp_path, monkeypatch):
    written = write_cifar(tmp_path, 10, monkeypatch)
    config = TrialConfig(dataset="cifar10", data_dir=str(tmp_path), val_fraction=0.3)
    data = datasets.load(resolve_data(config.data))
    _check_splits(data, written, 0.3)
    assert torch.bincount(data.val.y).tolist() == [3] * 10
    other = datasets.load(resolve_data(config.replace(split_seed=1).data))
    assert _rows(other.val.x) != _rows(data.val.x)  # the seed picks the held-out images
    assert torch.equal(other.test.x, data.test.x)  # the official test split never moves


def test_svhn_loads_mat_files_and_maps_label_10_to_0(tmp_path, monkeypatch):
    written = write_svhn(tmp_path, monkeypatch)
    data = datasets.load(resolve_data(TrialConfig(dataset="svhn", data_dir=str(tmp_path)).data))
    assert data.num_classes == 10 and not data.flip  # flipping changes digits
    assert 0 in data.train.y.tolist() and 10 not in data.train.y.tolist()
    _check_splits(data, written, 0.1)


def test_caltech101_jpegs_resized_and_cached(tmp_path):
    layout = write_caltech101(tmp_path)
    config = TrialConfig(dataset="caltech101", data_dir=str(tmp_path))
    data = datasets.load(resolve_data(config.data))
    n = len(layout["classes"]) * layout["per_category"]  # BACKGROUND_Google is not a class
    assert data.num_classes == 3 and data.image_size == 64 and data.flip
    assert len(data.train) + len(data.val) + len(data.test) == n
    assert len(data.test) == int(np.ceil(0.2 * n))  # seeded stratified 20% test split
    per_class = torch.bincount(data.test.y)
    assert per_class.max() - per_class.min() <= 1
    grey = layout["classes"].index(layout["grey"])
    for split in (data.train, data.val, data.test):
        assert split.x.shape[1:] == (3, 64, 64) and split.x.dtype == torch.uint8
        for image, label in zip(split.x, split.y):  # greyscale JPEGs became 3 equal channels
            is_grey = bool((image[0] == image[1]).all() and (image[1] == image[2]).all())
            assert is_grey == (label == grey)
    cache = tmp_path / "caltech101" / "hpo_prune_64px.pt"
    assert cache.is_file()
    shutil.rmtree(tmp_path / "caltech101" / "101_ObjectCategories")  # only the cache is left
    cached = datasets.load(resolve_data(config.data))
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(cached, name).x, getattr(data, name).x)
        assert torch.equal(getattr(cached, name).y, getattr(data, name).y)


def test_caltech101_image_size_setting(tmp_path):
    write_caltech101(tmp_path)
    data = datasets.load(resolve_data(TrialConfig(dataset="caltech101", data_dir=str(tmp_path),
                                     image_size=32).data))
    assert data.train.x.shape[1:] == (3, 32, 32) and data.image_size == 32
    assert (tmp_path / "caltech101" / "hpo_prune_32px.pt").is_file()


def test_caltech101_without_background_folder_is_usage_error(tmp_path):
    write_caltech101(tmp_path)
    shutil.rmtree(tmp_path / "caltech101" / "101_ObjectCategories" / "BACKGROUND_Google")
    with pytest.raises(UsageError, match="BACKGROUND_Google"):
        datasets.load(resolve_data(TrialConfig(dataset="caltech101", data_dir=str(tmp_path)).data))


def test_digits_embedded_default():
    data = datasets.load(resolve_data(TrialConfig().data))
    assert data.name == "digits" and data.num_classes == 10 and not data.flip
    assert len(data.train) + len(data.val) + len(data.test) == 1797
    assert len(data.test) == 360 and len(data.val) == 288  # 20% test, then 20% of the rest val
    assert len(datasets.load(resolve_data(TrialConfig(val_fraction=0.1).data)).val) == 144  # an explicit fraction
    assert data.train.x.shape[1:] == (3, 32, 32) and data.train.x.dtype == torch.uint8
    assert torch.equal(data.train.x[:, 0], data.train.x[:, 2])  # grey, as RGB
    assert torch.bincount(data.test.y).min() >= 35  # stratified: ~36 per class
    rows = [set(_rows(s.x)) for s in (data.train, data.val, data.test)]
    # digits has a few duplicate images; the splits still share (almost) none
    assert len(rows[0] & rows[1]) + len(rows[0] & rows[2]) + len(rows[1] & rows[2]) < 10
    again = datasets.load(resolve_data(TrialConfig().data))
    assert torch.equal(again.val.x, data.val.x) and torch.equal(again.test.y, data.test.y)
    moved = datasets.load(resolve_data(TrialConfig(split_seed=1).data))  # --split-seed moves val, never test
    assert not torch.equal(moved.val.x, data.val.x) and torch.equal(moved.test.x, data.test.x)


@pytest.mark.parametrize("subset", [5, 64, 1148])
def test_train_subset_is_exact_and_stratified(subset):
    full = datasets.load(resolve_data(TrialConfig().data))
    data = datasets.load(resolve_data(TrialConfig(train_subset=subset).data))
    assert len(data.train) == subset
    counts = torch.bincount(data.train.y, minlength=10).float()
    share = torch.bincount(full.train.y, minlength=10).float() / len(full.train)
    assert (counts - share * subset).abs().max() <= 1.0
    assert set(_rows(data.train.x)) <= set(_rows(full.train.x))
    assert torch.equal(data.val.x, full.val.x)  # the subset never touches val or test


def test_stratified_split_disjoint_deterministic():
    y = torch.arange(10).repeat_interleave(20)
    kept, held = datasets.stratified_split(y, 0.25, seed=3, what="test")
    assert len(held) == 50 and len(kept) == 150
    assert not set(kept.tolist()) & set(held.tolist())
    assert sorted(kept.tolist() + held.tolist()) == list(range(200))
    assert torch.bincount(y[held]).tolist() == [5] * 10
    again = datasets.stratified_split(y, 0.25, seed=3, what="test")
    assert torch.equal(again[1], held)
    assert not torch.equal(datasets.stratified_split(y, 0.25, seed=4, what="test")[1], held)


def test_normalisation_statistics_from_train_split():
    data = datasets.load(resolve_data(TrialConfig(train_subset=200).data))
    pixels = data.train.x.float() / 255
    assert data.mean == pytest.approx(pixels.mean(dim=(0, 2, 3)).tolist(), abs=1e-5)
    assert data.std == pytest.approx(pixels.std(dim=(0, 2, 3)).tolist(), abs=1e-5)


@pytest.mark.parametrize("name, folder", [("cifar10", "cifar-10-batches-py"),
                                          ("cifar100", "cifar-100-python"),
                                          ("svhn", "svhn"), ("caltech101", "caltech101")])
def test_missing_dataset_names_directory_and_download_flag(tmp_path, name, folder):
    with pytest.raises(UsageError) as err:
        datasets.load(resolve_data(TrialConfig(dataset=name, data_dir=str(tmp_path)).data))
    message = str(err.value)
    assert str(tmp_path) in message and folder in message and "--download" in message
    assert "\n" not in message
    assert not any(tmp_path.iterdir())  # a failed load leaves no half-made folders


def test_unknown_dataset_is_usage_error():
    with pytest.raises(UsageError, match="unknown dataset 'mnist'"):
        datasets.load(resolve_data(TrialConfig(dataset="mnist").data))


def test_cifar_file_failing_its_checksum_is_usage_error(tmp_path, monkeypatch):
    write_cifar(tmp_path, 10, monkeypatch)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_3", "ab") as f:
        f.write(b"\0")  # torchvision's md5 check now fails
    with pytest.raises(UsageError, match="checksum"):
        datasets.load(resolve_data(TrialConfig(dataset="cifar10", data_dir=str(tmp_path)).data))
