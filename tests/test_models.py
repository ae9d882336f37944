"""Every model trains at 32 px for 10 and 100 classes; VGG's compact and classic heads have the
documented sizes; MobileNets downsample a 32 px input 8x (not 32x)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hpo_prune import models
from hpo_prune.errors import UsageError
from helpers import param_count


@pytest.mark.parametrize("classes", [10, 100])
@pytest.mark.parametrize("name", list(models.MODELS))
def test_forward_backward_at_32px(name, classes):
    torch.manual_seed(0)
    model = models.build(name, classes, 32)
    x = torch.randn(2, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, classes)
    head = models.classifier(model)
    assert head.out_features == classes
    nn.functional.cross_entropy(logits, torch.tensor([0, classes - 1])).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert head.weight.grad.abs().sum() > 0


def test_vgg16_compact_and_classic_heads():
    compact = models.build("vgg16", 10, 32, "compact")
    assert isinstance(compact.classifier, nn.Linear) and compact.classifier.in_features == 512
    assert param_count(compact) == 14_719_818  # 14.71M conv + 5,130 head: ~14.7M
    auto_small = models.build("vgg16", 10, 64)  # auto: compact up to 64 px
    assert param_count(auto_small) == param_count(compact)
    classic = models.build("vgg16", 10, 224)  # auto: classic above 64 px
    assert [m.out_features for m in classic.classifier if isinstance(m, nn.Linear)] == \
        [4096, 4096, 10]
    assert param_count(classic) == 134_301_514  # ~134M
    with torch.no_grad():  # the classic head also runs on 32 px inputs (pooled to 7x7)
        assert classic.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2"])
def test_mobilenet_strides_suit_small_inputs(name):
    def feature_size(image_size: int) -> int:
        model = models.build(name, 10, image_size).eval()
        features = model.forward_features if name == "mobilenet_v1" else model.features
        with torch.no_grad():
            return features(torch.randn(1, 3, image_size, image_size)).shape[-1]

    assert feature_size(32) == 4  # 8x downsampling for small inputs
    assert feature_size(128) == 4  # ImageNet strides (32x) above 64 px


def test_vgg_features_reach_1x1_at_32px():
    model = models.build("vgg16_bn", 10, 32).eval()
    with torch.no_grad():
        assert model.features(torch.randn(1, 3, 32, 32)).shape == (1, 512, 1, 1)


def test_seeded_build_is_deterministic():
    torch.manual_seed(5)
    a = models.build("mobilenet_v2", 10, 32).state_dict()
    torch.manual_seed(5)
    b = models.build("mobilenet_v2", 10, 32).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_model_is_usage_error():
    with pytest.raises(UsageError, match="unknown model 'resnet50'.*vgg16"):
        models.build("resnet50", 10, 32)


@pytest.mark.parametrize("name", ["vgg16", "vgg16_bn"])
def test_vgg_below_32px_is_usage_error(name):
    with pytest.raises(UsageError, match="at least 32 px"):
        models.build(name, 10, 16)


def test_mobilenets_run_at_16px():
    for name in ("mobilenet_v1", "mobilenet_v2"):
        model = models.build(name, 10, 16).eval()
        with torch.no_grad():
            assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)
