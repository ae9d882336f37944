"""--model timm:NAME / torchvision:NAME: any classifier of those libraries, built with the
dataset's classes, pruned generically (weights and filters), its ImageNet weights read from
the library's own cache layout, and the bad names refused with the closest ones."""
from __future__ import annotations

import pytest
import torch

from hpo_prune import library_models, models
from hpo_prune.errors import UsageError
from hpo_prune.pruning import magnitude_masks
from hpo_prune.pruning.counting import count
from hpo_prune.pruning.layers import prunable_layers
from hpo_prune.resolution import check_names, resolve_trial
from hpo_prune.settings import TrialConfig

SMALL = ("timm:resnet10t", "torchvision:mobilenet_v3_small")


@pytest.mark.parametrize("name", SMALL)
def test_the_library_builds_it_with_a_head_for_the_classes(name):
    torch.manual_seed(0)
    model = models.build(name, 7, 32)
    head = models.classifier(model)
    assert isinstance(head, torch.nn.Linear) and head.out_features == 7
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    layers = prunable_layers(model)
    assert head not in [layer for _, layer in layers]
    assert all(isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)) for _, layer in layers)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and min(m.momentum for m in norms) >= library_models.BN_MOMENTUM
    total = sum(p.numel() for p in model.parameters())
    assert count(model, (1, 3, 32, 32))["params_total"] == total


@pytest.mark.parametrize("name", SMALL)
def test_weight_and_filter_pruning_shrink_it(name):
    torch.manual_seed(0)
    model = models.build(name, 5, 32)
    masks = magnitude_masks(model, 0.8)
    kept = sum(int(m.sum()) for m in masks.values())
    assert abs(1 - kept / sum(m.numel() for m in masks.values()) - 0.8) < 0.01
    filters = magnitude_masks(model, 0.5, granularity="filter", input_shape=(1, 3, 32, 32))
    assert filters and all(m.dtype == torch.bool for m in filters.values())
    assert 0.3 < 1 - sum(int(m.sum()) for m in filters.values()) / sum(
        m.numel() for m in filters.values()) < 0.7


def test_the_generic_recipe_space_and_criterion():
    config = resolve_trial(TrialConfig(model="timm:resnet10t", prune_ratio=0.5))
    assert (config.train.optimizer, config.train.lr) == ("adamw", models.recipe(
        "timm:resnet10t", "scratch")["lr"])
    assert config.prune.criterion == "lamp"
    from hpo_prune.search.studies import space as spaces

    assert spaces.load(None, "timm:resnet10t").path.name == "generic.yaml"
    assert spaces.load("filter_generic", "torchvision:resnet18").fixed["granularity"] == "filter"


@pytest.mark.parametrize("name, expected", [
    ("timm:resnet1", "did you mean timm:resnet18"),
    ("torchvision:resnt18", "did you mean torchvision:resnet18"),
])
def test_an_unknown_name_suggests_the_closest(name, expected):
    with pytest.raises(UsageError) as err:
        check_names(TrialConfig(model=name))
    assert expected in str(err.value) and "(--model)" in str(err.value)


def test_a_model_without_a_linear_classifier_or_too_small_an_input_is_refused():
    with pytest.raises(UsageError, match="its classifier cannot be found"):
        models.build("torchvision:squeezenet1_0", 5, 64)
    with pytest.raises(UsageError, match="does not take 32 px inputs.*--image-size"):
        models.build("timm:vit_tiny_patch16_224", 5, 32)


def test_torchvision_imagenet_weights_load_from_torch_hubs_cache(torch_home):
    from torchvision.models import get_model_weights

    config, imagenet = not_cached_yet("torchvision:mobilenet_v3_small",
                                      "place mobilenet_v3_small-.*pth .*checkpoints")
    url = get_model_weights("mobilenet_v3_small").DEFAULT.url
    torch.save(imagenet, torch_home / "hub" / "checkpoints" / url.rsplit("/", 1)[-1])
    loaded_but_the_head(config, imagenet, "classifier.3", "features.0.0.weight")


def test_timm_imagenet_weights_load_from_the_hugging_face_cache(tmp_path, monkeypatch,
                                                                 torch_home):
    import huggingface_hub
    from safetensors.torch import save_file

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    config, imagenet = not_cached_yet("timm:resnet10t", "place resnet10t.c3_in1k.safetensors")
    repo = tmp_path / "hf" / "models--timm--resnet10t.c3_in1k"  # the hub's cache layout
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    save_file({k: v.contiguous() for k, v in imagenet.items()},
              str(snapshot / "model.safetensors"))
    loaded_but_the_head(config, imagenet, "fc", "conv1.0.weight")


def not_cached_yet(model: str, error: str) -> tuple[TrialConfig, dict]:
    """The pretrained regime's config of ``model``, checked to fail with ``error`` while its
    ImageNet file is missing, and a 1000-class state dict of it to put there."""
    config = resolve_trial(TrialConfig(model=model, init="pretrained", source="imagenet",
                                 image_size=32))
    with pytest.raises(UsageError, match=error):
        library_models.imagenet_file(model)
    torch.manual_seed(3)
    return config, models.build(model, 1000, 32).state_dict()


def loaded_but_the_head(config: TrialConfig, imagenet: dict, head: str, first: str) -> None:
    """The pretrained regime loads every tensor of ``imagenet`` but the 1000-class ``head``."""
    from hpo_prune.sources import initialise

    model = models.build(config.net.model, 10, 32)
    info = initialise(model, config)
    assert info["tensors_loaded"] == info["tensors_total"] - 2  # all but the new head
    assert sorted(info["not_loaded"]) == [f"{head}.bias", f"{head}.weight"]
    assert torch.equal(model.state_dict()[first], imagenet[first])
