"""The search: Ray Tune schedules the trials, Optuna samples them, one study per (model,
dataset, regime). ``python -m hpo_prune.search`` is its command line (``cli``).

It is split as Ray Tune splits its own: the driver here (``cli``: flags, presets, the results
folder, the design built once -> ``runner``: data and weights once, the studies opened, the
Tune experiment; ``folder_lock``: one driver per folder), the Optuna side in ``studies``
(the studies, the YAML spaces, the designs, ``--keep-models``, the lock drivers sharing a
study ask under) and the Ray Tune side in ``tuning`` (the searcher that serves the studies to
Tune, the trainable, early stopping, the terminal view). What it writes, and the rules its
readers share, are ``hpo_prune.results``'s.

The modules are internal; the public surface is the command, ``main(argv)`` as
``python -m hpo_prune.search`` runs it, and the files it writes (see README).
"""
__all__ = ["main"]


def __getattr__(name):  # the command loads on first use, not on importing a search module
    if name == "main":
        from .cli import main

        return main
    raise AttributeError(name)
