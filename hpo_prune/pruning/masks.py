"""What is prunable, how weights are scored (magnitude or random) and how a sparsity target
becomes masks (global or local scope), for unstructured (weight) pruning.

Prunable = every Conv2d and Linear layer except the final classifier; their ``weight`` tensors
are the prunable parameters (biases, BatchNorm and the classifier are counted, never pruned).
No layer is pruned away: each keeps at least its highest-scoring weight. When a global
threshold would remove a whole layer, that weight survives and the threshold moves on to the
other layers, so the requested number of weights is still removed.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UsageError

GRANULARITIES = ("weight", "filter")
SCOPES = ("global", "local")
CRITERIA = ("magnitude", "random")


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(name, layer)]`` of every Conv2d and Linear except the final classifier."""
    from ..models import classifier

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


@torch.no_grad()
def weight_scores(weights: dict[str, torch.Tensor], criterion: str,
                  seed: int = 0) -> dict[str, torch.Tensor]:
    """Score of every weight (higher = kept longer): |w|, or uniform noise from ``seed``."""
    if criterion == "magnitude":
        return {k: w.detach().abs().float() for k, w in weights.items()}
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.rand(w.shape, generator=generator).to(w.device)
            for k, w in weights.items()}


@torch.no_grad()
def weight_keep(scores: dict[str, torch.Tensor], ratio: float, scope: str,
                previous: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Bool masks (True = kept) removing ``round(ratio * n)`` of the lowest-scored weights,
    of all layers together (global) or of each layer (local). Weights ``previous`` already
    pruned are removed first, so masks only ever grow sparser; each layer keeps its best."""
    ranked = {}
    for name, s in scores.items():
        s = s.flatten().clone()
        if previous is not None:
            s[~previous[name].flatten().to(s.device)] = -float("inf")
        s[s.argmax()] = float("inf")  # never prune a layer away
        ranked[name] = s
    if scope == "local":
        return {name: _lowest_dropped(s, min(round(ratio * s.numel()), s.numel() - 1))
                .view(scores[name].shape) for name, s in ranked.items()}
    flat = torch.cat(list(ranked.values()))
    k = min(round(ratio * flat.numel()), flat.numel() - len(ranked))
    kept = _lowest_dropped(flat, k)
    out, offset = {}, 0
    for name, s in scores.items():
        out[name] = kept[offset:offset + s.numel()].view(s.shape)
        offset += s.numel()
    return out


def _lowest_dropped(scores: torch.Tensor, k: int) -> torch.Tensor:
    kept = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    if k > 0:
        kept[torch.topk(scores, k, largest=False, sorted=False).indices] = False
    return kept


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
    check_ratio(ratio)
    check_choice("granularity", granularity, GRANULARITIES)
    check_choice("scope", scope, SCOPES)
    check_choice("norm", norm, (1, 2))
    if granularity == "filter":
        from .groups import ChannelGroups
        from .structured import filter_keep, filter_scores

        groups = ChannelGroups(model, input_shape)
        keep = filter_keep(groups, filter_scores(groups, "magnitude", norm), ratio, scope)
        return groups.masks(keep)
    weights = {f"{name}.weight": m.weight for name, m in prunable_layers(model)}
    return weight_keep(weight_scores(weights, "magnitude"), ratio, scope)
