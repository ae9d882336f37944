"""The headline and comparison tables as text: Markdown (terminal, summary.md) and HTML.

Data stay fractions; only these renderings show percentages.
"""
from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from hpo_prune.levels import KEPT_AT
from hpo_prune.objectives import FINE_TUNED, SCRATCH

from .compare import headline_verdicts
from .schema import STATES


def _pct(x) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{100 * x:.1f}%"


def _pts(x) -> str:
    return f"{100 * x:.1f}"


def not_trained(row: pd.Series) -> bool:
    """The study's reference did not train (summary column reference_trained False)."""
    value = row.get("reference_trained")
    return value is not None and not pd.isna(value) and not bool(value)


def _removed_cell(row: pd.Series, label: str) -> str:
    removed = row[f"removed_{label}"]
    if pd.isna(removed):
        return "n/a (no baseline)"
    if not_trained(row):
        return "not meaningful (the reference did not train; see note)"
    low, high = row[f"removed_{label}_lo"], row[f"removed_{label}_hi"]
    leveled = any(str(c).startswith(KEPT_AT) and pd.notna(row[c]) for c in row.index)
    interval = ("the largest level held; no interval" if leveled else
                "insufficient trials" if pd.isna(low)
                else f"bootstrap interval {100 * low:.1f} to {100 * high:.1f}")
    seeds = int(row.get(f"n_seeds_{label}", 1) or 1)
    number = row[f"trial_{label}"]
    test = _pct(row[f"test_acc_{label}"])
    if seeds > 1:
        test += f" ± {_pts(row[f'test_acc_std_{label}'])}"
    if number == row["baseline_trial"]:
        which = f"trial #{number} (the unpruned reference)"
    elif seeds > 1:
        which = f"trial #{number} ({seeds} seeds)"
    elif row.get("n_confirmed", 0):
        which = f"trial #{number} (1 seed, not confirmed)"
    else:
        which = f"trial #{number}"
    return f"{_pct(removed)} ({interval}); {which}, test {test}"


def _reference_cell(row: pd.Series) -> str:
    if pd.isna(row["unpruned_val_acc"]):
        return "missing"
    n = int(row.get("n_baselines", 1) or 1)
    spread = (lambda c: "" if n < 2 or pd.isna(row[c]) else f" ± {_pts(row[c])}")
    trials = str(row.get("reference_trials", "") or row["baseline_trial"])
    runs = " ".join(f"#{t}" for t in trials.split())
    return (f"val {_pct(row['unpruned_val_acc'])}{spread('unpruned_val_std')}, test "
            f"{_pct(row['unpruned_test_acc'])}{spread('unpruned_test_std')} (n={n}: {runs})")


def _noise_cell(row: pd.Series, labels: list[str]) -> str:
    images = row.get("val_images")
    if images is None or pd.isna(images):
        why = str(row.get("val_images_note", "") or "val split size unknown")
        return why.split(" (")[0]
    text = f"{int(images)} val images ({row['val_resolution_points']:.2f} pt each)"
    se = row.get("reference_binomial_se")  # of one run at the reference's accuracy
    if se is not None and pd.notna(se):
        text += f"; binomial SE of one run {_pts(se)} pt"
        # "within X points" compares a configuration's mean over its k runs with the
        # reference's over n: the binomial SE of that difference is se * sqrt(1/k + 1/n)
        n = int(row.get("n_baselines", 1) or 1)
        under = []
        for label in labels:
            k = row.get(f"n_seeds_{label}")
            k = int(k) if k is not None and pd.notna(k) and k > 0 else 1
            diff = se * math.sqrt(1 / k + 1 / n)
            if float(label[:-2]) / 100 < diff:
                under.append(f"{label[:-2]} pt (SE of its difference {_pts(diff)} pt)")
        if under:
            text += f"; below the noise: {', '.join(under)}"
    return text


def headline_rows(summary: pd.DataFrame, labels: list[str]) -> list[list[str]]:
    header = (["model", "dataset", "regime",
               "unpruned reference (mean ± seed std over n baseline runs)", "val split, noise"]
              + [f"removed within {label[:-2]} pt" for label in labels]
              + ["hypervolume", "trials (" + "/".join(s[0] for s in STATES) + ")",
                 "stayed at chance", "note"])
    rows = [header]
    for _, row in summary.iterrows():
        hv_low = row["hypervolume_lo"]
        hv = (f"{row['hypervolume']:.3f}" + ("" if pd.isna(hv_low) else
                                             f" ({hv_low:.3f} to {row['hypervolume_hi']:.3f})"))
        counts = "/".join(str(row[f"n_{s.lower()}"]) for s in STATES)
        replicate = row.get("replicate", pd.NA)
        regime = row["regime"] + ("" if pd.isna(replicate) else f" (r{int(replicate)})")
        rows.append([row["model"], row["dataset"], regime, _reference_cell(row),
                     _noise_cell(row, labels)]
                    + [_removed_cell(row, label) for label in labels]
                    + [hv, counts, str(row.get("n_untrained", "")), row["note"] or ""])
    return rows


def comparison_rows(comparison: pd.DataFrame) -> list[list[str]]:
    rows = [["model", "dataset", "figure", "fine-tuned", "scratch", "difference", "verdict"]]
    for _, row in comparison.iterrows():
        hv = row["figure"] == "hypervolume"
        fmt = (lambda v: "n/a" if pd.isna(v) else f"{v:.3f}") if hv else _pct
        diff = row["difference"]
        diff_text = ("n/a" if pd.isna(diff) else f"{diff:+.3f}" if hv
                     else f"{100 * diff:+.1f} pts")
        rows.append([row["model"], row["dataset"], row["figure"], fmt(row[FINE_TUNED]),
                     fmt(row[SCRATCH]), diff_text, row["verdict"]])
    return rows


def level_rows(comparison: pd.DataFrame) -> list[list[str]]:
    """The answer of a level design: per (model, dataset, level), each regime's test accuracy
    (mean ± std over its replicates, valued runs) and the accuracy it keeps (minus its
    reference's), the raw test difference, and the difference in kept accuracy with its
    interval (95%, or the Holm step's for a non-primary level)."""
    rows = [["model", "dataset", "removed", "fine-tuned: test (runs)", "kept",
             "scratch: test (runs)", "kept", "raw difference",
             "fine-tuned minus scratch, kept (CI)", "replicates"]]
    leveled = comparison[comparison["figure"].str.startswith(KEPT_AT)]
    for _, row in leveled.iterrows():
        primary = " (primary)" if row.get("primary") is True else ""
        cells = [row["model"], row["dataset"], f"{100 * row['level']:g}%{primary}"]
        for regime in (FINE_TUNED, SCRATCH):
            test, std = row[f"{regime}_test_acc"], row[f"{regime}_test_std"]
            spread = "" if pd.isna(std) else f" ± {_pts(std)}"
            cells += [f"{_pct(test)}{spread} ({int(row[f'{regime}_runs'])})",
                      "n/a" if pd.isna(row[regime]) else f"{100 * row[regime]:+.1f} pts"]
        raw = row.get("raw_difference", np.nan)
        cells.append("n/a" if pd.isna(raw) else f"{100 * raw:+.1f} pts")
        diff = row["difference"]
        confidence = row.get("confidence", np.nan)
        cells.append("n/a" if pd.isna(diff) else f"{100 * diff:+.1f} pts" + (
            "" if pd.isna(row["ci_low"]) else
            f" ({100 * row['ci_low']:+.1f} to {100 * row['ci_high']:+.1f}, "
            f"{100 * confidence:.4g}%)"))
        cells.append(str(int(row["n_pairs"])) if not pd.isna(row["n_pairs"]) else "0")
        rows.append(cells)
    return rows


def markdown(rows: list[list[str]]) -> str:
    cells = [[str(c).replace("|", "/") for c in row] for row in rows]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in cells[0]) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)


def html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def labels_of(summary: pd.DataFrame) -> list[str]:
    return [c[len("removed_"):] for c in summary.columns
            if c.startswith("removed_") and not c.endswith(("_lo", "_hi"))]


def terminal_text(summary: pd.DataFrame, comparison: pd.DataFrame, estimand: str = "") -> str:
    """What the command prints: the headline table, the comparison and the verdicts."""
    labels = labels_of(summary)
    parts = []
    if len(comparison) and comparison["figure"].str.startswith(KEPT_AT).any():
        parts += ["## The answer: accuracy kept at each pruning level (each level's "
                  "configuration chosen on val among its search runs, valued on fresh seeds "
                  "or by its one run: its test accuracy, minus the regime's unpruned "
                  "reference; per replicate, then the mean over replicates)", "",
                  markdown(level_rows(comparison)), ""]
        if estimand:
            parts += [estimand, ""]
    parts += ["## Headline: largest parameter reduction within X points of the unpruned reference "
             "(mean val accuracy of the baseline runs; selected on val, reported with test "
             "accuracy; configurations re-run on several seeds count with their seed mean)", "",
             markdown(headline_rows(summary, labels)), ""]
    if len(comparison):
        parts += ["## Fine-tuned minus scratch", "", markdown(comparison_rows(comparison)), "",
                  "## Verdicts", ""]
        parts += [f"- {line}" for line in headline_verdicts(comparison)]
    return "\n".join(parts) + "\n"
