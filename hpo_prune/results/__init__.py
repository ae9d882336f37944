"""What a search wrote, and the rules every reader of it applies: the bottom layer that the
search, the analysis and the export share (none of it imports torch).

``files`` (the names in a results folder), ``record`` (baselines, confirmations,
configurations, which models are kept), ``search_record`` (search.json, typed, read once),
``storage`` (opening an Optuna storage), ``trials_table`` (trials.csv and its columns).
"""
from .search_record import SearchRecord, StudyRecord, read

__all__ = ["SearchRecord", "StudyRecord", "read"]
