"""``magnitude_masks``: the masks that remove a fraction of a model's prunable weights by
magnitude, at either granularity (weights, or whole filters with their coupled slices)."""
from __future__ import annotations

import torch
from torch import nn

from .groups import ChannelGroups
from ..settings import PruneSettings
from ..settings.fields import check_choices
from .layers import prunable_layers
from .masks import weight_keep, weight_scores
from .structured import filter_keep, filter_scores


def magnitude_masks(model: nn.Module, ratio: float, granularity: str = "weight",
                    scope: str = "global", norm: int = 1,
                    input_shape=None) -> dict[str, torch.Tensor]:
    """Masks ``{parameter name: bool tensor}`` (True = kept) that remove ``ratio`` of the
    prunable weights of ``model`` by magnitude, computed from its current weights.

    ``weight``: one mask per prunable weight. ``filter``: filters ranked by their L``norm``
    norm, removed with all their coupled slices, so masks cover every parameter the removal
    touches (next layers' inputs, BatchNorm, biases); ``input_shape`` (default one 32x32
    image) is only used to trace the model.
    """
    settings = PruneSettings(prune_ratio=ratio, granularity=granularity, scope=scope, norm=norm)
    check_choices(settings, flags=str)  # the settings' own checks: the one home of each rule
    settings.check(flags=str)
    if granularity == "filter":
        groups = ChannelGroups(model, input_shape)
        keep = filter_keep(groups, filter_scores(groups, "magnitude", norm), ratio, scope)
        return groups.masks(keep)
    weights = {f"{name}.weight": m.weight for name, m in prunable_layers(model)}
    return weight_keep(weight_scores(weights, "magnitude"), ratio, scope)
