"""Compact checkpoints: a weight-pruned model's file follows its density, loads (weights_only)
into the same module (same outputs, same nonzero count), and the dense format written before
still loads; dense and filter-pruned models keep the dense format."""
from __future__ import annotations

import pytest
import torch

from hpo_prune import models
from hpo_prune.settings import TrialConfig
from hpo_prune.errors import UsageError
from hpo_prune.files import MODEL_FILE
from hpo_prune.pruning import count, magnitude_masks
from hpo_prune.training import compact
from hpo_prune.training.checkpoint import COMPACT, DENSE, load_model, read_model, save_model

SIZE = 16
SHAPE = (1, 3, SIZE, SIZE)
CONFIG = TrialConfig(model="mobilenet_v2", image_size=SIZE, prune_ratio=0.8)


def pruned_model(ratio: float) -> torch.nn.Module:
    torch.manual_seed(0)
    model = models.build("mobilenet_v2", 10, SIZE)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in magnitude_masks(model, ratio).items():
            params[name].mul_(mask)
    return model.eval()


def outputs(model: torch.nn.Module) -> torch.Tensor:
    x = torch.randn(4, *SHAPE[1:], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("numel", [1, 7, 8, 9, 1000])
def test_bits_pack_and_unpack(numel):
    mask = torch.rand(numel, generator=torch.Generator().manual_seed(numel)) > 0.5
    packed = compact.pack_bits(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == (numel + 7) // 8
    assert torch.equal(compact.unpack_bits(packed, numel), mask)


def test_round_trip_of_a_weight_pruned_model(tmp_path):
    model = pruned_model(0.8)
    for name in ("compact", "dense"):
        (tmp_path / name).mkdir()
    save_model(tmp_path / "compact", model, CONFIG, 10, SIZE)
    save_model(tmp_path / "dense", model, CONFIG, 10, SIZE, compact=False)
    blob = torch.load(tmp_path / "compact" / MODEL_FILE, weights_only=True)
    assert blob["format"] == COMPACT and "state_dict" not in blob and blob["compact"]
    saved = read_model(tmp_path / "compact")
    assert saved.format == COMPACT and saved.config == CONFIG and saved.image_size == SIZE
    old = load_model(tmp_path / "dense")  # the format written before: still read
    want, counted = outputs(model), count(model, SHAPE)
    for loaded in (saved.model, old):
        assert torch.equal(outputs(loaded), want)
        assert count(loaded, SHAPE) == counted
        for name, tensor in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[name], tensor), name
    small = (tmp_path / "compact" / MODEL_FILE).stat().st_size
    dense = (tmp_path / "dense" / MODEL_FILE).stat().st_size
    density = counted["params_nonzero"] / counted["params_total"]
    # 4 bytes a kept weight, 1 bit a weight for the mask, a little framing
    assert small < dense * (density + 1 / 32 + 0.03), (small, dense, density)


def test_size_follows_density(tmp_path):
    sizes = []
    for ratio in (0.5, 0.9):
        (tmp_path / str(ratio)).mkdir()
        save_model(tmp_path / str(ratio), pruned_model(ratio), CONFIG, 10, SIZE)
        sizes.append((tmp_path / str(ratio) / MODEL_FILE).stat().st_size)
    assert sizes[1] < 0.4 * sizes[0]


def test_a_dense_model_keeps_the_dense_format(tmp_path):
    model = pruned_model(0.0)
    save_model(tmp_path, model, CONFIG.replace(prune_ratio=0.0), 10, SIZE)
    blob = torch.load(tmp_path / MODEL_FILE, weights_only=True)
    assert blob["format"] == DENSE and set(blob["state_dict"]) == set(model.state_dict())
    assert torch.equal(outputs(load_model(tmp_path)), outputs(model))


def test_a_corrupt_compact_tensor_is_one_usage_error(tmp_path):
    save_model(tmp_path, pruned_model(0.8), CONFIG, 10, SIZE)
    path = tmp_path / MODEL_FILE
    blob = torch.load(path, weights_only=True)
    name = next(iter(blob["compact"]))
    blob["compact"][name]["values"] = blob["compact"][name]["values"][:-1]
    torch.save(blob, path)
    with pytest.raises(UsageError, match=f"compact tensor {name}: .* values for .* set bits"):
        load_model(tmp_path)
