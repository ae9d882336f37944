"""DataSettings: which dataset a trial reads and how it is split and sized."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import check
from .fields import Flags, flag_of, option

__all__ = ["DataSettings"]


@dataclass(frozen=True)
class DataSettings:
    dataset: str = option("digits", "dataset name ('digits' is the embedded offline default), "
                          "or folder:PATH: your images in torchvision's ImageFolder layout "
                          "(PATH/train/<class>/<image>)", group="data")
    data_dir: str = option("", "root directory of the datasets (default: $HPO_PRUNE_DATA or "
                           "~/.cache/hpo_prune/data)", hashed=False, group="data")
    download: bool = option(False, "download a missing dataset (torchvision's downloaders)",
                            hashed=False, group="data")
    val_fraction: float = option(0.0, "fraction of the training split held out (stratified) "
                                 "as validation data; 0 = the dataset's default (digits 0.2, "
                                 "so its val split holds 288 images; others 0.1)", group="data")
    split_seed: int = option(0, "seed of the train/val split (and of --train-subset); kept "
                             "apart from --seed so every trial sees the same val data. The "
                             "test split never moves: official, or seed 0 for "
                             "digits/caltech101", group="data")
    image_size: int = option(0, "input size in pixels; 0 = the dataset's own (32; caltech101: "
                             "64)", group="data")
    train_subset: int = option(0, "use at most this many training images (stratified; 0 = "
                               "all); for smoke tests and quick runs", group="data")

    def check(self, flags: Flags = flag_of) -> None:
        check(math.isfinite(self.val_fraction),
              f"--{flags('val_fraction')} must be a finite number, got {self.val_fraction}")
        check(0 <= self.val_fraction < 1, f"--{flags('val_fraction')} must be in (0, 1) (or 0 "
              f"for the dataset's default), got {self.val_fraction}")
        check(self.image_size == 0 or self.image_size >= 16, f"--{flags('image_size')} must "
              f"be 0 (dataset default) or >= 16, got {self.image_size}")
        check(self.train_subset >= 0,
              f"--{flags('train_subset')} must be >= 0, got {self.train_subset}")
