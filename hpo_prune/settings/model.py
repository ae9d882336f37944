"""ModelSettings (which network) and SourceSettings (its init regime and pre-trained weights)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import check
from .fields import Flags, flag_of, option

__all__ = ["ModelSettings", "SourceSettings"]


@dataclass(frozen=True)
class ModelSettings:
    model: str = option("vgg16", "network architecture: vgg16, vgg16_bn, mobilenet_v1, "
                        "mobilenet_v2, or any timm:NAME / torchvision:NAME classifier",
                        group="model")
    head: str = option("auto", "VGG classifier head: 'compact' = global pool + one Linear "
                       "(~14.7M params), 'classic' = 7x7 pool + 3 Linear layers (~134M); "
                       "'auto' = compact for inputs up to 64 px", ("auto", "compact", "classic"),
                       group="model")

    def check(self, flags: Flags = flag_of) -> None:
        pass  # the model's name is checked against the registry (hpo_prune.resolution)


@dataclass(frozen=True)
class SourceSettings:
    init: str = option("scratch", "init regime: 'scratch' (library init, seeded) or "
                       "'pretrained' (weights from --source, then fine-tuned)",
                       ("scratch", "pretrained"), group="model")
    source: str = option("", "weights of the pretrained regime: 'imagenet', 'fractal', or a "
                         "path to a checkpoint file; '' = the dataset's default (digits: "
                         "fractal, else imagenet)", group="model")

    def check(self, flags: Flags = flag_of) -> None:
        check(self.source == "" or self.init == "pretrained",
              f"--{flags('source')} {self.source!r} only applies to --{flags('init')} "
              f"pretrained: pass --{flags('init')} pretrained, or drop --{flags('source')}")
