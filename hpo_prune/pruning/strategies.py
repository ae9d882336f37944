"""The two granularities of pruning behind one interface, registered by name.

A strategy holds what it prunes and answers: scores of its units under a criterion (the
criteria are registered by name where they are computed: ``masks.WEIGHT_CRITERIA``,
``structured.FILTER_CRITERIA``), the units kept for a sparsity target, the masks that apply
them, how many prunable weights they keep, and (filters) the physical removal at the end.
``Pruner`` drives either one the same way. An unknown granularity or criterion is a
ValueError here; users meet their names first in the settings' checks
(``hpo_prune.resolution``).
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import prunable_layers
from .masks import weight_keep, weight_scores


def _lookup(registry: dict, name: str, what: str):
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}: use one of {', '.join(registry)}")
    return registry[name]


class WeightPruning:
    """Unstructured: one bool mask per prunable weight tensor; zeros stay in the model."""
    physical = False

    def __init__(self, model: nn.Module, input_shape, norm: int = 1, name: str = "the model"):
        self.model = model
        self.weights = {f"{n}.weight": m.weight for n, m in prunable_layers(model)}

    def scores(self, criterion: str, seed: int):
        return weight_scores(self.weights, criterion, seed)

    def keep(self, scores, target: float, scope: str, previous):
        return weight_keep(scores, target, scope, previous)

    def masks(self, keep) -> dict[str, torch.Tensor]:
        params = dict(self.model.named_parameters())
        return {k: v.to(params[k].device) for k, v in keep.items()}

    def kept(self, keep, masks: dict[str, torch.Tensor]) -> int:
        return sum(int(torch.count_nonzero(m)) for m in masks.values())

    def finish(self, keep) -> None:
        """Nothing to remove: the masked weights are zeros."""


class FilterPruning:
    """Structured: whole channels of coupled groups (Torch-Pruning's dependency graph), masked
    during training and removed for real at the end, so the model shrinks."""
    physical = True

    def __init__(self, model: nn.Module, input_shape, norm: int = 1, name: str = "the model"):
        from .groups import ChannelGroups

        self.model, self.norm = model, norm
        self.groups = ChannelGroups(model, tuple(input_shape), what=name)

    def scores(self, criterion: str, seed: int):
        from .structured import filter_scores

        return filter_scores(self.groups, criterion, self.norm, seed)

    def keep(self, scores, target: float, scope: str, previous):
        from .structured import filter_keep

        return filter_keep(self.groups, scores, target, scope, previous)

    def masks(self, keep) -> dict[str, torch.Tensor]:
        return self.groups.masks(keep)

    def kept(self, keep, masks: dict[str, torch.Tensor]) -> int:
        return self.groups.kept_prunable(keep)

    def finish(self, keep) -> None:
        self.groups.remove(keep)

    @property
    def left_alone(self) -> list[str]:
        """The prunable layers whose filters stay (``ChannelGroups.left_alone``), with why:
        metrics.json's ``filters_left_alone``."""
        return self.groups.left_alone


STRATEGIES: dict[str, type] = {"weight": WeightPruning, "filter": FilterPruning}


def strategy(granularity: str, model: nn.Module, input_shape, norm: int = 1,
             name: str = "the model"):
    """The strategy of ``granularity`` for ``model``."""
    return _lookup(STRATEGIES, granularity, "granularity")(model, input_shape, norm, name)
