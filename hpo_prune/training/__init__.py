"""Training one model: the loop (``loop``: one epoch, evaluation), the run around it
(``fit``: optimizer, pruning schedule, per-epoch metrics and resumable state) and saved models
(``checkpoint``: ``save_model`` / ``load_model``). The one training loop of the project."""
from .checkpoint import load_model, save_model
from .fit import resolve_device, transforms_for
from .loop import evaluate, train_epoch

__all__ = ["evaluate", "load_model", "resolve_device", "save_model", "train_epoch",
           "transforms_for"]
