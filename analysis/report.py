"""The offline report: ``index.html`` (headline table, verdicts, figures, links to every Optuna
page), ``summary.csv``, ``comparison.csv``, ``fronts.csv``, ``summary.md``, ``figures/`` and
``optuna/``.

It is built in a temporary sibling directory, ``index.html`` last, and moved into place only
when complete, so a failed run never leaves something that looks like a finished report.
"""
from __future__ import annotations

import html
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hpo_prune.errors import UsageError

from . import figures, tables
from .compare import compare_regimes, headline_verdicts
from .levels import estimand
from .fronts import MIN_TRIALS, REFERENCE
from .reference import CHANCE_MARGIN, NOT_TRAINED_GAP
from .load import Results
from .schema import column_order
from .selection import TOLERANCES
from .summary import N_BOOT, StudyResult, analyse, summary_table

MARKER = '<meta name="generator" content="hpo_prune analysis">'
STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em;color:#222}"
         "table{border-collapse:collapse;font-size:85%;margin:1em 0}td,th{border:1px solid #ccc;"
         "padding:3px 6px;vertical-align:top}th{background:#f2f2f2}img{max-width:100%}"
         ".note{color:#555;font-size:90%}")


@dataclass
class Report:
    directory: Path
    summary: pd.DataFrame
    comparison: pd.DataFrame
    studies: list[StudyResult]
    text: str  # the headline tables and verdicts as Markdown (also summary.md)


def _method_html(n_boot: int, seed: int) -> str:
    return (
        "<h2>Method</h2><ul>"
        "<li>Reference: the mean val accuracy of each study's completed unpruned baseline runs "
        "(and of their confirmation runs); the headline table shows it &plusmn; its sample "
        "standard deviation over those runs (the study's seed noise floor) and their number n. "
        "Its test accuracy is their mean test accuracy.</li>"
        "<li>Configurations: a trial and its confirmation runs (the same settings, other "
        "seeds; trials.csv column <code>confirms</code>) count as one configuration with the "
        "seed means of val accuracy, test accuracy and remaining fraction. Confirmed "
        "configurations (more than one seed) are marked in fronts.csv (<code>n_seeds</code>, "
        "<code>confirmed</code>) and drawn as diamonds with their seed spread.</li>"
        "<li>Fronts: completed configurations; objectives val_acc (maximised) and "
        "remaining_fraction (minimised). The fitted front is an isotonic (monotone) regression "
        "through the non-dominated configurations, linear between them.</li>"
        "<li>Pruning levels (searches run with --levels): every pruned trial was assigned a "
        "level, round robin, the same levels and trial seeds in both regimes. Per level, the "
        "search run with the best <b>val</b> accuracy is the level's configuration; it was "
        "re-run on fresh seeds (the same in both regimes) and the level's accuracy is the "
        "mean over those fresh runs only (the choosing run is not counted, except where the "
        "level had a single run, which chose nothing). Kept = the level's test accuracy minus "
        "the regime's reference test accuracy. With --replicates R the whole design ran R "
        "times per regime, each replicate with its own baselines, sampler seed and trial "
        "seeds (a block of seeds shared by its two regimes). Fine-tuned minus scratch = the "
        "mean over replicates of the difference in kept accuracy; its interval is a t "
        "interval whose variance is the replicates' (s&sup2;/R: configuration draws, choice, "
        "seeds, reference) plus the test images' sampling (var of the per-image score / N), "
        "with Welch-Satterthwaite degrees of freedom. 80% is the pre-specified primary level "
        "(95%); the other levels are Holm-adjusted, their intervals at the Holm step's "
        "confidence. A replicate missing a value in either regime is dropped from both at "
        "that level (listed); fewer than 2 replicates or zero variance give no verdict. "
        "Coverage was measured by simulation (benchmarks/verdict_coverage.py). In these "
        "searches the \"removed within X points\" figures are the largest level held within "
        "X points on val, a description without interval.</li>"
        "<li>Selection rule: among configurations whose <b>val</b> accuracy (seed mean where "
        "confirmed, the single run otherwise: only the search's Pareto front is re-run) is "
        "within X points of the reference, the one removing the most parameters. Its "
        "<b>test</b> accuracy (seed mean &plusmn; spread) is reported, never used to choose.</li>"
        "<li>Val resolution: the size of the val split the study's trials were evaluated on "
        "(from the trials' data settings, when the dataset can be loaded here), the accuracy "
        "one image is worth, and the binomial standard error of the reference accuracy, "
        "sqrt(p(1-p)/n_val): a tolerance below it is within the val split's own noise.</li>"
        f"<li>Stayed at chance: a completed run whose val accuracy is below 1/classes + "
        f"{100 * CHANCE_MARGIN:g} points (counted per study). A study whose reference stayed at "
        f"chance, or is more than {100 * NOT_TRAINED_GAP:g} points below the study's best "
        "configuration, did not train: its \"within X points\" figures and the regime "
        "comparison built on them are marked not meaningful.</li>"
        f"<li>Bootstrap: {n_boot} resamples (seed {seed}) of each study's completed pruned "
        "configurations with replacement, and of the seeds inside each drawn configuration and "
        "of the reference's baseline runs, so the intervals include seed noise; the intervals "
        "are the 2.5th and 97.5th percentiles, as they come out (a maximum's point estimate "
        "often sits at the top of its interval). Fine-tuned minus scratch: the two studies "
        "resampled independently; these bootstrap intervals' coverage is not established "
        "(70-93% for a nominal 95% in simulation), so they are not called 95% intervals. "
        f"Fewer than {MIN_TRIALS} completed pruned configurations: "
        "\"insufficient trials\".</li>"
        f"<li>Hypervolume reference point: val_acc {REFERENCE['val_acc']:g}, remaining_fraction "
        f"{REFERENCE['remaining_fraction']:g} (the area of the accuracy x fraction-removed unit "
        "square the front dominates).</li></ul>")


def _index_html(results: Results, report: Report, figure_files: list[str],
                pages: dict[str, str], page_notes: list[str], n_boot: int, seed: int) -> str:
    labels = tables.labels_of(report.summary)
    parts = [f"<!doctype html><html><head><meta charset=utf-8>{MARKER}"
             f"<title>Pruning search report</title><style>{STYLE}</style></head><body>",
             "<h1>How far can the network be pruned, fine-tuned vs from scratch?</h1>",
             f"<p class=note>{len(results.trials)} trials in {len(report.studies)} studies, "
             f"read from {html.escape(results.origin)}.</p>"]
    parts += [f"<p class=note>{html.escape(n)}</p>" for n in results.notes]
    verdicts = headline_verdicts(report.comparison)
    parts.append("<h2>Verdicts</h2>")
    parts.append("<ul>" + "".join(f"<li>{html.escape(v)}</li>" for v in verdicts) + "</ul>"
                 if verdicts else "<p>No (model, dataset) has both regimes: no verdict.</p>")
    levels = tables.level_rows(report.comparison) if len(report.comparison) else [[]]
    if len(levels) > 1:
        parts += ["<h2>Accuracy kept at each pruning level</h2>",
                  "<p class=note>Each level's configuration was chosen on val among the "
                  "level's search runs and valued on fresh seeds, or by its one run (the "
                  "same seeds in both regimes of a replicate); its test accuracy minus the "
                  "regime's unpruned reference is the accuracy it keeps. The table shows "
                  "the means over replicates (&plusmn; their std). Fine-tuned minus "
                  "scratch: its interval over replicates and test images (see Method).</p>",
                  f"<p class=note>{html.escape(estimand(results.search))}</p>",
                  tables.html_table(levels)]
    parts += ["<h2>Headline table</h2>",
              "<p class=note>Largest fraction of parameters removed within X points of the "
              "unpruned reference (mean val accuracy of the baseline runs), selected on val, "
              "reported with the selected configuration's test accuracy (seed mean &plusmn; "
              "std when it was run on several seeds); bootstrap percentile intervals over "
              "configurations and seeds (searches without levels; with levels the figure is "
              "the largest level held, without interval). \"Stayed at chance\": completed "
              "runs whose val accuracy is below 1/classes + "
              f"{100 * CHANCE_MARGIN:g} points.</p>",
              tables.html_table(tables.headline_rows(report.summary, labels))]
    if len(report.comparison):
        parts += ["<h2>Fine-tuned minus scratch</h2>",
                  tables.html_table(tables.comparison_rows(report.comparison))]
    parts.append("<h2>Figures</h2>")
    for name in figure_files:
        if name.endswith(".png"):
            svg = name[:-4] + ".svg"
            parts.append(f'<p><img src="figures/{html.escape(name)}" alt="{html.escape(name)}">'
                         f'<br><a href="figures/{html.escape(svg)}">SVG</a></p>')
    parts.append("<h2>Optuna's visualisations, per study</h2><ul>")
    parts += [f'<li><a href="optuna/{html.escape(page)}">{html.escape(name)}</a></li>'
              for name, page in pages.items()]
    parts.append("</ul>")
    parts += [f"<p class=note>{html.escape(n)}</p>" for n in page_notes]
    parts.append(_method_html(n_boot, seed))
    parts.append('<h2>Files</h2><ul><li><a href="summary.csv">summary.csv</a>: the headline '
                 'table (fractions in [0, 1])</li><li><a href="comparison.csv">comparison.csv'
                 '</a>: fine-tuned minus scratch</li><li><a href="fronts.csv">fronts.csv</a>: '
                 'the Pareto-optimal configurations with their settings (seed means; '
                 'n_seeds, confirmed)</li><li><a '
                 'href="summary.md">summary.md</a>: the tables as Markdown</li></ul>')
    return "\n".join(parts) + "</body></html>\n"


def _check_out(out: Path) -> None:
    if out.exists():
        previous = out / "index.html"
        is_report = previous.is_file() and MARKER in previous.read_text(errors="replace")
        if not out.is_dir() or (any(out.iterdir()) and not is_report):
            raise UsageError(f"--out {out} exists and is not a report of this tool; pass a new "
                             "directory (an earlier report there would be replaced)")


def build_report(results: Results, out: str | Path, n_boot: int = N_BOOT, seed: int = 0,
                 tolerances=TOLERANCES, optuna_pages: bool = True) -> Report:
    out = Path(out)
    _check_out(out)
    studies = analyse(results.trials, tolerances, n_boot, seed)
    summary = summary_table(studies)
    comparison = compare_regimes(studies)
    text = tables.terminal_text(summary, comparison, estimand(results.search))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a report is for reading
    try:
        fig_dir = tmp / "figures"
        names = []
        for dataset in sorted({r.dataset for r in studies}):
            names += figures.levels_figure(studies, comparison, dataset, fig_dir)
            names += figures.dataset_figure(studies, dataset, fig_dir)
        names += figures.summary_figure(summary, tolerances, fig_dir)
        names += figures.hypervolume_figure(studies, fig_dir)
        pages, page_notes = {}, []
        if not optuna_pages:
            page_notes.append("Optuna pages were not requested (--no-optuna-pages).")
        elif results.storage is None:
            page_notes.append("No Optuna storage was found, so there are no Optuna pages.")
        else:
            from .optuna_pages import write_pages

            titles = {r.name: f"{r.model} on {r.dataset}, {r.regime}" for r in studies}
            written = write_pages(results.storage, titles, tmp / "optuna")
            pages = {name: path.name for name, path in written.items()}
            page_notes += [f"No Optuna page for {r.name}: the storage does not hold it."
                           for r in studies if r.name not in written]
        summary.to_csv(tmp / "summary.csv", index=False)
        comparison.to_csv(tmp / "comparison.csv", index=False)
        fronts = pd.concat([r.front for r in studies]) if studies else results.trials.iloc[:0]
        fronts[column_order(fronts.columns)].to_csv(tmp / "fronts.csv", index=False)
        (tmp / "summary.md").write_text(text, encoding="utf-8")
        report = Report(out, summary, comparison, studies, text)
        (tmp / "index.html").write_text(
            _index_html(results, report, names, pages, page_notes, n_boot, seed),
            encoding="utf-8")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            out.rename(old / out.name)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return report
