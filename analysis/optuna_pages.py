"""Per study, Optuna's own visualisations on one self-contained HTML page (plotly.js inline,
opens offline): Pareto front, hypervolume history, parameter importances for each objective,
slice and parallel-coordinate plots for each objective.

Importances use PED-ANOVA (Optuna's default evaluator), which ranks how much each parameter
matters for reaching the LOW end of its target. So the target is ``-val_acc`` for the
maximised objective (importance for a high val accuracy) and ``remaining_fraction`` as is for
the minimised one (importance for a small network). A plot Optuna cannot draw for a study (too
few completed trials, one parameter value only) is skipped with a note saying why.
"""
from __future__ import annotations

import html
import re
import warnings
from pathlib import Path
from typing import Callable

import optuna
import optuna.visualization as vis
from optuna.importance import PedAnovaImportanceEvaluator
from optuna.trial import TrialState

from hpo_prune.objectives import METRICS

from .fronts import REFERENCE

MIN_IMPORTANCE_TRIALS = 4  # fewer completed trials: importances are skipped
IMPORTANCE_NOTE = ("Importances: PED-ANOVA (Optuna's default evaluator, target quantile 0.1), "
                   "which ranks parameters by how much they matter for reaching LOW target "
                   "values. The val_acc importance therefore uses the target -val_acc "
                   "(importance for a HIGH validation accuracy); the remaining_fraction "
                   "importance uses remaining_fraction as is (importance for a SMALL network). "
                   "With fewer than about 50 completed trials the top quantile holds fewer "
                   "than 5 trials: treat importances as rough.")


def page_name(study_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", study_name) + ".html"


def _plots(study: optuna.Study) -> list[tuple[str, int, Callable]]:
    """(title, completed trials needed, figure factory) for each plot of the page."""
    names = study.metric_names or METRICS
    acc, rem = names.index("val_acc"), names.index("remaining_fraction")
    reference = [REFERENCE[n] for n in names]
    signs = {"val_acc": (-1.0, "-val_acc (higher val_acc is better)"),
             "remaining_fraction": (1.0, "remaining_fraction (smaller is better)")}
    plots = [
        ("Pareto front (val_acc up, remaining_fraction down)", 1,
         lambda: vis.plot_pareto_front(study, target_names=names)),
        (f"Hypervolume history (reference point: val_acc {REFERENCE['val_acc']:g}, "
         f"remaining_fraction {REFERENCE['remaining_fraction']:g})", 1,
         lambda: vis.plot_hypervolume_history(study, reference_point=reference))]
    for metric, i in (("val_acc", acc), ("remaining_fraction", rem)):
        sign, label = signs[metric]
        plots.append((f"Parameter importances for {metric} (PED-ANOVA on {label})",
                      MIN_IMPORTANCE_TRIALS,
                      lambda i=i, sign=sign, label=label: vis.plot_param_importances(
                          study, evaluator=PedAnovaImportanceEvaluator(),
                          target=lambda t: sign * t.values[i], target_name=label)))
    for metric, i in (("val_acc", acc), ("remaining_fraction", rem)):
        plots.append((f"Slice plot: {metric}", 1, lambda i=i, m=metric: vis.plot_slice(
            study, target=lambda t: t.values[i], target_name=m)))
    for metric, i in (("val_acc", acc), ("remaining_fraction", rem)):
        plots.append((f"Parallel coordinates: {metric}", 1,
                      lambda i=i, m=metric: vis.plot_parallel_coordinate(
                          study, target=lambda t: t.values[i], target_name=m)))
    return plots


def _known(warning) -> bool:
    """Warnings this page already answers: experimental APIs, PED-ANOVA's sign reminder."""
    return (issubclass(warning.category, optuna.exceptions.ExperimentalWarning)
            or str(warning.message).startswith("PedAnovaImportanceEvaluator computes"))


def study_page(study: optuna.Study, path: Path, title: str) -> dict[str, str]:
    """Write one study's page; returns {plot title: "" if drawn, else why it was skipped}."""
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    sections, outcome, plotly_included = [], {}, False
    for name, needed, make in _plots(study):
        said = []
        if done < needed:
            why = f"skipped: {done} completed trial(s), this plot needs {needed}"
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    fig = make()
                    why = ""
                except Exception as err:  # Optuna cannot draw it for this study: say why
                    why = f"skipped: Optuna could not draw it ({type(err).__name__}: {err})"
            said = [str(w.message) for w in caught if not _known(w)]
        outcome[name] = why
        sections.append(f"<h2>{html.escape(name)}</h2>")
        if why:
            sections.append(f"<p class=note>{html.escape(why)}</p>")
            continue
        fig.update_layout(title=None, height=460)
        sections.append(fig.to_html(full_html=False, include_plotlyjs=not plotly_included))
        plotly_included = True
        if said:
            sections.append(f"<p class=note>Optuna: {html.escape(' '.join(said))}</p>")
    counts = {s.name: 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] += 1
    state_text = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    head = (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}"
            "</title><style>body{font-family:sans-serif;max-width:1100px;margin:auto;"
            "padding:1em}.note{color:#555;font-size:90%}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>Optuna study <code>{html.escape(study.study_name)}"
            f"</code>: {state_text or 'no trials'}. Plots use completed trials only.</p>"
            f"<p class=note>{html.escape(IMPORTANCE_NOTE)}</p>")
    path.write_text(head + "\n".join(sections) + "</body></html>", encoding="utf-8")
    return outcome


def write_pages(storage_url: str, studies: dict[str, str], out: Path) -> dict[str, Path]:
    """One page per study (``studies`` maps study name -> page title) in ``out``; a study the
    storage does not hold gets no page."""
    from hpo_prune.search.storage import open_storage

    from .storage import study_names

    out.mkdir(parents=True, exist_ok=True)
    storage = open_storage(storage_url, create=False)
    present = set(study_names(storage))
    pages = {}
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for name, title in studies.items():
            if name not in present:  # e.g. a trials.csv row of a study the storage lacks
                continue
            study = optuna.load_study(study_name=name, storage=storage)
            path = out / page_name(name)
            study_page(study, path, title)
            pages[name] = path
    return pages
