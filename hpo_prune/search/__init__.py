"""The search: Ray Tune schedules the trials, Optuna samples them, one study per (model,
dataset, regime). ``python -m hpo_prune.search`` is its command line (``cli``).

Reading order: ``cli`` (flags, presets, the results folder) -> ``runner`` (data and weights
once, the Tune experiment) -> ``studies`` (Optuna studies and the storage) and ``space`` (YAML
search spaces) -> ``searcher`` (Optuna ask/tell inside Tune) -> ``trainable`` (one trial in a
Tune worker: ``run_trial`` reporting to Tune) -> ``scheduler`` (sparsity-bucketed ASHA),
``progress`` (the terminal view), ``folder_lock`` and ``ask_lock`` (one driver per folder;
drivers sharing a study never over-ask). What it writes, and the rules its readers share,
are ``hpo_prune.results``'s.

The modules are internal; the public surface is the command, ``main(argv)`` as
``python -m hpo_prune.search`` runs it, and the files it writes (see README).
"""
__all__ = ["main"]


def __getattr__(name):  # the command loads on first use, not on importing a search module
    if name == "main":
        from .cli import main

        return main
    raise AttributeError(name)
