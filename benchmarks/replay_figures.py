"""The replay's figures: accuracy kept against runs per level, hypervolume against epochs used
and against simulated wall-clock."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from replay_levels import PRINTED_RUNS


def style(name: str) -> str:
    """A method's line: dashed with early stopping."""
    return "--" if name.endswith(" + ASHA") else "-"


def figures(rows: list[dict], folder: Path) -> list[Path]:
    """Accuracy kept against runs per level (levels design), and hypervolume against epochs
    used (continuous design), each method's mean with its 95% interval as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    bases = sorted({name.removesuffix(" + ASHA") for name in frame["name"].unique()})
    colour = {name: f"C{bases.index(name.removesuffix(' + ASHA')) % 10}"
              for name in frame["name"].unique()}  # a sampler's colour, with ASHA or not
    written = []
    levels = frame[frame["design"].str.match(r"levels [\d.]+ ")]
    if len(levels):
        parts = levels["design"].str.split(" ", expand=True)
        levels = levels.assign(level=parts[1].astype(float), what=parts[2],
                               runs=levels["budget"].str.split(" ").str[0].astype(int))
        whats = ["pretrained", "scratch", "difference"]
        grid = sorted(levels["level"].unique())
        fig, axes = plt.subplots(len(whats), len(grid), figsize=(3.2 * len(grid), 8.5),
                                 squeeze=False, sharex=True)
        for i, what in enumerate(whats):
            for j, level in enumerate(grid):
                ax = axes[i][j]
                for name, part in levels[(levels["level"] == level)
                                         & (levels["what"] == what)].groupby("name"):
                    part = part.sort_values("runs")
                    if len(part) == 1:  # one run per level: a level line across
                        ax.axhline(part["value"].iloc[0], lw=1.2, label=name,
                                   ls=":" if name == "no tuning" else "--", color="black")
                        continue
                    ax.plot(part["runs"], part["value"], marker="o", ms=3, label=name,
                            color=colour[name], ls=style(name))
                    ax.fill_between(part["runs"], part["ci_low"], part["ci_high"], alpha=0.2,
                                    color=colour[name])
                ax.set_title(f"{what}, level {level:g}", fontsize=9)
                ax.set_xticks([n for n in PRINTED_RUNS if n <= levels["runs"].max()])
                if i == len(whats) - 1:
                    ax.set_xlabel("runs per level")
                if j == 0:
                    ax.set_ylabel("fine-tuned - scratch (points)" if what == "difference"
                                  else "accuracy kept (points)")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        written.append(folder / "evidence_levels.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    cont = frame[frame["design"].str.match(r"continuous \w+$")]
    if len(cont):
        cont = cont.assign(regime=cont["design"].str.split(" ").str[1],
                           epochs=cont["budget"].str.split(" ").str[0].astype(int))
        regimes = sorted(cont["regime"].unique())
        fig, axes = plt.subplots(1, len(regimes), figsize=(5.5 * len(regimes), 4),
                                 squeeze=False)
        for ax, regime in zip(axes[0], regimes):
            for name, part in cont[cont["regime"] == regime].groupby("name"):
                part = part.sort_values("epochs")
                ax.plot(part["epochs"], part["value"], marker="o", ms=3, label=name,
                        color=colour[name], ls=style(name))
                ax.fill_between(part["epochs"], part["ci_low"], part["ci_high"], alpha=0.15,
                                color=colour[name])
            ax.set_title(f"continuous design, {regime}")
            ax.set_xlabel("epochs used")
            ax.set_ylabel("hypervolume at test (x100)")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        written.append(folder / "evidence_continuous.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    clock = frame[frame["design"].str.contains(" clock ")]
    if len(clock):
        parts = clock["design"].str.split(" ", expand=True)
        clock = clock.assign(regime=parts[1], workers=parts[3].astype(int),
                             minutes=clock["budget"].str.split(" ").str[0].astype(float))
        regimes, workers = sorted(clock["regime"].unique()), sorted(clock["workers"].unique())
        fig, axes = plt.subplots(len(regimes), len(workers), squeeze=False,
                                 figsize=(4.2 * len(workers), 3.6 * len(regimes)))
        for i, regime in enumerate(regimes):
            for j, count in enumerate(workers):
                ax = axes[i][j]
                part = clock[(clock["regime"] == regime) & (clock["workers"] == count)]
                for name, line in part.groupby("name"):
                    line = line.sort_values("minutes")
                    ax.plot(line["minutes"], line["value"], marker="o", ms=3, label=name,
                            color=colour[name], ls=style(name))
                    ax.fill_between(line["minutes"], line["ci_low"], line["ci_high"],
                                    alpha=0.15, color=colour[name])
                ends = frame[frame["design"].isin([f"continuous {regime} minutes",
                                                   f"continuous {regime} hypervolume"])
                             & (frame["budget"] == f"{count} workers")
                             & ~frame["name"].isin(part["name"].unique())]
                for name, point in ends.groupby("name"):  # methods whose front forms at the
                    at = point.set_index("design")["value"]  # end: one point there
                    ax.plot(at[f"continuous {regime} minutes"],
                            at[f"continuous {regime} hypervolume"], marker="*", ms=10,
                            ls="", color=colour[name], label=name)
                ax.set_title(f"{regime}, {count} worker(s)", fontsize=9)
                ax.legend(fontsize=6)
                ax.set_xlabel("simulated wall-clock (minutes)")
                if j == 0:
                    ax.set_ylabel("hypervolume at test (x100)")
        fig.tight_layout()
        written.append(folder / "evidence_wallclock.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written

