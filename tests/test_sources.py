"""Init regimes: ImageNet weights from the torch hub / Hugging Face caches and checkpoints from
a path load by name and shape, the new head keeps its seeded init, the counts are recorded, and
unreadable or incompatible checkpoints are UsageErrors."""
from __future__ import annotations

import pytest
import torch

from hpo_prune import TrialConfig, models, sources
from hpo_prune.errors import UsageError
from hpo_prune.resolution import resolve_trial
from helpers import param_count

TIMM_NAME = "mobilenetv1_100.ra4_e3600_r224_in1k"


def _pretrained(model: str, source: str) -> TrialConfig:
    return TrialConfig(dataset="cifar10", model=model, init="pretrained", source=source)


def _fresh(name: str, classes: int = 10):
    torch.manual_seed(0)
    model = models.build(name, classes, 32)
    return model, {k: v.clone() for k, v in model.state_dict().items()}


def _check_loaded(model, fresh: dict, weights: dict, info: dict, head: list[str]) -> None:
    """Everything but the head comes from `weights`; the head keeps its fresh init."""
    state = model.state_dict()
    assert info["not_loaded"] == head
    assert info["tensors_total"] == len(state)
    assert info["tensors_loaded"] == len(state) - len(head)
    head_params = sum(state[k].numel() for k in head)
    assert info["params_loaded"] == param_count(model) - head_params
    for key in state:
        expected = fresh[key] if key in head else weights[key]
        assert torch.equal(state[key], expected), key


def test_imagenet_from_torch_hub_cache(imagenet_mobilenet_v2):
    model, fresh = _fresh("mobilenet_v2")
    info = sources.initialise(model, _pretrained("mobilenet_v2", "imagenet"))
    assert info["regime"] == "pretrained" and info["source"] == "imagenet"
    _check_loaded(model, fresh, imagenet_mobilenet_v2["state"], info,
                  ["classifier.1.weight", "classifier.1.bias"])


def test_dataset_default_source_is_imagenet(imagenet_mobilenet_v2):
    config = TrialConfig(dataset="cifar10", model="mobilenet_v2", init="pretrained")
    assert resolve_trial(config).weights.source == "imagenet"
    model, _ = _fresh("mobilenet_v2")
    assert sources.initialise(model, config)["tensors_loaded"] > 0


def _timm_weights() -> dict:
    import timm

    torch.manual_seed(99)
    return timm.create_model("mobilenetv1_100", pretrained=False, num_classes=1000).state_dict()


def test_timm_imagenet_from_torch_hub_cache(torch_home):
    from safetensors.torch import save_file

    weights = _timm_weights()
    save_file(weights, str(torch_home / "hub" / "checkpoints" / f"{TIMM_NAME}.safetensors"))
    model, fresh = _fresh("mobilenet_v1", classes=100)
    info = sources.initialise(model, _pretrained("mobilenet_v1", "imagenet"))
    _check_loaded(model, fresh, weights, info, ["classifier.weight", "classifier.bias"])


def test_timm_imagenet_from_hugging_face_cache(torch_home, tmp_path, monkeypatch):
    """timm's own cache: the Hugging Face hub layout (refs/main -> snapshots/<commit>/)."""
    import huggingface_hub.constants
    from safetensors.torch import save_file

    cache = tmp_path / "hf"
    repo = cache / f"models--timm--{TIMM_NAME}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    weights = _timm_weights()
    save_file(weights, str(repo / "snapshots" / commit / "model.safetensors"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    model, fresh = _fresh("mobilenet_v1")
    info = sources.initialise(model, _pretrained("mobilenet_v1", "imagenet"))
    _check_loaded(model, fresh, weights, info, ["classifier.weight", "classifier.bias"])


@pytest.mark.parametrize("wrapped", [False, True])
def test_checkpoint_from_a_path(tmp_path, wrapped):
    torch.manual_seed(3)
    weights = models.build("mobilenet_v2", 1000, 224).state_dict()
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": weights, "epoch": 7} if wrapped else weights, path)
    model, fresh = _fresh("mobilenet_v2")
    info = sources.initialise(model, _pretrained("mobilenet_v2", str(path)))
    assert info["source"] == str(path)
    _check_loaded(model, fresh, weights, info, ["classifier.1.weight", "classifier.1.bias"])


def test_scratch_loads_nothing():
    model, fresh = _fresh("mobilenet_v2")
    info = sources.initialise(model, TrialConfig(model="mobilenet_v2"))
    assert info["tensors_loaded"] == 0 and info["params_loaded"] == 0
    assert info["not_loaded"] == list(fresh)
    assert all(torch.equal(v, fresh[k]) for k, v in model.state_dict().items())


def test_unreadable_checkpoint_is_usage_error(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"this is not a checkpoint")
    model, _ = _fresh("mobilenet_v2")
    with pytest.raises(UsageError, match="cannot read checkpoint"):
        sources.initialise(model, _pretrained("mobilenet_v2", str(path)))


def test_checkpoint_of_another_architecture_is_usage_error(tmp_path):
    path = tmp_path / "v1.pt"
    torch.save(_timm_weights(), path)
    model, _ = _fresh("mobilenet_v2")
    with pytest.raises(UsageError, match="does not fit mobilenet_v2"):
        sources.initialise(model, _pretrained("mobilenet_v2", str(path)))


def test_checkpoint_without_tensors_is_usage_error(tmp_path):
    path = tmp_path / "empty.pt"
    torch.save({"epoch": 3, "note": "no weights"}, path)
    model, _ = _fresh("mobilenet_v2")
    with pytest.raises(UsageError, match="no state dict of tensors"):
        sources.initialise(model, _pretrained("mobilenet_v2", str(path)))


def test_pickled_objects_are_refused(tmp_path):
    """weights_only=True: a checkpoint that would run arbitrary code is not loaded."""
    path = tmp_path / "module.pt"
    torch.save(models.build("mobilenet_v2", 10, 32), path)  # a whole pickled module
    model, _ = _fresh("mobilenet_v2")
    with pytest.raises(UsageError, match="cannot read checkpoint"):
        sources.initialise(model, _pretrained("mobilenet_v2", str(path)))


def test_unknown_source_is_usage_error(tmp_path):
    model, _ = _fresh("mobilenet_v2")
    with pytest.raises(UsageError, match="unknown source"):
        sources.initialise(model, _pretrained("mobilenet_v2", str(tmp_path / "missing.pt")))


def test_corrupt_cached_imagenet_file_is_usage_error(torch_home):
    path = torch_home / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    path.write_bytes(b"truncated download")
    model, _ = _fresh("mobilenet_v2")
    with pytest.raises(UsageError, match="cannot read ImageNet weights.*delete it"):
        sources.initialise(model, _pretrained("mobilenet_v2", "imagenet"))
