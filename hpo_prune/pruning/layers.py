"""What is prunable, and the accepted pruning settings.

Prunable = every Conv2d and Linear layer except the final classifier; their ``weight`` tensors
are the prunable parameters (biases, BatchNorm and the classifier are counted, never pruned).
"""
from __future__ import annotations

from torch import nn

from ..errors import UsageError
from ..models import classifier

GRANULARITIES = ("weight", "filter")
SCOPES = ("global", "local")
CRITERIA = ("magnitude", "lamp", "random")


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(name, layer)]`` of every Conv2d and Linear except the final classifier."""
    head = classifier(model)
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m is not head]


def check_choice(what: str, value, accepted: tuple) -> None:
    if value not in accepted:
        raise UsageError(f"unknown {what} {value!r}: use one of "
                         f"{', '.join(map(str, accepted))}")


def check_ratio(ratio: float) -> None:
    if not 0 <= ratio < 1:
        raise UsageError(f"pruning ratio must be in [0, 1), got {ratio}")
