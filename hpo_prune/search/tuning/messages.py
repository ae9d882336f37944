"""What passes between Tune and the searcher, typed.

- ``TuneTrial``: what the searcher hands Tune for one trial (its study, its Optuna number, the
  run it confirms, its resolved TrialConfig). Tune carries it as the trial's config, a plain
  dict (``to_tune``); the trainable, the scheduler, the progress view and the trial names read
  it back with ``TuneTrial.of``.
- ``Report``: what a trial reports to Tune, read by the searcher, the scheduler and the
  progress view. Every epoch reports ``epoch`` and the val accuracy; the last report of a
  trial that ran to its end carries ``final`` and its measurements (``hpo_prune.trial``); a
  trial that failed by itself (a diverged loss, out of memory) reports ``fail_reason`` alone.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...settings import TrialConfig

FINAL, FAIL_REASON, EPOCH = "final", "fail_reason", "epoch"  # report keys


@dataclass(frozen=True)
class TuneTrial:
    study: str
    number: int  # the Optuna trial's number in its study
    confirms: int | None  # the number of the run it repeats with another seed
    config: TrialConfig  # resolved (hpo_prune.resolution)

    def to_tune(self) -> dict:
        return {"study": self.study, "trial": self.number, "confirms": self.confirms,
                "config": self.config.to_dict()}

    @classmethod
    def of(cls, spec: dict) -> TuneTrial:
        confirms = spec.get("confirms")
        return cls(spec["study"], int(spec["trial"]),
                   None if confirms is None else int(confirms),
                   TrialConfig.from_dict(spec["config"]))

    @property
    def name(self) -> str:
        return f"{self.study}.{self.number}"


@dataclass(frozen=True)
class Report:
    metrics: dict

    @classmethod
    def of(cls, result: dict | None) -> Report:
        return cls(dict(result or {}))

    @classmethod
    def failure(cls, reason: str) -> Report:
        """The report of a trial that failed by itself (no retry)."""
        return cls({FAIL_REASON: reason})

    @property
    def final(self) -> bool:
        return bool(self.metrics.get(FINAL))

    @property
    def fail_reason(self) -> str | None:
        return self.metrics.get(FAIL_REASON) or None

    @property
    def epoch(self) -> int:
        return int(self.metrics.get(EPOCH, 0))

    @property
    def has_val_acc(self) -> bool:
        return "val_acc" in self.metrics

    @property
    def values(self) -> list[float]:
        """The study's objectives: val_acc, remaining_fraction."""
        return [self.metrics["val_acc"], self.metrics["remaining_fraction"]]

    def get(self, key: str, default=None):
        return self.metrics.get(key, default)
