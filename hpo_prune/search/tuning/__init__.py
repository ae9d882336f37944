"""The Ray Tune side of a search: the trainable that runs one trial (``trainable``), the
searcher that serves the Optuna studies to Tune (``searcher``), early stopping
(``scheduler``), the live view (``progress``) and the messages the trials report
(``messages``). It asks the Optuna side (``search.studies``) and never builds a design."""
__all__: list[str] = []  # internal modules: the search's surface is its command
