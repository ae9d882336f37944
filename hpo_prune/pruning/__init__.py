"""Pruning engine: masks, schedules, structured removal and honest counting."""
from .schedules import SCHEDULES, sparsity_at

__all__ = ["SCHEDULES", "sparsity_at"]
