"""TrainSettings: the training recipe of a trial (optimizer, learning rate and its schedule,
head start, augmentation, precision, seed, device)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import check
from .fields import Flags, flag_of, option

__all__ = ["TrainSettings", "OPTIMIZERS"]

OPTIMIZERS = ("adamw", "sgd")  # --optimizer (besides 'auto'); training.recipe builds them


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = option(4, "training epochs", group="train")
    batch_size: int = option(32, "mini-batch size", group="train")
    optimizer: str = option("auto", "'sgd' (with momentum) or 'adamw'; 'auto' = the model "
                            "family's measured default (see docs/training.md)",
                            ("auto", *OPTIMIZERS), group="train")
    lr: float = option(0.0, "peak learning rate; 0 = the model family's measured default for "
                       "the optimizer and init regime", group="train")
    momentum: float = option(0.9, "SGD momentum (AdamW: beta1)", group="train")
    weight_decay: float = option(5e-4, "weight decay (SGD: L2; AdamW: decoupled)",
                                 group="train")
    lr_schedule: str = option("cosine", "learning-rate schedule after the warm-up: 'cosine' "
                              "decays to 0 over the remaining optimizer steps, 'constant' "
                              "keeps the peak; 'onecycle' is torch's OneCycleLR (cosine up over "
                              "the warm-up, then down)", ("cosine", "constant", "onecycle"),
                              group="train")
    warmup: float = option(-1.0, "fraction of the optimizer steps spent warming the learning "
                           "rate up linearly from 0, in [0, 1); -1 = the model family's "
                           "default", group="train")
    head_init: str = option("auto", "the classifier head's start: 'probe' = fitted by logistic "
                            "regression on the frozen initial features of the training split "
                            "(pre-trained, or the seeded init's from scratch) before training "
                            "(LP-FT); 'random' = its seeded library init; 'auto' = the model "
                            "family's measured default for the regime (docs/training.md)",
                            ("auto", "probe", "random"), group="train")
    augment: str = option("auto", "training augmentation: 'crop' = pad by 1/8 of the size and "
                          "crop at random (plus horizontal flips where they keep the label); "
                          "'none'; 'auto' = the dataset's default (digits: none, else crop)",
                          ("auto", "crop", "none"), group="train")
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy loss, in "
                                    "[0, 1)", group="train")
    precision: str = option("auto", "compute precision of convolutions and matmuls: 'bf16' "
                            "autocast (weights, optimizer and loss stay float32; faster for "
                            "VGG16 where the hardware has native bf16, ~15x slower where it is "
                            "emulated), 'fp32', or 'auto' = bf16 only where this machine "
                            "computes it natively and measures it faster (measured once, "
                            "cached; records hold the resolved value)",
                            ("auto", "bf16", "fp32"), group="train")
    seed: int = option(0, "seed of init, shuffling and augmentation", group="train")
    device: str = option("auto", "'auto' (cuda if available), 'cpu', 'cuda' or 'cuda:N'",
                         hashed=False, group="train")

    def check(self, flags: Flags = flag_of) -> None:
        for name in ("lr", "momentum", "weight_decay", "warmup", "label_smoothing"):
            value = getattr(self, name)
            check(math.isfinite(value), f"--{flags(name)} must be a finite number, got {value}")
        check(self.lr >= 0, f"--{flags('lr')} must be > 0 (or 0 for the model's default), got "
              f"{self.lr}")
        check(self.warmup == -1 or 0 <= self.warmup < 1, f"--{flags('warmup')} must be in "
              f"[0, 1) (or -1 for the model's default), got {self.warmup}")
        check(0 <= self.label_smoothing < 1, f"--{flags('label_smoothing')} must be in [0, 1), "
              f"got {self.label_smoothing}")
        check(self.epochs >= 1, f"--{flags('epochs')} must be >= 1, got {self.epochs}")
        check(self.batch_size >= 1,
              f"--{flags('batch_size')} must be >= 1, got {self.batch_size}")
        check(0 <= self.momentum < 1,
              f"--{flags('momentum')} must be in [0, 1), got {self.momentum}")
        check(self.weight_decay >= 0,
              f"--{flags('weight_decay')} must be >= 0, got {self.weight_decay}")
