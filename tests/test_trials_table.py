"""trials.csv's rows (hpo_prune.results.trials_table.frame) from a real Optuna study holding
trials as the search records them: the documented columns, one row per trial with its state,
values, baseline flag, measurements and settings."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import optuna
import pandas as pd
import pytest

from hpo_prune.settings import TrialConfig
from hpo_prune.results import trials_table

ROOT = Path(__file__).resolve().parents[1]
State = optuna.trial.TrialState
Dist = optuna.distributions


def documented_columns() -> tuple[list[str], list[str]]:
    """docs/search.md's results folder section: the leading columns, then the named trial
    settings."""
    text = " ".join(ROOT.joinpath("docs", "search.md").read_text().split())
    found = re.search(r"`trials\.csv` columns: (.*?), then every trial setting \((.*?)\)", text)
    assert found, "docs/search.md no longer lists the columns of trials.csv"
    names = lambda part: re.findall(r"[a-z_]+", part.replace("...", ""))  # noqa: E731
    return names(found.group(1)), names(found.group(2))


DISTRIBUTIONS = {"prune_ratio": Dist.FloatDistribution(0.0, 0.95),
                 "lr": Dist.FloatDistribution(1e-4, 0.1, log=True),
                 "schedule": Dist.CategoricalDistribution(["one_shot", "agp"])}
BASE = TrialConfig(model="vgg16", dataset="digits", init="scratch", epochs=3, seed=7)
MEASURED = {"test_acc": 0.88, "params_total": 1000, "params_remaining": 400,
            "macs_dense": 5000, "macs_remaining": 2500, "achieved_sparsity": 0.6,
            "requested_sparsity": 0.6, "val_acc_before_pruning": 0.93, "seconds": 12.5,
            "wall_seconds": 13.0, "epochs_run": 3}


def attrs(params: dict, **more) -> dict:
    """User attributes as StudySearcher sets them: the whole config, the baseline flag, the
    driver, then the measurements of the trial's end."""
    config = BASE.replace(**params)
    return {"config": config.to_dict(), "baseline": config.prune.prune_ratio == 0,
            "driver": "host:1", **more}


@pytest.fixture
def study(tmp_path) -> optuna.Study:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}",
                                study_name="t.vgg16.digits.scratch",
                                directions=["maximize", "minimize"])
    with warnings.catch_warnings():  # experimental in Optuna; the search sets them too
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_acc", "remaining_fraction"])
    for key, value in (("model", "vgg16"), ("dataset", "digits"), ("regime", "scratch"),
                       ("source", "fractal")):
        study.set_user_attr(key, value)
    finished = [
        ({"prune_ratio": 0.0, "lr": 0.01, "schedule": "one_shot"}, State.COMPLETE, [0.95, 1.0],
         {**MEASURED, "params_remaining": 1000, "model_dir": "tune/run-1/a/checkpoint_2"}),
        ({"prune_ratio": 0.6, "lr": 0.02, "schedule": "agp"}, State.COMPLETE, [0.9, 0.4],
         {**MEASURED, "model_dir": "tune/run-1/b/checkpoint_2"}),
        ({"prune_ratio": 0.8, "lr": 0.005, "schedule": "agp"}, State.PRUNED, None,
         {"epochs_run": 1, "val_acc_before_pruning": 0.5}),
        ({"prune_ratio": 0.9, "lr": 0.05, "schedule": "one_shot"}, State.FAIL, None,
         {"fail_reason": "training diverged: loss nan", "epochs_run": 2}),
    ]
    for params, state, values, more in finished:
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={k: DISTRIBUTIONS[k] for k in params}, state=state,
            values=values, user_attrs=attrs(params, **more)))
    running = study.ask(DISTRIBUTIONS)  # asked by a driver, not yet told
    for key, value in attrs(running.params).items():
        running.set_user_attr(key, value)
    study.enqueue_trial({"prune_ratio": 0.3, "lr": 0.01, "schedule": "agp"})  # queued again
    return study


def test_columns_are_the_documented_ones():
    leading, settings = documented_columns()
    columns = trials_table.COLUMNS
    assert columns[:len(leading)] == leading
    assert "trial" in leading and "study" in leading
    assert set(settings) <= set(columns[len(leading):])
    # every trial setting is a column (model, dataset and source among the leading ones)
    assert set(TrialConfig.keys()) <= set(columns)
    assert len(set(columns)) == len(columns)


def test_rows_of_a_study(study):
    table = trials_table.frame([study])
    assert list(table.columns) == trials_table.COLUMNS
    assert list(table.trial) == [0, 1, 2, 3, 4, 5]
    assert list(table.state) == ["COMPLETE", "COMPLETE", "PRUNED", "FAIL", "RUNNING",
                                 "WAITING"]
    assert (table.study == "t.vgg16.digits.scratch").all()
    for key, value in (("model", "vgg16"), ("dataset", "digits"), ("regime", "scratch"),
                       ("source", "fractal")):
        assert (table[key] == value).all(), key
    assert [bool(b) for b in table.baseline] == [True, False, False, False, False, False]

    rows = {int(r.trial): r for r in table.itertuples(index=False)}
    assert (rows[0].val_acc, rows[0].remaining_fraction) == (0.95, 1.0)
    assert (rows[1].val_acc, rows[1].remaining_fraction) == (0.9, 0.4)
    for number in (2, 3, 4, 5):  # no values unless COMPLETE
        assert pd.isna(rows[number].val_acc) and pd.isna(rows[number].remaining_fraction)

    for key, value in MEASURED.items():
        assert getattr(rows[1], key) == value, key
    assert rows[0].params_remaining == 1000
    assert rows[1].model_dir == "tune/run-1/b/checkpoint_2"
    assert rows[1].driver == "host:1"
    assert rows[2].epochs_run == 1 and rows[2].val_acc_before_pruning == 0.5
    assert pd.isna(rows[2].test_acc) and pd.isna(rows[2].model_dir)
    assert rows[3].fail_reason == "training diverged: loss nan" and rows[3].epochs_run == 2
    assert all(pd.isna(rows[n].fail_reason) for n in (0, 1, 2, 4, 5))

    # the settings: the trial's parameters over the rest of its config
    for number, (ratio, lr, schedule) in {0: (0.0, 0.01, "one_shot"), 1: (0.6, 0.02, "agp"),
                                          2: (0.8, 0.005, "agp"),
                                          3: (0.9, 0.05, "one_shot")}.items():
        row = rows[number]
        assert (row.prune_ratio, row.lr, row.schedule) == (ratio, lr, schedule), number
        assert (row.epochs, row.seed, row.init) == (3, 7, "scratch"), number
        assert (row.granularity, row.scope) == (BASE.prune.granularity, BASE.prune.scope), number
    running = study.trials[4]
    assert rows[4].prune_ratio == running.params["prune_ratio"]
    assert rows[4].lr == running.params["lr"] and rows[4].epochs == 3


def test_rows_of_several_studies_and_of_none(study, tmp_path):
    other = optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}",
                                study_name="t.vgg16.digits.pretrained",
                                directions=["maximize", "minimize"])
    other.set_user_attr("regime", "pretrained")
    other.add_trial(optuna.trial.create_trial(
        params={"prune_ratio": 0.0}, distributions={"prune_ratio": DISTRIBUTIONS["prune_ratio"]},
        values=[0.97, 1.0], user_attrs=attrs({"prune_ratio": 0.0, "init": "pretrained"})))
    table = trials_table.frame([study, other])
    assert list(table.study) == ["t.vgg16.digits.scratch"] * 6 + ["t.vgg16.digits.pretrained"]
    last = table.iloc[-1]
    assert (last.trial, last.state, bool(last.baseline)) == (0, "COMPLETE", True)
    assert (last.regime, last.init, last.val_acc) == ("pretrained", "pretrained", 0.97)

    empty = trials_table.frame([])
    assert list(empty.columns) == trials_table.COLUMNS and len(empty) == 0


def test_model_kept_is_looked_up_in_the_results_folder(study, tmp_path):
    """trials.csv's model_kept: True where the trial's model file is there, False where it is
    gone (--keep-models), empty for trials without a model and for a table made without the
    results folder."""
    from hpo_prune.files import MODEL_FILE

    folder = tmp_path / "results"
    (folder / "tune/run-1/a/checkpoint_2").mkdir(parents=True)
    (folder / "tune/run-1/a/checkpoint_2" / MODEL_FILE).write_bytes(b"model")
    (folder / "tune/run-1/b/checkpoint_2").mkdir(parents=True)  # its model was removed
    written = trials_table.write(folder / "trials.csv", [study])
    back = pd.read_csv(folder / "trials.csv")
    for table in (written, back):
        kept = list(table.model_kept)
        assert kept[:2] == [True, False] and all(pd.isna(k) for k in kept[2:]), kept
    assert trials_table.frame([study]).model_kept.isna().all()  # no folder: unknown
