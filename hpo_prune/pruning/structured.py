"""Filter (structured) pruning: score channel groups, pick the channels that reach a sparsity
target, and rebuild a filter-pruned model from its saved state dict (``reshape_like``).

A group's channel is scored by the L1 (or L2) norm of all the filters it removes together
(a plain convolution's filter; with a depthwise convolution or a residual addition, the
concatenation of the coupled filters), divided by (weights per channel)^(1/norm) so that
filters of different sizes compete on equal terms under a global threshold. The target is a
fraction of the prunable *weights* (a removed channel also removes the next layer's inputs):
global scope removes the lowest-scored channels of all groups until it is reached; local
scope removes the same fraction of the channels of every group, the smallest that reaches it.
Every group keeps at least its highest-scored channel.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import UsageError
from .groups import ChannelGroups


FILTER_CRITERIA = ("magnitude", "random")  # a channel's filter norm, or noise


@torch.no_grad()
def filter_scores(groups: ChannelGroups, criterion: str, norm: int = 1,
                  seed: int = 0) -> list[torch.Tensor]:
    """One score per channel of each group (higher = kept longer), on the CPU, under a
    criterion of FILTER_CRITERIA."""
    if criterion not in FILTER_CRITERIA:
        raise ValueError(f"unknown filter criterion {criterion!r}: use one of "
                         f"{', '.join(FILTER_CRITERIA)}")
    if criterion == "random":
        generator = torch.Generator().manual_seed(seed)
        return [torch.rand(g.channels, generator=generator, dtype=torch.float64)
                for g in groups.groups]
    params = dict(groups.model.named_parameters())
    scores = []
    for g in groups.groups:
        total = torch.zeros(g.channels, dtype=torch.float64)
        size = torch.zeros(g.channels, dtype=torch.float64)
        for s in g.filters:
            w = params[s.name].detach().flatten(1).double().cpu()
            total.index_add_(0, s.root, w.abs().pow(norm).sum(1)[s.index])
            size.index_add_(0, s.root, torch.full((len(s.index),), float(w.shape[1]),
                                                  dtype=torch.float64))
        scores.append((total / size.clamp_min(1)).pow(1 / norm))
    return scores


def filter_keep(groups: ChannelGroups, scores: list[torch.Tensor], ratio: float, scope: str,
                previous: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Channels kept per group: the fewest removals whose prunable-weight sparsity reaches
    ``ratio``. Channels ``previous`` already removed go first (masks only grow sparser)."""
    total = sum(dict(groups.model.named_parameters())[n].numel() for n in groups.prunable)
    ranked = []
    for i, s in enumerate(scores):
        s = s.clone()
        if previous is not None:
            s[~previous[i]] = -math.inf
        ranked.append(s)
    start = sum(int((~p).sum()) for p in previous) if previous is not None else 0

    def sparsity(keep):
        return 1 - groups.kept_prunable(keep) / total

    if scope == "local":
        orders = [torch.argsort(s, stable=True) for s in ranked]

        def keep_at(fraction: float) -> list[torch.Tensor]:
            keep = []
            for order, s in zip(orders, ranked):
                k = min(math.floor(fraction * len(s)), len(s) - 1)
                k = max(k, int(torch.isinf(s).logical_and(s < 0).sum()))
                kept = torch.ones(len(s), dtype=torch.bool)
                kept[order[:k]] = False
                keep.append(kept)
            return keep

        lo, hi = 0.0, 1.0  # smallest channel fraction that reaches the target
        if sparsity(keep_at(lo)) >= ratio:
            return keep_at(lo)
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if sparsity(keep_at(mid)) >= ratio else (mid, hi)
        return keep_at(hi)

    # global: candidates are every channel but each group's best, lowest score first
    sizes = [len(s) for s in ranked]
    offsets = torch.tensor([0] + sizes[:-1]).cumsum(0)
    flat_idx, values = [], []
    for i, s in enumerate(ranked):
        candidates = torch.ones(len(s), dtype=torch.bool)
        candidates[s.argmax()] = False
        idx = candidates.nonzero().flatten()
        flat_idx.append(idx + offsets[i])
        values.append(s[idx])
    order = torch.cat(flat_idx)[torch.argsort(torch.cat(values), stable=True)]

    def keep_first(k: int) -> list[torch.Tensor]:
        flat = torch.ones(sum(sizes), dtype=torch.bool)
        flat[order[:k]] = False
        return [part.clone() for part in flat.split(sizes)]

    lo, hi = start, len(order)  # smallest k whose sparsity reaches the target
    if sparsity(keep_first(hi)) < ratio:
        return keep_first(hi)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if sparsity(keep_first(mid)) >= ratio else (mid + 1, hi)
    return keep_first(lo)


def reshape_like(model: nn.Module, state_dict: dict, input_shape=None) -> nn.Module:
    """Shrink a freshly built ``model`` in place so that the filter-pruned ``state_dict``
    loads into it: every channel group is cut to the size its root layer has in the state
    dict (which channels go does not matter, the state dict overwrites them all)."""
    groups = ChannelGroups(model, input_shape, what="the saved model")
    keep = []
    for g in groups.groups:
        key = f"{g.root_name}.weight"
        if key not in state_dict:
            raise UsageError(f"the saved state dict has no {key}: it was not saved from this "
                             "model; pass the --out directory of a finished run")
        kept = min(max(int(state_dict[key].shape[0]), 1), g.channels)
        keep.append(torch.arange(g.channels) < kept)
    groups.remove(keep)
    own = model.state_dict()
    for key, value in state_dict.items():
        if key in own and own[key].shape != value.shape:
            raise UsageError(f"saved tensor {key} has shape {tuple(value.shape)} but the "
                             f"rebuilt model expects {tuple(own[key].shape)}: the file does not "
                             "come from this model")
    return model
