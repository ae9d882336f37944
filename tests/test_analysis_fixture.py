"""The results directory the analysis tests read (``helpers.make_search``, written the way the
search writes one): reading its trials.csv and reading its storage give the same trials
table."""
from __future__ import annotations

from helpers import COLUMNS, make_search, standard_studies


def test_csv_and_storage_give_the_same_trials_table(tmp_path):
    from analysis.load import load_csv, load_results

    directory = make_search(tmp_path, standard_studies())
    from_csv = load_csv(directory / "trials.csv")
    from_storage = load_results(directory, prefer="storage").trials
    assert len(from_csv) == 22 and list(from_csv.columns) == list(from_storage.columns)
    assert list(from_csv.columns[:len(COLUMNS)]) == COLUMNS
    import pandas as pd

    pd.testing.assert_frame_equal(from_csv, from_storage)
    assert from_csv["state"].value_counts().to_dict() == {"COMPLETE": 18, "PRUNED": 2,
                                                          "FAIL": 1, "RUNNING": 1}
    assert from_csv["baseline"].sum() == 2
    running = from_csv[from_csv["state"] == "RUNNING"].iloc[0]
    assert pd.isna(running["val_acc"]) and pd.isna(running["params_total"])
    assert from_csv["params_total"].dtype == "Int64" and from_csv["lr"].dtype == float
