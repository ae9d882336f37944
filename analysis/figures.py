"""The report's figures (matplotlib, Agg backend; each saved as PNG and SVG).

- ``{dataset}``: validation accuracy vs % of parameters removed, a panel per model, both
  regimes on each axis: completed runs as dots, the Pareto front (configurations, seed means)
  as open circles, confirmed ones (several seeds) as filled diamonds with their seed standard
  deviation as error bars, the fitted front as a line with its bootstrap 95% band shaded, the
  unpruned reference (mean of the baseline runs) as a dashed line, ± its seed std shaded.
- ``summary``: across datasets, the % of parameters removed within 0.5 / 1 / 2 points of the
  unpruned val accuracy, per regime, with bootstrap percentile intervals (a row per model).
- ``hypervolume``: hypervolume of the completed trials over trial numbers, per study
  (confirmation runs left out: the curve shows the search's progress).
- ``levels_{dataset}`` (searches with pruning levels): a row per model; left, the test
  accuracy of each regime at 0% (its baseline runs) and at each level (its valued runs) against
  the level, runs as dots, mean ± std as bars; right, fine-tuned minus scratch kept accuracy per
  level with its 95% interval.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from hpo_prune.levels import KEPT_AT  # noqa: E402
from hpo_prune.objectives import FINE_TUNED, SCRATCH  # noqa: E402

from .fronts import hypervolume_history  # noqa: E402
from .schema import completed  # noqa: E402
from .summary import StudyResult  # noqa: E402
from .tables import not_trained  # noqa: E402

COLORS = {FINE_TUNED: "#1f6fb4", SCRATCH: "#d9541e"}
LABELS = {FINE_TUNED: f"fine-tuned ({FINE_TUNED})", SCRATCH: "from scratch"}
OTHER = "#6b6b6b"
FORMATS = ("png", "svg")


def _save(fig, out: Path, stem: str) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for fmt in FORMATS:
        fig.savefig(out / f"{stem}.{fmt}", dpi=130 if fmt == "png" else None,
                    bbox_inches="tight")
        names.append(f"{stem}.{fmt}")
    plt.close(fig)
    return names


def _legend_handles(regimes) -> list:
    handles = [Patch(color=COLORS.get(r, OTHER), label=LABELS.get(r, r)) for r in regimes]
    gray = dict(color=OTHER)
    return handles + [
        Line2D([], [], marker="o", ls="", ms=4, alpha=0.5, label="trial (completed)", **gray),
        Line2D([], [], marker="o", ls="", ms=7, mfc="none", label="Pareto front", **gray),
        Line2D([], [], marker="D", ls="-", ms=6, mec="black", mew=0.6,
               label="Pareto front, confirmed: seed mean ± std", **gray),
        Line2D([], [], lw=2, label="fitted front", **gray),
        Patch(alpha=0.2, label="95% bootstrap band", **gray),
        Line2D([], [], ls="--", lw=1.2, label="unpruned reference (baseline mean; ± std shaded)",
               **gray)]


def _accuracy_panel(ax, studies: list[StudyResult]) -> None:
    tops = [100 * r.front["val_acc"].to_numpy(float) for r in studies if len(r.front)]
    floor = max(0.0, min(t.min() for t in tops) - 5.0) if tops else 0.0
    below = 0
    for r in studies:
        color = COLORS.get(r.regime, OTHER)
        done = completed(r.trials)
        x = 100 * (1 - done["remaining_fraction"].to_numpy(float))
        y = 100 * done["val_acc"].to_numpy(float)
        low = y < floor
        below += int(low.sum())
        ax.scatter(x[~low], y[~low], s=14, alpha=0.45, color=color, linewidths=0)
        ax.scatter(x[low], np.full(low.sum(), floor), s=18, marker="v", alpha=0.6, color=color)
        front = r.front
        fx = 100 * (1 - front["remaining_fraction"].to_numpy(float))
        fy = 100 * front["val_acc"].to_numpy(float)
        sure = (front["confirmed"].to_numpy(bool) if "confirmed" in front.columns
                else np.zeros(len(front), dtype=bool))
        ax.scatter(fx[~sure], fy[~sure], s=42, facecolors="none", edgecolors=color,
                   linewidths=1.3, zorder=3)
        if sure.any():  # seed means with their spread (one standard deviation)
            spread = 100 * np.nan_to_num(front["val_acc_std"].to_numpy(float)[sure])
            ax.errorbar(fx[sure], fy[sure], yerr=spread, fmt="D", ms=6, color=color,
                        mec="black", mew=0.6, elinewidth=1.2, capsize=3, zorder=4)
        fit = r.fit
        ax.plot(fit.removed_percent(), 100 * fit.fit, color=color, lw=2, zorder=2)
        band = np.isfinite(fit.lower) & np.isfinite(fit.upper)
        if band.any():
            ax.fill_between(fit.removed_percent(), 100 * np.nan_to_num(fit.lower),
                            100 * np.nan_to_num(fit.upper), where=band, color=color, alpha=0.2,
                            linewidth=0)
        if r.reference is not None:
            ref = r.reference
            ax.axhline(100 * ref.val_acc, color=color, ls="--", lw=1.2)
            if ref.n > 1 and np.isfinite(ref.val_std):
                ax.axhspan(100 * (ref.val_acc - ref.val_std), 100 * (ref.val_acc + ref.val_std),
                           color=color, alpha=0.08, lw=0)
        else:
            slot = list(COLORS).index(r.regime) if r.regime in COLORS else len(COLORS)
            ax.text(0.02, 0.93 - 0.06 * slot, f"{LABELS.get(r.regime, r.regime)}: no "
                    "baseline", transform=ax.transAxes, color=color, fontsize=8)
    ax.set_xlim(0, 100)
    top = max([t.max() for t in tops], default=100.0)
    ax.set_ylim(floor, min(100.0, top + 2.0) if tops else 100.0)
    if below:
        ax.text(0.98, 0.02, f"{below} trial(s) below {floor:.0f}% drawn at the axis (▼)",
                transform=ax.transAxes, ha="right", fontsize=8, color=OTHER)
    ax.set_xlabel("parameters removed (%)")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)


def dataset_figure(results: list[StudyResult], dataset: str, out: Path) -> list[str]:
    studies = [r for r in results if r.dataset == dataset]
    models = sorted({r.model for r in studies})
    fig, axes = plt.subplots(1, len(models), figsize=(5.6 * len(models), 4.4), squeeze=False)
    for ax, model in zip(axes[0], models):
        panel = [r for r in studies if r.model == model]
        _accuracy_panel(ax, panel)
        counts = ", ".join(f"{LABELS.get(r.regime, r.regime)} {len(completed(r.trials))}"
                           for r in panel)
        ax.set_title(f"{model}  (completed trials: {counts})", fontsize=9)
    regimes = sorted({r.regime for r in studies})
    fig.legend(handles=_legend_handles(regimes), loc="upper center", ncol=4, fontsize=8,
               bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.suptitle(f"{dataset}: validation accuracy vs parameters removed", fontsize=11)
    return _save(fig, out, dataset)


def levels_figure(results: list[StudyResult], comparison, dataset: str, out: Path
                  ) -> list[str]:
    """Accuracy against pruning level per regime, and the per-level difference (see the top)."""
    studies = [r for r in results if r.dataset == dataset and r.levels]
    models = sorted({r.model for r in studies})
    if not models:
        return []
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 4.0 * len(models)), squeeze=False)
    for (left, right), model in zip(axes, models):
        panel = [r for r in studies if r.model == model]
        for k, regime in enumerate(sorted({r.regime for r in panel})):
            color = COLORS.get(regime, OTHER)
            shift = 0.6 * (k - 0.5)  # the regimes side by side at each level
            replicates = [r for r in panel if r.regime == regime]  # their runs pooled
            by_x = {}
            for r in replicates:
                if r.reference is not None:
                    by_x.setdefault(0.0, []).append(r.reference.runs["test_acc"])
                for level, value in r.levels.items():
                    if value.n:
                        by_x.setdefault(100 * level, []).append(value.runs["test_acc"])
            xs, means, stds = [], [], []
            for x, parts in sorted(by_x.items()):
                runs = 100 * np.concatenate([np.asarray(v, float) for v in parts])
                xs.append(x)
                means.append(runs.mean())
                stds.append(runs.std(ddof=1) if len(runs) > 1 else 0.0)
                left.scatter(np.full(len(runs), x + shift), runs, s=12, alpha=0.5,
                             color=color, linewidths=0)
            left.errorbar(np.array(xs) + shift, means, yerr=stds, fmt="o-", ms=5, lw=1.5,
                          capsize=3, color=color, label=LABELS.get(regime, regime))
        left.set_xlabel("weights removed (%)  (0: the unpruned baseline runs)")
        left.set_ylabel("test accuracy (%)")
        left.set_title(f"{model} on {dataset}: test accuracy per level (runs; mean ± std)",
                       fontsize=9)
        left.grid(alpha=0.3)
        left.legend(fontsize=8)
        rows = comparison[(comparison["model"] == model) & (comparison["dataset"] == dataset)
                          & comparison["figure"].str.startswith(KEPT_AT)]
        for _, row in rows.iterrows():
            if np.isnan(row["difference"]):
                continue
            x, y = 100 * row["level"], 100 * row["difference"]
            if np.isfinite(row["ci_low"]):
                right.errorbar([x], [y], yerr=[[y - 100 * row["ci_low"]],
                                               [100 * row["ci_high"] - y]],
                               fmt="s", ms=6, capsize=4, color="black")
            else:
                right.plot([x], [y], "s", ms=6, color=OTHER)
        right.axhline(0, color=OTHER, lw=1)
        right.set_xlabel("weights removed (%)")
        right.set_ylabel("fine-tuned minus scratch, accuracy kept (points)")
        right.set_title("difference per level with its interval over replicates\n(95%; "
                        "Holm's for non-primary levels)", fontsize=9)
        right.grid(alpha=0.3)
        if len(rows):
            right.set_xlim(100 * rows["level"].min() - 5, 100 * rows["level"].max() + 5)
    fig.tight_layout()
    return _save(fig, out, f"levels_{dataset}")


def summary_figure(summary, tolerances, out: Path) -> list[str]:
    """Bars of % removed within each tolerance, per dataset and regime, with bootstrap
    percentile intervals."""
    models = sorted(set(summary["model"]))
    datasets = sorted(set(summary["dataset"]))
    fig, axes = plt.subplots(len(models), len(tolerances), squeeze=False, sharey=True,
                             figsize=(max(3.2, 1.1 * len(datasets) + 1.2) * len(tolerances),
                                      3.4 * len(models)))
    regimes = sorted(set(summary["regime"]))
    width = 0.8 / max(len(regimes), 1)
    for row, model in zip(axes, models):
        for ax, tol in zip(row, tolerances):
            label = f"{tol * 100:g}pt"
            for k, regime in enumerate(regimes):
                color = COLORS.get(regime, OTHER)
                for i, dataset in enumerate(datasets):
                    match = summary[(summary["model"] == model) & (summary["regime"] == regime)
                                    & (summary["dataset"] == dataset)]
                    x = i - 0.4 + width * (k + 0.5)
                    if match.empty or np.isnan(match[f"removed_{label}"].iloc[0]):
                        ax.text(x, 2, "n/a", ha="center", fontsize=7, rotation=90, color=color)
                        continue
                    m = match.iloc[0]
                    if not_trained(m):
                        ax.text(x, 2, "not meaningful", ha="center", fontsize=7, rotation=90,
                                color=color)
                        continue
                    ax.bar(x, 100 * m[f"removed_{label}"], width, color=color, alpha=0.85)
                    lo, hi = m[f"removed_{label}_lo"], m[f"removed_{label}_hi"]
                    if np.isfinite(lo):
                        ax.vlines(x, 100 * lo, 100 * hi, color="black", lw=1.2)
                        ax.hlines([100 * lo, 100 * hi], x - width / 4, x + width / 4,
                                  color="black", lw=1.2)
                    else:
                        ax.text(x, 100 * m[f"removed_{label}"] + 2, "no CI", ha="center",
                                fontsize=7, rotation=90)
            ax.set_xticks(range(len(datasets)), datasets, rotation=30, ha="right")
            ax.set_xlim(-0.5, len(datasets) - 0.5)
            ax.set_ylim(0, 105)
            ax.set_title(f"{model}: within {tol * 100:g} point(s)", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
        row[0].set_ylabel("parameters removed (%)")
    handles = [Patch(color=COLORS.get(r, OTHER), label=LABELS.get(r, r)) for r in regimes]
    handles.append(Line2D([], [], color="black", lw=1.2,
                          label="bootstrap interval (2.5-97.5 percentiles)"))
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=8,
               bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.suptitle("Largest parameter reduction within X points of the unpruned reference "
                 "(selected on val)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "summary")


def hypervolume_figure(results: list[StudyResult], out: Path) -> list[str]:
    keys = sorted({(r.model, r.dataset) for r in results})
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(4.6 * cols, 3.3 * rows))
    for ax, (model, dataset) in zip(axes.flat, keys):
        for r in results:
            if (r.model, r.dataset) != (model, dataset):
                continue
            done = completed(r.trials)
            history = hypervolume_history(done[done["confirms"].isna()])  # the search's trials
            ax.step(history["trial"], history["hypervolume"], where="post", marker=".",
                    color=COLORS.get(r.regime, OTHER), label=LABELS.get(r.regime, r.regime))
        ax.set_title(f"{model} on {dataset}", fontsize=9)
        ax.set_xlabel("trial number")
        ax.set_ylabel("hypervolume")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.suptitle("Hypervolume of the completed trials (reference: val_acc 0, remaining "
                 "fraction 1)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "hypervolume")
