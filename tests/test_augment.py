"""Batch-wise augmentation on tensors: shapes and dtypes kept, crops are real windows of the
padded image, flips only when enabled, seeded generators repeat, normalisation standardises."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from hpo_prune.resolution import resolve_data
from hpo_prune import TrialConfig
from hpo_prune.data import datasets
from hpo_prune.data.augment import BatchTransform

CPU = torch.device("cpu")


def _batch(n: int = 32, size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(0),
                         dtype=torch.uint8)


def _identity(flip: bool, pad: int) -> BatchTransform:
    """mean 0, std 1/255: the output, rounded, is the augmented uint8 image."""
    t = BatchTransform((0.0, 0.0, 0.0), (1 / 255,) * 3, flip=flip, pad=pad, device=CPU)
    return lambda x, generator=None: t(x, generator).round().to(torch.uint8)


def test_shapes_and_dtypes_kept():
    x = _batch()
    for flip in (False, True):
        t = BatchTransform((0.5, 0.4, 0.3), (0.2, 0.2, 0.2), flip=flip, pad=4, device=CPU)
        for generator in (None, torch.Generator().manual_seed(1)):
            out = t(x, generator)
            assert out.shape == x.shape and out.dtype == torch.float32
    assert x.dtype == torch.uint8  # the stored data is untouched


def test_crop_is_a_window_of_the_zero_padded_image():
    x, pad = _batch(16), 4
    out = _identity(flip=False, pad=pad)(x, torch.Generator().manual_seed(2))
    padded = F.pad(x, (pad,) * 4)
    offsets = set()
    for image, crop in zip(padded, out):
        found = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                 if torch.equal(image[:, dy:dy + 32, dx:dx + 32], crop)]
        assert found, "a crop must be a 32x32 window of the padded image"
        offsets.add(found[0])
    assert len(offsets) > 4  # offsets vary across the batch


def test_seeded_generator_repeats_and_seeds_differ():
    x = _batch()
    t = BatchTransform((0.5,) * 3, (0.25,) * 3, flip=True, pad=4, device=CPU)
    a = t(x, torch.Generator().manual_seed(7))
    b = t(x, torch.Generator().manual_seed(7))
    c = t(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_flip_only_when_enabled():
    x = _batch(64)
    no_flip = _identity(flip=False, pad=0)(x, torch.Generator().manual_seed(3))
    assert torch.equal(no_flip, x)  # no pad, no flip: nothing changes
    flipped = _identity(flip=True, pad=0)(x, torch.Generator().manual_seed(3))
    mirrored = [torch.equal(o, i.flip(2)) for o, i in zip(flipped, x)]
    kept = [torch.equal(o, i) for o, i in zip(flipped, x)]
    assert all(m or k for m, k in zip(mirrored, kept))
    assert 16 < sum(mirrored) < 48  # about half of the batch is mirrored


def test_no_augmentation_without_generator():
    x = _batch()
    t = _identity(flip=True, pad=4)
    assert torch.equal(t(x), x)


def test_normalisation_standardises_the_train_split():
    data = datasets.load(resolve_data(TrialConfig(train_subset=300).data))
    t = BatchTransform(data.mean, data.std, data.flip, pad=4, device=CPU)
    out = t(data.train.x)
    assert out.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (out.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    val = t(data.val.x)  # other splits use the train statistics: close, not exact
    assert val.mean(dim=(0, 2, 3)).abs().max() < 0.2
