"""Pruning engine: masks, schedules, structured removal and honest counting.

Public API: ``magnitude_masks``, ``sparsity_at``, ``count`` (docs/pruning.md); the trial
drives pruning through ``Pruner``, which prunes by the strategy of its granularity
(``strategies``).
"""
from .counting import count
from .layers import prunable_layers
from .magnitude import magnitude_masks
from .pruner import Pruner, unpruned_metrics
from .schedules import SCHEDULES, sparsity_at
from .structured import reshape_like

__all__ = ["SCHEDULES", "Pruner", "count", "magnitude_masks", "prunable_layers",
           "reshape_like", "sparsity_at", "unpruned_metrics"]
