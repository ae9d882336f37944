"""Data: the dataset registry with its train / val / test splits (``datasets``), batch-wise
augmentation on tensors (``augment``) and the offline fractal pre-training corpus
(``fractal``)."""
from .datasets import DATASETS, Data, Split, load

__all__ = ["DATASETS", "Data", "Split", "load"]
