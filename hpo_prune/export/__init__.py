"""The export: one trial of a search as a folder a user deploys. ``python -m hpo_prune.export``
is its command line (``cli``).

Reading order: ``cli`` (flags, the --out folder, the steps) -> ``choose`` (which trial:
``--trial N``, or ``--pick`` through the analysis's selection rule; where its model is) ->
``artifact`` (model.pt, model.json) -> ``onnx_file`` (``--format onnx`` and its check),
``measure`` (counts, latency).

The export sits on top: it reads a search's results through the analysis and the search's
trial table, and nothing imports it. The public surface is the command, ``main(argv)``, and
the files it writes (see README, "Exporting a model").
"""
from .cli import main

__all__ = ["main"]
