"""What is prunable, and the pruning criteria.

Prunable = every Conv2d and Linear layer except the final classifier; their ``weight`` tensors
are the prunable parameters (biases, BatchNorm and the classifier are counted, never pruned).
"""
from __future__ import annotations

from torch import nn

from ..models import classifier
from .masks import WEIGHT_CRITERIA

CRITERIA = tuple(WEIGHT_CRITERIA)  # every criterion's name (filters take a subset)


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(name, layer)]`` of every Conv2d and Linear except the final classifier."""
    head = classifier(model)
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m is not head]

