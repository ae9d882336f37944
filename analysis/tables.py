"""The headline and comparison tables as text: Markdown (terminal, summary.md) and HTML.

Data stay fractions; only these renderings show percentages.
"""
from __future__ import annotations

import html

import pandas as pd

from hpo_prune.objectives import FINE_TUNED, SCRATCH

from .compare import headline_verdicts
from .schema import STATES


def _pct(x) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{100 * x:.1f}%"


def _removed_cell(row: pd.Series, label: str) -> str:
    removed = row[f"removed_{label}"]
    if pd.isna(removed):
        return "n/a (no baseline)"
    low, high = row[f"removed_{label}_lo"], row[f"removed_{label}_hi"]
    interval = ("insufficient trials" if pd.isna(low)
                else f"95% CI {100 * low:.1f} to {100 * high:.1f}")
    return (f"{_pct(removed)} ({interval}); trial #{row[f'trial_{label}']}, test "
            f"{_pct(row[f'test_acc_{label}'])}")


def headline_rows(summary: pd.DataFrame, labels: list[str]) -> list[list[str]]:
    header = (["model", "dataset", "regime", "unpruned test acc"]
              + [f"removed within {label[:-2]} pt" for label in labels]
              + ["hypervolume", "trials (" + "/".join(s[0] for s in STATES) + ")", "note"])
    rows = [header]
    for _, row in summary.iterrows():
        hv_low = row["hypervolume_lo"]
        hv = (f"{row['hypervolume']:.3f}" + ("" if pd.isna(hv_low) else
                                             f" ({hv_low:.3f} to {row['hypervolume_hi']:.3f})"))
        counts = "/".join(str(row[f"n_{s.lower()}"]) for s in STATES)
        baseline = ("missing" if pd.isna(row["unpruned_test_acc"])
                    else f"{_pct(row['unpruned_test_acc'])} (#{row['baseline_trial']})")
        rows.append([row["model"], row["dataset"], row["regime"], baseline]
                    + [_removed_cell(row, label) for label in labels]
                    + [hv, counts, row["note"] or ""])
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


def terminal_text(summary: pd.DataFrame, comparison: pd.DataFrame) -> str:
    """What the command prints: the headline table, the comparison and the verdicts."""
    labels = labels_of(summary)
    parts = ["## Headline: largest parameter reduction within X points of the unpruned val "
             "accuracy (selected on val, reported with test accuracy)", "",
             markdown(headline_rows(summary, labels)), ""]
    if len(comparison):
        parts += ["## Fine-tuned minus scratch", "", markdown(comparison_rows(comparison)), "",
                  "## Verdicts", ""]
        parts += [f"- {line}" for line in headline_verdicts(comparison)]
    return "\n".join(parts) + "\n"
