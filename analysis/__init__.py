"""analysis: a pruning search's trials -> Pareto fronts, fitted fronts with bootstrap bands,
hypervolume, the fine-tuned vs scratch verdict, figures and an offline report.

Public API:
    pareto_front(df, objectives)            the non-dominated rows
    hypervolume(points, reference, directions) -> float
    fit_front(df, ...)                      the monotone fitted front with its bootstrap band
    summarise(results_dir_or_df)            the headline table (one row per study)
    load_results(dir) / load_storage(url, studies) / load_csv(path)   the trials table
    build_report(results, out)              the offline report directory

Command line: ``python -m analysis --results DIR``.
"""
import importlib

_HOMES = {"REFERENCE": "fronts", "fit_front": "fronts", "hypervolume": "fronts",
          "hypervolume_history": "fronts", "pareto_front": "fronts", "Results": "load",
          "load_csv": "load", "load_results": "load", "load_storage": "load",
          "build_report": "report", "analyse": "summary", "summarise": "summary"}
__all__ = sorted(_HOMES)


def __getattr__(name):  # import on first use: the command line starts faster
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
