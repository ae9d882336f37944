"""The settings of a trial, one small frozen dataclass per concern, composed into
``TrialConfig``. The bottom of the import graph: nothing here imports a registry."""
from .data import DataSettings
from .fractal import FractalSettings
from .model import ModelSettings, SourceSettings
from .pruning import GRANULARITIES, PruneSettings
from .training import OPTIMIZERS, TrainSettings
from .trial import PARTS, PLACEHOLDERS, TrialConfig

__all__ = ["DataSettings", "FractalSettings", "GRANULARITIES", "ModelSettings", "OPTIMIZERS",
           "PARTS", "PLACEHOLDERS", "PruneSettings", "SourceSettings", "TrainSettings",
           "TrialConfig"]
