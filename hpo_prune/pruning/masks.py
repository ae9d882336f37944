"""Unstructured (weight) pruning: how weights are scored (magnitude or random) and how a
sparsity target becomes masks (global or local scope).

No layer is pruned away: each keeps at least its highest-scoring weight. When a global
threshold would remove a whole layer, that weight survives and the threshold moves on to the
other layers, so the requested number of weights is still removed.
"""
from __future__ import annotations

import torch


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
