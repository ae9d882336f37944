"""Masks: magnitude (global / local, weight / filter) against independent computations, the
keep-one-per-layer rule, the random baseline, and bad input."""
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from hpo_prune import models
from hpo_prune.errors import UsageError
from hpo_prune.pruning import magnitude_masks, prunable_layers
from hpo_prune.pruning.masks import weight_keep, weight_scores


def _built(name, seed=0):
    torch.manual_seed(seed)
    return models.build(name, 10, 32)


def _reference(model, ratio, scope):
    """torch.nn.utils.prune's L1 masks on a copy of the model's prunable weights."""
    layers = [(m, "weight") for _, m in prunable_layers(model)]
    if scope == "global":
        prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=ratio)
    else:
        for m, name in layers:
            prune.l1_unstructured(m, name, amount=ratio)
    return {f"{n}.weight": m.weight_mask.bool() for n, m in prunable_layers(model)}


@pytest.mark.parametrize("scope", ["global", "local"])
def test_weight_masks_match_torch_prune(scope):
    model = _built("mobilenet_v2")
    masks = magnitude_masks(model, 0.5, granularity="weight", scope=scope)
    reference = _reference(model, 0.5, scope)
    assert masks.keys() == reference.keys()
    assert all(r.any() for r in reference.values())  # the keep-one rule is not in play
    for name, mask in masks.items():
        assert torch.equal(mask, reference[name]), name
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    if scope == "global":
        assert total - kept == round(0.5 * total)


def test_global_threshold_that_would_wipe_layers_keeps_one_weight_each():
    # at 70% a global L1 threshold removes four of MobileNetV2's depthwise layers entirely
    model = _built("mobilenet_v2")
    masks = magnitude_masks(model, 0.7, granularity="weight", scope="global")
    reference = _reference(model, 0.7, "global")
    wiped = [name for name, r in reference.items() if not r.any()]
    assert len(wiped) == 4 and all(".conv.1.0." in name for name in wiped)  # depthwise
    params = dict(model.named_parameters())
    for name in wiped:  # each keeps exactly its largest weight
        assert int(masks[name].sum()) == 1
        assert masks[name].flatten()[params[name.replace("weight", "weight_orig")]
                                     .abs().argmax()]
    # the threshold moved on: elsewhere ours keeps a subset, with one extra weight removed
    # per rescued layer, so the total removed is still round(0.7 * n)
    extra = 0
    for name, mask in masks.items():
        if name not in wiped:
            assert not (mask & ~reference[name]).any()
            extra += int((reference[name] & ~mask).sum())
    assert extra == len(wiped)
    total = sum(m.numel() for m in masks.values())
    assert total - sum(int(m.sum()) for m in masks.values()) == round(0.7 * total)


def test_classifier_is_never_prunable():
    model = _built("vgg16", 1)
    names = [n for n, _ in prunable_layers(model)]
    assert "classifier" not in names and len(names) == 13  # VGG16's 13 convolutions
    masks = magnitude_masks(model, 0.5)
    assert "classifier.weight" not in masks


def _tiny(scale_middle: float) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4))
    with torch.no_grad():
        model[2].weight.mul_(scale_middle)
    return model


def test_global_threshold_never_removes_a_whole_layer():
    model = _tiny(1e-6)  # the small middle layer's weights are below every other weight
    masks = magnitude_masks(model, 0.5, scope="global")
    middle = masks["2.weight"]
    assert int(middle.sum()) == 1  # it keeps exactly its largest weight ...
    assert middle.flatten()[model[2].weight.abs().argmax()]
    total = sum(m.numel() for m in masks.values())  # ... and the ratio is still met
    assert total - sum(int(m.sum()) for m in masks.values()) == round(0.5 * total)


def test_previous_masks_are_kept_so_sparsity_only_grows():
    model = _tiny(1.0)
    weights = {f"{n}.weight": m.weight for n, m in prunable_layers(model)}
    first = weight_keep(weight_scores(weights, "random", seed=3), 0.3, "global")
    second = weight_keep(weight_scores(weights, "random", seed=4), 0.6, "global", first)
    for name in first:
        assert not (second[name] & ~first[name]).any()  # nothing pruned comes back


def test_random_criterion_is_seeded():
    model = _tiny(1.0)
    weights = {f"{n}.weight": m.weight for n, m in prunable_layers(model)}

    def masks(seed):
        return weight_keep(weight_scores(weights, "random", seed), 0.5, "local")

    a, b, c = masks(0), masks(0), masks(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    magnitude = magnitude_masks(model, 0.5, scope="local")
    assert any(not torch.equal(a[k], magnitude[k]) for k in a)
    for k, m in a.items():
        assert m.numel() - int(m.sum()) == round(0.5 * m.numel())


def _filter_kept(mask):
    return mask.flatten(1).any(1)  # a filter survives if any of its weights does


def test_local_filter_masks_match_ln_structured_on_vgg():
    model = _built("vgg16", 2)
    masks = magnitude_masks(model, 0.5, granularity="filter", scope="local", norm=1)
    for name, layer in prunable_layers(model):
        ours = _filter_kept(masks[f"{name}.weight"])
        pruned = int((~ours).sum())
        assert 0 < pruned < layer.out_channels
        prune.ln_structured(layer, "weight", amount=pruned, n=1, dim=0)
        assert torch.equal(ours, _filter_kept(layer.weight_mask.bool())), name
        prune.remove(layer, "weight")
    # biases and the classifier's inputs of removed filters are masked with them
    last = _filter_kept(masks["features.28.weight"])
    assert torch.equal(masks["features.28.bias"], last)
    assert torch.equal(masks["classifier.weight"].any(0), last)


def test_global_filter_masks_drop_the_lowest_scored_filters():
    model = _built("vgg16_bn", 3)
    masks = magnitude_masks(model, 0.6, granularity="filter", scope="global", norm=2)
    kept_scores, dropped_scores = [], []
    total = kept_weights = 0
    for name, layer in prunable_layers(model):
        w = layer.weight.detach().flatten(1)
        score = w.pow(2).mean(1).sqrt()  # L2 norm / sqrt(size): comparable across layers
        kept = _filter_kept(masks[f"{name}.weight"])
        assert kept.any()
        best = score.argmax()
        assert kept[best]
        others = torch.ones_like(kept)
        others[best] = False
        kept_scores.append(score[kept & others])
        dropped_scores.append(score[~kept])
        total += layer.weight.numel()
        kept_weights += int(masks[f"{name}.weight"].sum())
    assert torch.cat(dropped_scores).max() <= torch.cat(kept_scores).min()
    assert 0.6 <= 1 - kept_weights / total < 0.61
    # BatchNorm affine parameters follow their filters
    first = _filter_kept(masks["features.0.weight"])
    assert torch.equal(masks["features.1.weight"], first)
    assert torch.equal(masks["features.1.bias"], first)


@pytest.mark.parametrize("kwargs, words", [
    ({"ratio": 1.0}, ["[0, 1)", "1.0"]),
    ({"ratio": -0.1}, ["-0.1"]),
    ({"ratio": 0.5, "granularity": "block"}, ["granularity 'block'", "weight, filter"]),
    ({"ratio": 0.5, "scope": "layer"}, ["scope 'layer'", "global, local"]),
    ({"ratio": 0.5, "norm": 3}, ["norm 3", "1, 2"]),
])
def test_bad_arguments_are_usage_errors(kwargs, words):
    with pytest.raises(UsageError) as err:
        magnitude_masks(_tiny(1.0), **kwargs)
    assert "\n" not in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_lamp_scores_rank_as_magnitude_within_a_layer_and_the_largest_scores_one():
    torch.manual_seed(0)
    w = torch.randn(64, 32, 3, 3)
    scores = weight_scores({"w": w}, "lamp")["w"]
    assert scores.flatten().argsort().equal(w.abs().flatten().argsort())
    assert scores.max().item() == pytest.approx(1.0)
    # the definition: w_u^2 / sum of w_v^2 over the weights at least as large
    sq = w.flatten().square()
    u = 5
    assert scores.flatten()[u].item() == pytest.approx(
        (sq[u] / sq[sq >= sq[u]].sum()).item(), rel=1e-5)


def test_lamp_keeps_a_thin_layer_that_global_magnitude_empties():
    """MobileNetV2's depthwise layers: global magnitude at 80% leaves them a weight or two
    (their init scale is small); global LAMP keeps a share of each of them."""
    model = _built("mobilenet_v2")
    weights = {f"{n}.weight": m.weight for n, m in prunable_layers(model)}
    depthwise = [k for k, w in weights.items() if w.shape[1] == 1 and w.shape[2] == 3]
    for criterion, floor in (("magnitude", None), ("lamp", 0.3)):
        keep = weight_keep(weight_scores(weights, criterion), 0.8, "global")
        assert sum(int(m.sum()) for m in keep.values()) == \
            sum(w.numel() for w in weights.values()) - round(0.8 * sum(
                w.numel() for w in weights.values()))
        densities = [keep[k].float().mean().item() for k in depthwise]
        if floor is None:
            assert min(densities) < 0.01
        else:
            assert min(densities) > floor


def test_the_bracketed_selection_matches_topk_on_a_large_tensor_with_ties():
    from hpo_prune.pruning.masks import _lowest_dropped

    torch.manual_seed(1)
    scores = torch.randn(3_000_000).abs()
    scores[:500_000] = -float("inf")  # already pruned
    scores[1_000_000:1_000_100] = 0.5  # ties at a likely threshold
    for k in (1, 500_000, 1_400_000, 2_999_999):
        kept = _lowest_dropped(scores, k)
        assert int((~kept).sum()) == k
        dropped = torch.topk(scores, k, largest=False).values
        assert torch.equal(scores[~kept].sort().values, dropped.sort().values)
