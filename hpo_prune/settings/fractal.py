"""FractalSettings: the corpus and the length of the 'fractal' source's pre-training. Its
recipe is the model family's from-scratch one (hpo_prune.sources.pretrain); in a trial's record
and flags its fields carry a prefix (``pretrain_epochs``), in ``python -m hpo_prune.pretrain``
they are plain (``--epochs``)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import check
from .fields import Flags, flag_of, option

__all__ = ["FractalSettings"]


@dataclass(frozen=True)
class FractalSettings:
    classes: int = option(10, "classes (random IFS systems) of the fractal pre-training "
                          "corpus", group="pretrain", key="fractal_classes")
    per_class: int = option(500, "images per class of the fractal corpus (10% of them held "
                            "out to measure the corpus accuracy)", group="pretrain",
                            key="fractal_per_class")
    epochs: int = option(-1, "epochs of pre-training on the fractal corpus; -1 = the model "
                         "family's (VGG16 8, every other 4: docs/pretraining.md)",
                         group="pretrain", key="pretrain_epochs")
    lr: float = option(0.0, "peak learning rate of the pre-training (the model family's "
                       "recipe otherwise); 0 = the family's default", group="pretrain",
                       key="pretrain_lr")
    seed: int = option(0, "seed of the fractal corpus and of the pre-training",
                       group="pretrain", key="pretrain_seed")

    def check(self, flags: Flags = flag_of) -> None:
        """``flags`` takes the record keys (fractal_classes, ...)."""
        check(self.classes >= 2, f"--{flags('fractal_classes')} must be >= 2 (a classifier "
              f"needs two classes), got {self.classes}")
        check(self.per_class >= 2, f"--{flags('fractal_per_class')} must be >= 2 (one image "
              f"per class is held out), got {self.per_class}")
        check(self.epochs >= 1 or self.epochs == -1, f"--{flags('pretrain_epochs')} must be "
              f">= 1 (or -1 for the model family's), got {self.epochs}")
        check(math.isfinite(self.lr) and self.lr >= 0, f"--{flags('pretrain_lr')} must be a "
              f"finite number > 0 (0 = the model's default), got {self.lr}")
