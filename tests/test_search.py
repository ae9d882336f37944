"""The search end to end: real Ray Tune runs on the CPU over real Optuna storages."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch

from hpo_prune import models
from hpo_prune.resolution import resolve_data
from hpo_prune.training import precision
from helpers import ENV, TINY, search, studies

# two baselines and one sampled trial per study; confirmation runs: test_search_replicates.py
TWO = ["--trials", "3", "--baseline-seeds", "2", "--confirm", "0"]


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory, source):
    root = tmp_path_factory.mktemp("search")
    proc = search(*TINY, *TWO, "--source", str(source), "--name", "two",
                  "--results", str(root), "--max-concurrent", "2", cwd=root)
    return root / "two", proc


def test_search_runs_two_studies_with_both_objectives(two_studies):
    folder, proc = two_studies
    found = studies(folder)
    assert sorted(found) == ["two.mobilenet_v2.digits.pretrained",
                             "two.mobilenet_v2.digits.scratch"]
    for name, study in found.items():
        assert study.directions == [optuna.study.StudyDirection.MAXIMIZE,
                                    optuna.study.StudyDirection.MINIMIZE]
        assert study.metric_names == ["val_acc", "remaining_fraction"]
        assert study.user_attrs["regime"] == name.rsplit(".", 1)[1]
        complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        assert len(complete) == 3
        baselines = [t for t in complete if t.user_attrs["baseline"]]
        # --baseline-seeds 2: two unpruned trials at the family's default learning rate, with
        # the seeds --seed (0) and --seed + 1
        assert len(baselines) == 2
        assert sorted(t.user_attrs["config"]["seed"] for t in baselines) == [0, 1]
        lr = models.recipe("mobilenet_v2", study.user_attrs["regime"], dense=True)["lr"]
        for baseline in baselines:
            assert baseline.params["prune_ratio"] == 0.0 and baseline.params["lr"] == lr
            assert baseline.values[1] == pytest.approx(1.0)
        for trial in complete:
            acc, remaining = trial.values
            assert 0 <= acc <= 1 and 0 < remaining <= 1
            attrs = trial.user_attrs
            assert 0 <= attrs["test_acc"] <= 1
            assert remaining == pytest.approx(attrs["params_remaining"] / attrs["params_total"])
            assert attrs["config"]["prune_ratio"] == trial.params["prune_ratio"]
            assert attrs["config"]["init"] == study.user_attrs["regime"]
            assert attrs["epochs_run"] == 1
            # the pretrained regime really starts from the source's weights
            assert (attrs["params_loaded"] > 0) == (study.user_attrs["regime"] == "pretrained")
        pruned = [t for t in complete if t.params["prune_ratio"] > 0.3]
        for trial in pruned:  # pruning really shrinks the count
            assert trial.values[1] < 1 - 0.5 * trial.params["prune_ratio"]
    assert "Pareto front" in proc.stdout and "optuna-dashboard sqlite:///" in proc.stdout


def test_trials_csv_matches_the_storage(two_studies):
    folder, _ = two_studies
    table = pd.read_csv(folder / "trials.csv")
    for column in ("study", "model", "dataset", "regime", "source", "trial", "state", "val_acc",
                   "test_acc", "remaining_fraction", "params_remaining", "macs_remaining",
                   "prune_ratio", "schedule", "lr", "granularity", "scope", "epochs", "seconds",
                   "seed"):
        assert column in table.columns, column
    assert not table.duplicated(["study", "trial"]).any()
    for name, study in studies(folder).items():
        rows = table[table.study == name].set_index("trial")
        for trial in study.get_trials():
            row = rows.loc[trial.number]
            assert row.state == trial.state.name
            if trial.values:
                assert row.val_acc == pytest.approx(trial.values[0])
                assert row.test_acc == pytest.approx(trial.user_attrs["test_acc"])
    pretrained = table[table.regime == "pretrained"]
    assert pretrained.source.str.endswith("mobilenet_v2_digits.pt").all()


def test_every_complete_trial_keeps_its_trained_model(two_studies):
    """model_dir (relative to the results folder) is the trial's final checkpoint: the model
    as python -m hpo_prune.train saves it, loadable with load_model, with the trial's size and
    test accuracy; no training state (optimizer, masks) is kept once a trial has finished.
    (The default --keep-models front: nothing is dominated here, 1 sampled trial a study.)"""
    from hpo_prune import TrialConfig, load_model
    from hpo_prune.data import datasets
    from hpo_prune.training.loop import evaluate
    from hpo_prune.pruning import count
    from hpo_prune.trial import transforms_for

    folder, _ = two_studies
    table = pd.read_csv(folder / "trials.csv")
    complete = table[table.state == "COMPLETE"]
    assert len(complete) == 6 and complete.model_dir.notna().all()
    # the default --keep-models front: the first baseline run of each study keeps its model,
    # the second seed's goes (a replicate of the reference); nothing else is dominated here
    replicas = complete.baseline & complete.duplicated(["study", "baseline"])
    assert complete[~replicas].model_kept.all() and not complete[replicas].model_kept.any()
    assert replicas.sum() == 2
    complete = complete[~replicas]
    assert json.loads((folder / "search.json").read_text())["keep_models"] == "front"
    data = None
    for row in complete.itertuples():
        run_dir = folder / row.model_dir
        assert not Path(row.model_dir).is_absolute() and run_dir.is_dir()
        assert sorted(p.name for p in run_dir.iterdir()) == ["metrics.json", "model.pt",
                                                            "report.json"]
        assert len(list(run_dir.parent.glob("checkpoint_*"))) == 1  # the epochs' are gone
        model = load_model(run_dir)
        assert count(model, (1, 3, 16, 16))["params_nonzero"] == row.params_remaining
        if data is None:  # every trial of the search sees the same test split
            config = TrialConfig.from_dict(json.loads((run_dir / "metrics.json").read_text())
                                           ["config"])
            data = datasets.load(resolve_data(config.data))
        acc = evaluate(model, data.test, transforms_for(data, torch.device("cpu"), "none",
                                                    config.train.precision))
        assert acc == pytest.approx(row.test_acc)


def test_every_trial_computes_in_the_precision_the_search_resolved(two_studies):
    # --precision auto, resolved once on the driver: search.json, trials.csv and every
    # trial's record hold what this machine does well (bf16 only where it is native)
    folder, proc = two_studies
    chosen = precision.choose(torch.device("cpu"))
    assert f"epochs each in {chosen}," in proc.stdout
    assert json.loads((folder / "search.json").read_text())["settings"]["precision"] == chosen
    assert set(pd.read_csv(folder / "trials.csv").precision) == {chosen}
    for study in studies(folder).values():
        for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
            assert trial.user_attrs["config"]["precision"] == chosen


def test_existing_search_needs_resume_and_resume_of_a_finished_one_runs_nothing(
        two_studies, source):
    folder, _ = two_studies
    again = search(*TINY, *TWO, "--source", str(source), "--name", "two",
                   "--results", str(folder.parent), cwd=folder.parent, check=False)
    assert again.returncode == 2
    assert "--resume" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    # --resume keeps the search's own --baseline-seeds (2) and refuses another
    other = search(*TINY, "--trials", "3", "--confirm", "0", "--source", str(source),
                   "--name", "two", "--results", str(folder.parent), "--resume",
                   "--baseline-seeds", "3", cwd=folder.parent, check=False)
    assert other.returncode == 2 and "--baseline-seeds 2" in other.stderr
    # --resume keeps the search's own precision: --precision auto resumes it, another value
    # is refused (its trials computed in the recorded one)
    ran = json.loads((folder / "search.json").read_text())["settings"]["precision"]
    other = {"bf16": "fp32", "fp32": "bf16"}[ran]
    refused = search(*TINY, "--trials", "3", "--confirm", "0", "--source", str(source),
                     "--name", "two", "--results", str(folder.parent), "--resume",
                     "--precision", other, cwd=folder.parent, check=False)
    assert refused.returncode == 2 and f"--precision {ran}" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    resumed = search(*TINY, "--trials", "3", "--confirm", "0", "--source", str(source),
                     "--name", "two", "--results", str(folder.parent), "--resume",
                     cwd=folder.parent)
    assert "nothing to run" in resumed.stdout
    assert json.loads((folder / "search.json").read_text())["baseline_seeds"] == 2
    for study in studies(folder).values():
        assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 3


def test_same_seed_gives_the_same_suggestions_sequentially(tmp_path):
    """... and --keep-models none (first search) deletes each model while Tune runs on."""
    one = ["--baseline-seeds", "1", "--confirm", "0"]  # one baseline, then two sampled trials
    first = search(*TINY, *one, "--regimes", "scratch", "--trials", "3", "--max-concurrent",
                   "1", "--name", "a", "--results", str(tmp_path), "--seed", "7",
                   "--keep-models", "none", cwd=tmp_path)
    second = search(*TINY, *one, "--regimes", "scratch", "--trials", "3", "--max-concurrent",
                    "1", "--name", "b", "--results", str(tmp_path), "--seed", "7", cwd=tmp_path)
    assert first.returncode == second.returncode == 0
    params = [[t.params for t in next(iter(studies(tmp_path / n).values())).get_trials()]
              for n in ("a", "b")]
    assert params[0] == params[1] and len(params[0]) == 3
    for name in ("a", "b"):  # b: the default front; its baseline stays in any case
        table = pd.read_csv(tmp_path / name / "trials.csv")
        assert len(table) == 3 and (name == "b" or not table.model_kept.any()), name
        for row in table.itertuples():
            model = tmp_path / name / row.model_dir / "model.pt"
            assert model.exists() == row.model_kept, row
            assert (tmp_path / name / row.model_dir / "metrics.json").exists()
    assert pd.read_csv(tmp_path / "b" / "trials.csv").query("baseline").model_kept.all()


def test_diverging_trial_is_recorded_fail_and_the_search_goes_on(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("params: {}\nfixed: {schedule: one_shot}\n"
                     "grid:\n  prune_ratio: [0.0]\n  lr: [0.01, 1.0e+30]\n")
    proc = search(*TINY, "--regimes", "scratch", "--sampler", "grid", "--space", str(space),
                  "--trials", "2", "--max-concurrent", "1", "--name", "f",
                  "--results", str(tmp_path), cwd=tmp_path, check=False)
    study = next(iter(studies(tmp_path / "f").values()))
    failed = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert failed and all("diverged" in t.user_attrs["fail_reason"] for t in failed)
    assert all(t.params["lr"] == 1e30 for t in failed)
    assert complete and all(t.params["lr"] == 0.01 for t in complete)
    table = pd.read_csv(tmp_path / "f" / "trials.csv")
    assert table[table.state == "FAIL"].fail_reason.str.contains("diverged").all()
    # README, Reliability: a failed grid point is not run again; the search exits 1 saying so
    assert proc.returncode == 1
    assert "every grid point has run; 1 failed" in proc.stdout


def test_interrupted_search_resumes_to_exact_counts(tmp_path):
    args = [*TINY, "--regimes", "scratch", "--trials", "4", "--baseline-seeds", "3",
            "--max-concurrent", "1", "--name", "r", "--results", str(tmp_path)]
    proc = subprocess.Popen([sys.executable, "-m", "hpo_prune.search", *args], cwd=tmp_path,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    csv = tmp_path / "r" / "trials.csv"
    deadline = time.time() + 300
    while time.time() < deadline:  # interrupt once the first trial has finished
        if csv.exists() and (pd.read_csv(csv).state == "COMPLETE").sum() >= 1:
            break
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    # README, Reliability: exit status 1, the running trial FAIL (interrupted), recorded so
    assert proc.returncode == 1, out[-2000:]
    assert "continue it with the same command plus --resume" in out
    study = next(iter(studies(tmp_path / "r").values()))
    done_before = len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    assert 1 <= done_before < 4
    rows = pd.read_csv(tmp_path / "r" / "trials.csv")
    interrupted = rows[rows.state == "FAIL"]
    assert len(interrupted) >= 1 and interrupted.fail_reason.str.startswith("interrupted").all()
    search(*args, "--resume", cwd=tmp_path)
    study = next(iter(studies(tmp_path / "r").values()))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    # 3 baselines (seeds 0, 1, 2) among the 4, then one confirmation run (seed
    # 1) of the sampled trial, which has fewer parameters than the baselines: on the front
    main = [t for t in complete if t.user_attrs.get("confirms") is None]
    assert len(main) == 4
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,
                                        optuna.trial.TrialState.WAITING))
    baselines = [t for t in main if t.user_attrs.get("baseline", False)]
    assert sorted(t.user_attrs["config"]["seed"] for t in baselines) == [0, 1, 2]
    (sampled,) = [t for t in main if not t.user_attrs["baseline"]]
    (confirmation,) = [t for t in complete if t.user_attrs.get("confirms") is not None]
    assert confirmation.user_attrs["confirms"] == sampled.number
    assert confirmation.params == sampled.params
    assert confirmation.user_attrs["config"]["seed"] == 1
    table = pd.read_csv(tmp_path / "r" / "trials.csv")
    assert (table.state == "COMPLETE").sum() == 5 and not table.duplicated("trial").any()
