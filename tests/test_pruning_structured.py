"""Filter pruning: the physically pruned model computes what the masked model computed and has
the parameter count the pruner reports, on all four networks; it saves and reloads."""
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from hpo_prune import models
from hpo_prune.training.checkpoint import load_model, save_model
from hpo_prune.settings import TrialConfig
from hpo_prune.errors import UsageError
from hpo_prune.pruning import Pruner, count, prunable_layers, reshape_like
from hpo_prune.resolution import resolve_trial
from helpers import param_count

SHAPE = (1, 3, 32, 32)


def _randomised(name: str, seed: int = 0) -> nn.Module:
    """A freshly built model with non-trivial BatchNorm statistics and classifier, so that
    masked and removed channels would show in the outputs if they were handled wrongly."""
    torch.manual_seed(seed)
    model = models.build(name, 10, 32)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        head = models.classifier(model)
        head.weight.normal_(0, 1)
    return model.eval()


def _prune(model, name, ratio, scope):
    config = resolve_trial(TrialConfig(model=name, prune_ratio=ratio, granularity="filter", scope=scope,
                         schedule="one_shot"))
    pruner = Pruner(model, config.prune, total_steps=1, input_shape=SHAPE, name=name)
    pruner.before_step()  # the only step: the window's end, so the full target
    pruner.after_step()
    return pruner


@pytest.mark.parametrize("name, ratio, scope", [
    ("vgg16", 0.5, "global"),
    ("vgg16_bn", 0.8, "local"),
    ("mobilenet_v1", 0.5, "local"),
    ("mobilenet_v2", 0.8, "global"),
    ("timm:resnet10t", 0.8, "global"),
    ("timm:convnext_atto", 0.5, "global"),  # layer scale tensors cut; LayerNorm groups stay
    ("torchvision:regnet_x_400mf", 0.3, "local"),  # grouped convolutions' groups stay
])
def test_removal_equals_masking(name, ratio, scope):
    model = _randomised(name)
    x = torch.randn(4, *SHAPE[1:], generator=torch.Generator().manual_seed(1))
    pruner = _prune(model, name, ratio, scope)
    with torch.no_grad():
        masked = model.eval()(x)
    dense_params = pruner.params_total
    pruned = pruner.finish()
    with torch.no_grad():
        physical = pruned.eval()(x)
    assert masked.abs().max() > 1e-2  # the outputs carry signal
    torch.testing.assert_close(physical, masked, rtol=1e-4, atol=1e-5)
    final = pruner.final_metrics()
    assert final["params_remaining"] == param_count(pruned) < dense_params
    kept = sum(m.weight.numel() for _, m in prunable_layers(pruned))
    assert 1 - kept / final["prunable_params"] == pytest.approx(final["achieved_sparsity"])
    assert ratio <= final["achieved_sparsity"] < ratio + 0.02
    assert final["macs_remaining"] == count(pruned, SHAPE)["macs_dense"] < final["macs_dense"]
    # no layer was pruned away, and the classifier still has all its classes
    assert all(m.weight.shape[0] >= 1 for _, m in prunable_layers(pruned))
    assert models.classifier(pruned).out_features == 10


def test_saved_filter_pruned_model_reloads_smaller(tmp_path):
    name = "mobilenet_v2"
    model = _randomised(name, seed=5)
    pruner = _prune(model, name, 0.6, "global")
    pruned = pruner.finish()
    config = TrialConfig(model=name, prune_ratio=0.6, granularity="filter")
    save_model(tmp_path, pruned, config, num_classes=10, image_size=32)
    loaded = load_model(tmp_path)
    assert param_count(loaded) == pruner.final_metrics()["params_remaining"]
    x = torch.randn(3, *SHAPE[1:], generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), pruned(x), rtol=0, atol=0)


def test_reshape_like_rejects_a_state_dict_of_another_model():
    small = _randomised("mobilenet_v1")
    _prune(small, "mobilenet_v1", 0.5, "global").finish()
    with pytest.raises(UsageError, match="saved tensor"):
        reshape_like(models.build("mobilenet_v1", 10, 32), {
            **small.state_dict(), "conv_stem.weight": torch.zeros(3, 3, 3, 3)}, SHAPE)
    with pytest.raises(UsageError, match="has no"):
        reshape_like(models.build("mobilenet_v2", 10, 32), small.state_dict(), SHAPE)


class _Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.grouped = nn.Conv2d(8, 8, 3, groups=2)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(self.grouped(self.conv(x)).mean((2, 3)))


class _Functional(nn.Module):
    """A layer used through its weight only: the dependency graph never sees it run."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.hidden = nn.Conv2d(8, 8, 3)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(F.conv2d(self.conv(x), self.hidden.weight).mean((2, 3)))


@pytest.mark.parametrize("model, words", [
    (_Grouped(), ["grouped convolution (groups=2)", "--granularity weight"]),
    (_Functional(), ["no prunable channel group for", "hidden.weight", "--granularity weight"]),
])
def test_unsupported_models_are_usage_errors(model, words):
    config = resolve_trial(TrialConfig(prune_ratio=0.5, granularity="filter"))
    with pytest.raises(UsageError) as err:
        Pruner(model, config.prune, total_steps=4, input_shape=(1, 3, 16, 16))
    assert "\n" not in str(err.value)
    for word in words:
        assert word in str(err.value)
    # weight pruning handles the same model
    Pruner(model, config.replace(granularity="weight", criterion="magnitude").prune, total_steps=4,
           input_shape=(1, 3, 16, 16))


@pytest.mark.parametrize("name, left, why", [
    ("timm:resnet10t", 0, ""),
    ("timm:convnext_atto", 28, "(LayerNorm2d)"),
    ("torchvision:regnet_x_400mf", 44, "a grouped convolution (groups="),
])
def test_layers_it_cannot_cut_are_left_alone_and_named(name, left, why):
    """A group coupled to a layer filter pruning cannot cut exactly stays whole: its layers
    keep every filter and metrics.json names them (filters_left_alone) with why."""
    model = _randomised(name)
    pruner = _prune(model, name, 0.3, "global")
    named = pruner.final_metrics()["filters_left_alone"]
    assert len(named) == left and all(why in line for line in named)
    before = {n: m.weight.shape[0] for n, m in prunable_layers(model)}
    pruner.finish()
    after = dict(prunable_layers(model))
    for line in named:
        layer = line.split(":")[0]
        assert after[layer].weight.shape[0] == before[layer]  # every filter stayed
