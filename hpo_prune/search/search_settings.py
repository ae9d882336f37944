"""One search's settings, typed and checked: what the command line (``search.cli``) hands to
the driver (``search.runner``), past which no argparse namespace or dict travels."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..settings import TrialConfig
from .studies.designs import Design
from .studies.study import Mode


@dataclass(frozen=True)
class Cluster:
    """Where and how wide the trials run (Ray)."""
    address: str | None = None  # None: a local Ray instance
    dashboard: bool = False
    dashboard_host: str = "127.0.0.1"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    retries: int = 2  # how often Tune restarts a trial whose worker died


@dataclass(frozen=True)
class SearchSettings:
    name: str  # the search's name: its folder under --results and its studies' prefix
    model: str
    preset: str
    mode: Mode
    folder: Path  # the results folder
    storage_url: str
    design: Design  # the studies' space, sampler, seed, target, baselines, confirm, levels
    base: dict[tuple[str, str], TrialConfig]  # (dataset, regime) -> the fixed part of a trial
    epochs: int
    early_stop: str  # "asha" or "none"
    keep_models: str  # front, all or none (search.keep)
    cluster: Cluster = field(default_factory=Cluster)
    shaping: dict = field(default_factory=dict)  # recorded in search.json, compared on resume

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(dataset for dataset, _ in self.base))

    @property
    def regimes(self) -> list[str]:
        return list(dict.fromkeys(regime for _, regime in self.base))

    @property
    def trials(self) -> int:
        return self.design.target
