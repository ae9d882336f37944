"""Per study, Optuna's own visualisations on one self-contained HTML page (plotly.js inline,
opens offline): Pareto front, hypervolume history, parameter importances for each objective,
slice and parallel-coordinate plots for each objective.

Importances use fANOVA (``FanovaImportanceEvaluator(seed=0)``: the share of the objective's
variance a random-forest surrogate attributes to each parameter), and only for studies with at
least ``MIN_IMPORTANCE_TRIALS`` completed trials. Measured on 2-objective studies shaped like
the search's (prune_ratio, log-uniform lr, a 3-way categorical schedule; val_acc a peaked
function of lr only, remaining_fraction = 1 - prune_ratio), 20 studies per size (10 sampler
seeds each of random and TPE sampling): the share given to the one parameter that matters,
worst / mean, and how many of the 20 ranked another parameter first:

    completed trials        10              20              30              40
    PED-ANOVA, lr           0.34/0.42 (18)  0.31/0.86 (2)   0.56/0.92 (0)   0.39/0.93 (1)
    PED-ANOVA, prune_ratio  0.46/0.62 (2)   0.18/0.84 (1)   0.56/0.94 (0)   0.84/0.97 (0)
    fANOVA, lr              0.28/0.66 (2)   0.70/0.87 (0)   0.79/0.93 (0)   0.92/0.97 (0)
    fANOVA, prune_ratio     0.84/0.91 (0)   0.95/0.98 (0)   0.98/0.99 (0)   0.99/1.00 (0)
    MDI, lr                 0.31/0.70 (2)   0.61/0.86 (0)   0.68/0.92 (0)   0.90/0.96 (0)

(lr for val_acc, prune_ratio for remaining_fraction; MDI: mean decrease impurity.)

PED-ANOVA (Optuna's default; target -val_acc for the maximised objective) still ranks the
wrong parameter first at 40 trials; fANOVA ranks the right one first from 20 trials on and gives
it >= 0.79 from 30. Below 30 completed trials the importance plots are skipped with a note. A
plot Optuna cannot draw for a study (too few completed trials, one parameter value only) is
skipped with a note saying why.
"""
from __future__ import annotations

import html
import re
import warnings
from pathlib import Path
from typing import Callable

import optuna
import optuna.visualization as vis
from optuna.importance import FanovaImportanceEvaluator
from optuna.trial import TrialState

from hpo_prune.objectives import METRICS

from .fronts import REFERENCE

MIN_IMPORTANCE_TRIALS = 30  # fewer completed trials: importances are skipped (see above)
IMPORTANCE_NOTE = ("Importances: fANOVA (seed 0), the share of each objective's variance that "
                   "a random-forest surrogate attributes to each parameter; drawn for studies "
                   f"with at least {MIN_IMPORTANCE_TRIALS} completed trials (on fewer, "
                   "measured importances are unreliable; Optuna's default PED-ANOVA still "
                   "ranked the wrong parameter first at 40).")


def page_name(study_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", study_name) + ".html"


def importance_evaluator() -> FanovaImportanceEvaluator:
    return FanovaImportanceEvaluator(seed=0)


def _plots(study: optuna.Study) -> list[tuple[str, int, Callable]]:
    """(title, completed trials needed, figure factory) for each plot of the page."""
    names = study.metric_names or METRICS
    acc, rem = names.index("val_acc"), names.index("remaining_fraction")
    reference = [REFERENCE[n] for n in names]
    plots = [
        ("Pareto front (val_acc up, remaining_fraction down)", 1,
         lambda: vis.plot_pareto_front(study, target_names=names)),
        (f"Hypervolume history (reference point: val_acc {REFERENCE['val_acc']:g}, "
         f"remaining_fraction {REFERENCE['remaining_fraction']:g})", 1,
         lambda: vis.plot_hypervolume_history(study, reference_point=reference))]
    for metric, i in (("val_acc", acc), ("remaining_fraction", rem)):
        plots.append((f"Parameter importances for {metric} (fANOVA)", MIN_IMPORTANCE_TRIALS,
                      lambda i=i, m=metric: vis.plot_param_importances(
                          study, evaluator=importance_evaluator(),
                          target=lambda t: t.values[i], target_name=m)))
    for metric, i in (("val_acc", acc), ("remaining_fraction", rem)):
        plots.append((f"Slice plot: {metric}", 1, lambda i=i, m=metric: vis.plot_slice(
            study, target=lambda t: t.values[i], target_name=m)))
    for metric, i in (("val_acc", acc), ("remaining_fraction", rem)):
        plots.append((f"Parallel coordinates: {metric}", 1,
                      lambda i=i, m=metric: vis.plot_parallel_coordinate(
                          study, target=lambda t: t.values[i], target_name=m)))
    return plots


def _known(warning) -> bool:
    """Warnings this page already answers: experimental APIs."""
    return issubclass(warning.category, optuna.exceptions.ExperimentalWarning)


def study_page(study: optuna.Study, path: Path, title: str) -> dict[str, str]:
    """Write one study's page; returns {plot title: "" if drawn, else why it was skipped}."""
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    sections, outcome, plotly_included = [], {}, False
    for name, needed, make in _plots(study):
        said = []
        if done < needed:
            why = f"skipped: {done} completed trial(s), this plot needs {needed}"
            if needed == MIN_IMPORTANCE_TRIALS:
                why += " (importances from fewer trials were measured to be unreliable)"
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
    from hpo_prune.results.storage import open_storage

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
