"""hpo_prune: how far can a CNN be pruned, and does pre-training let it be pruned further?"""
from .checkpoint import load_model
from .config import TrialConfig

__all__ = ["TrialConfig", "load_model", "run_trial"]
__version__ = "0.1.0"


def __getattr__(name):  # run_trial imports torch-heavy modules; load it on first use
    if name == "run_trial":
        from .trial import run_trial

        return run_trial
    raise AttributeError(name)
