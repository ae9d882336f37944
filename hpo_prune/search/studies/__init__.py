"""The Optuna side of a search: one study per (model, dataset, regime, replicate)
(``study``), the search space (``space``), the designs that fill and value the studies
(``designs``), which models ``--keep-models front`` keeps (``keep``) and the lock drivers
share around asking (``ask_lock``). It knows nothing of Ray Tune."""
__all__: list[str] = []  # internal modules: the search's surface is its command
