"""hpo_prune: how far can a CNN be pruned, and does pre-training let it be pruned further?"""
from .settings import TrialConfig

__all__ = ["TrialConfig", "load_model", "run_trial"]
__version__ = "0.1.0"


def __getattr__(name):  # torch-heavy modules load on first use, not on `import hpo_prune`
    if name == "run_trial":
        from .trial import run_trial

        return run_trial
    if name == "load_model":
        from .training.checkpoint import load_model

        return load_model
    raise AttributeError(name)
