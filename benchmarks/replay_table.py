"""The table of real trainings (``benchmarks/tabular.py``) as the replay reads it: its cells,
the nearest cell of a sampled configuration, a seed drawn per replayed run, the valuation on
the other seeds, and the simulated seconds of an epoch."""
from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_TABLE = Path(__file__).resolve().parent / "data" / "tabular_vgg16_digits.csv"
REGIMES = ("pretrained", "scratch")
TIME_QUANTILE = 0.25  # of an epoch's seconds over a level's rows: its simulated time


@dataclasses.dataclass
class Table:
    """The table's trainings by (regime, level, schedule, lr), each with its seeds' rows."""
    path: Path
    frame: pd.DataFrame
    model: str
    epochs: int
    cells: dict  # key -> {seed: row (a dict)}
    lrs: dict  # regime -> sorted learning rates
    levels: tuple  # sorted, 0 (unpruned) first
    precision: str
    rescale: str  # how its trainings pruned (--rescale; tables built before it existed: none)
    timing: dict  # level -> seconds of epoch 1, 2, ...: their lower quartile over its rows
    memo: dict = dataclasses.field(default_factory=dict)
    value: str = "test_acc"  # what values a chosen run on the other seeds (``--value``)

    @classmethod
    def read(cls, path: Path, value: str = "test_acc") -> "Table":
        frame = pd.read_csv(path)
        if frame.empty:
            raise SystemExit(f"error: {path} holds no trainings: build it with "
                             "benchmarks/tabular.py")
        cells: dict = defaultdict(dict)
        for row in frame.to_dict("records"):
            key = (row["regime"], float(row["level"]), row["schedule"], float(row["lr"]))
            cells[key][int(row["seed"])] = row
        lrs = {r: sorted(set(frame.loc[frame["regime"] == r, "lr"].astype(float)))
               for r in frame["regime"].unique()}
        settings = json.loads(frame["settings"].iloc[0])
        epochs = int(frame["epochs"].max())
        # an epoch's time depends on the level (how far the network has shrunk), not on the
        # weights it starts from, the rate or the schedule; other work on the machine only
        # ever added time, so a low quantile over a level's rows keeps it out
        timing = {float(level): [float(part[f"seconds_{e}"].quantile(TIME_QUANTILE))
                                 for e in range(1, epochs + 1)]
                  for level, part in frame.groupby("level")}
        return cls(path, frame, str(frame["model"].iloc[0]), epochs, dict(cells), lrs,
                   tuple(sorted(set(frame["level"].astype(float)))), settings["precision"],
                   settings.get("rescale", "none"), timing, value=value)

    def key_of(self, plan, trial, resolve) -> tuple:
        """The cell of an asked trial: its config as the searcher builds it (``plan.sample``:
        the sampler draws here) and resolves it, looked up once per distinct parameters."""
        config = plan.sample(trial)
        memo = (config.weights.init, tuple(sorted(trial.params.items())))
        if memo not in self.memo:
            self.memo[memo] = self.key(resolve(config))
        return self.memo[memo], config

    def key(self, config) -> tuple:
        """The table's cell nearest a resolved config."""
        regime = config.weights.init
        level = min(self.levels, key=lambda x: abs(x - config.prune.prune_ratio))
        lr = min(self.lrs[regime], key=lambda x: abs(math.log(x / config.train.lr)))
        schedule = config.prune.schedule
        if level == 0:  # a schedule changes nothing unpruned: the table's one unpruned schedule
            schedule = next(k[2] for k in self.cells if k[0] == regime and k[1] == 0)
        return regime, level, schedule, lr

    def draw(self, key: tuple, rng: np.random.Generator) -> tuple[int, dict] | None:
        seeds = sorted(self.cells.get(key, {}))
        if not seeds:
            return None
        seed = seeds[int(rng.integers(len(seeds)))]
        return seed, self.cells[key][seed]

    def valued(self, key: tuple, seed: int) -> float:
        """Test accuracy (``value``: or val) of ``key`` on the table's seeds other than
        ``seed``."""
        others = [r[self.value] for s, r in self.cells.get(key, {}).items() if s != seed]
        return float(np.mean(others)) if others else np.nan

    def seconds(self, key: tuple, epoch: int) -> float:
        """Simulated seconds of a cell's epoch (1-based): its level's (``timing``)."""
        return self.timing[key[1]][epoch - 1]

    def clock_marks(self, budget: int, workers: int, points: int = 8) -> list:
        """Simulated seconds the wall-clock hypervolume is read at: ``points`` steps up to
        1.25x the time ``budget`` epochs of full trainings take on ``workers`` workers."""
        per_epoch = np.mean([sum(t) / len(t) for level, t in self.timing.items() if level > 0])
        horizon = 1.25 * budget * per_epoch / workers
        return [float(x) for x in np.linspace(0, horizon, points + 1)[1:]]

    def mean_test(self, key: tuple) -> float:
        runs = self.cells.get(key, {})
        return float(np.mean([r[self.value] for r in runs.values()])) if runs else np.nan
