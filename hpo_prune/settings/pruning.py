"""PruneSettings: how much of a network a trial removes, what it scores and when."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import check
from .fields import Flags, flag_of, option

__all__ = ["PruneSettings", "GRANULARITIES", "RESCALES", "SCOPES"]

GRANULARITIES = ("weight", "filter")
SCOPES = ("global", "local")
RESCALES = ("none", "norm")


@dataclass(frozen=True)
class PruneSettings:
    prune_ratio: float = option(0.0, "fraction of the prunable parameters to remove, in "
                                "[0, 1)", group="prune")
    granularity: str = option("weight", "'weight' (unstructured masks) or 'filter' "
                              "(structured; filters physically removed at the end)",
                              GRANULARITIES, group="prune")
    scope: str = option("global", "'global' = one threshold across all prunable layers; "
                        "'local' = the same ratio in each layer", SCOPES, group="prune")
    criterion: str = option("auto", "'magnitude' (weight magnitude / filter norm), 'lamp' "
                            "(weight granularity: layer-adaptive magnitude, Lee et al. 2021, "
                            "so a global threshold does not empty thin layers) or 'random' "
                            "(the baseline); 'auto' = the model family's (lamp for the "
                            "MobileNets' weights, else magnitude), as its search space prunes",
                            group="prune")
    norm: int = option(1, "filter norm used as score: 1 (L1) or 2 (L2)", (1, 2), group="prune")
    rescale: str = option("none", "'none' = masks only; 'norm' (weight granularity) = each mask "
                          "recomputation scales a layer's kept weights back to the layer's "
                          "norm before it, so a network without BatchNorm passes its signal on "
                          "at the same scale instead of fading to chance (docs/pruning.md, "
                          "Rescaling)", RESCALES, group="prune")
    schedule: str = option("agp", "sparsity schedule over the pruning window", group="prune")
    prune_start: float = option(0.2, "start of the pruning window, as a fraction of training: "
                                "the network trains dense first (magnitudes of an untrained "
                                "network rank nothing)", group="prune")
    prune_end: float = option(0.6, "end of the pruning window, as a fraction of training; "
                              "after it training fine-tunes with fixed masks", group="prune")
    prune_steps: int = option(3, "number of equal steps of the 'iterative' schedule",
                              group="prune")
    prune_every: int = option(2, "recompute masks every this many optimizer steps inside the "
                              "window (and always at its end); small steps of sparsity keep a "
                              "network without BatchNorm from collapsing (docs/pruning.md, Pruning "
                              "window)", group="prune")

    def check(self, flags: Flags = flag_of) -> None:
        """The one check of the ratio and the window (the pruning layer trusts them)."""
        for name in ("prune_ratio", "prune_start", "prune_end"):
            value = getattr(self, name)
            check(math.isfinite(value), f"--{flags(name)} must be a finite number, got {value}")
        check(0 <= self.prune_ratio < 1,
              f"--{flags('prune_ratio')} must be in [0, 1), got {self.prune_ratio}")
        check(0 <= self.prune_start < self.prune_end <= 1,
              f"the pruning window must satisfy 0 <= --{flags('prune_start')} < "
              f"--{flags('prune_end')} <= 1, got [{self.prune_start}, {self.prune_end}]")
        check(self.prune_steps >= 1,
              f"--{flags('prune_steps')} must be >= 1, got {self.prune_steps}")
        check(self.prune_every >= 1,
              f"--{flags('prune_every')} must be >= 1, got {self.prune_every}")
        check(self.criterion != "lamp" or self.granularity == "weight",
              f"--{flags('criterion')} lamp scores single weights: use it with "
              f"--{flags('granularity')} weight, or --{flags('criterion')} magnitude for "
              "filters")
        check(self.rescale != "norm" or self.granularity == "weight",
              f"--{flags('rescale')} norm rescales layers of single-weight masks: use it with "
              f"--{flags('granularity')} weight (a removed filter takes its whole output away)")
