"""Faults a long search meets: a driver killed at any point, a killed trial worker, trials
that raise or run out of memory. Faults at exact points are injected by tests/faults/
sitecustomize.py (see there); everything else is the real search."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import psutil
import pytest

from hpo_prune.objectives import non_dominated
from helpers import ENV, TINY, results_logged, start, studies, wait_for

State = optuna.trial.TrialState


def test_killed_worker_is_retried_from_its_last_checkpoint(tmp_path):
    args = ["--model", "mobilenet_v2", "--image-size", "16", "--train-subset", "512",
            "--batch-size", "32", "--epochs", "8", "--regimes", "scratch", "--trials", "1",
            "--levels", "none",
            "--name", "w", "--results", str(tmp_path)]
    proc = start(args, tmp_path)
    assert wait_for(lambda: results_logged(tmp_path / "w") >= 3)

    def workers():
        return [p for p in psutil.process_iter(["cmdline"])
                if any("ImplicitFunc" in part for part in (p.info["cmdline"] or []))]

    assert wait_for(lambda: bool(workers()), timeout=30)
    for worker in workers():
        worker.kill()
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    study = next(iter(studies(tmp_path / "w").values()))
    (trial,) = study.get_trials()
    assert trial.state == State.COMPLETE
    assert trial.user_attrs["epochs_run"] == 8
    assert trial.user_attrs["resumed_from_epoch"] >= 2  # from a checkpoint, not from scratch


def tune_trials(folder: Path) -> dict[tuple[str, int], dict]:
    """Every Tune trial of every run of a search, by (study, Optuna trial number): its run,
    its config, its reports (result.json; a killed driver loses the lines it had not flushed)
    and the epochs its checkpoints (written by the worker itself) reached."""
    out: dict[tuple[str, int], dict] = {}
    for trial_dir in sorted(folder.glob("tune/run-*/*.*_*")):
        if not trial_dir.is_dir():
            continue
        # params.json: Tune writes it as the trial starts (a driver killed then has none)
        meta = trial_dir / "params.json"
        params = json.loads(meta.read_text()) if meta.exists() else None
        reports = []
        path = trial_dir / "result.json"
        for line in (path.read_text().splitlines() if path.exists() else []):
            try:
                reports.append(json.loads(line))
            except ValueError:  # a line the killed driver did not finish
                pass
        study, number = trial_dir.name.rsplit("_", 1)[0].rsplit(".", 1)
        key = (study, int(number))
        assert key not in out, f"two Tune trials for {key}"
        assert params is None or key == (params["study"], params["trial"])
        # an epoch's checkpoint_K (K from 0) is the state after epoch K + 1; the final one
        # holds the trained model and the final report (report.json) instead
        epochs, model = [], False
        for c in trial_dir.glob("checkpoint_*"):
            final = c / "report.json"
            if final.exists():
                epochs.append(json.loads(final.read_text())["epoch"])
                model = (c / "model.pt").exists()
            else:
                epochs.append(int(c.name.rsplit("_", 1)[1]) + 1)
        out[key] = {"run": trial_dir.parent.name, "config": params and params["config"],
                    "reports": reports, "epochs": max(epochs, default=0), "model": model}
    return out


KILL_POINTS = ["trial-start", "mid-epoch", "reporting", "csv-write"]


def test_driver_killed_at_each_point_resumes_to_exact_counts(tmp_path):
    """SIGKILL to the driver (and its local Ray) while a trial starts, mid-epoch, while a
    finished trial is being recorded and while trials.csv is being written; --resume after
    each. At the end: exactly the requested finished trials, none lost, none counted twice,
    trials.csv equal to the storage, and the Tune experiment agreeing with Optuna."""
    folder = tmp_path / "k"
    args = [*TINY, "--epochs", "2", "--regimes", "scratch", "--trials", "5",
            "--baseline-seeds", "3", "--max-concurrent", "2", "--name", "k",
            "--results", str(tmp_path),
            "--keep-models", "all"]  # every COMPLETE trial's model, checked below
    for i, point in enumerate(KILL_POINTS):
        count = 2 if point in ("trial-start", "csv-write") else 1
        proc = start(args + ["--resume"] * (i > 0), tmp_path, {"kill": point, "count": count})
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, (point, out[-3000:])
        table = pd.read_csv(folder / "trials.csv")  # never half a file, whenever killed
        assert list(table.columns[:3]) == ["study", "trial", "state"], point
        if point == "reporting":  # measurements stored, the state not yet: still RUNNING
            study = next(iter(studies(folder).values()))
            assert any(t.state == State.RUNNING and "test_acc" in t.user_attrs
                       for t in study.get_trials()), point
    proc = start(args + ["--resume"], tmp_path)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]

    study = next(iter(studies(folder).values()))
    trials = study.get_trials()
    complete = [t for t in trials if t.state == State.COMPLETE]
    main = [t for t in complete if t.user_attrs.get("confirms") is None]
    assert len(main) == 5  # --trials: the confirmation runs come on top
    assert not [t for t in trials if t.state in (State.RUNNING, State.WAITING)]
    # the 3 baselines kept their seeds through the kills, and every non-baseline
    # front configuration was confirmed once, with seed + 1 (the default --confirm 1)
    assert sorted(t.user_attrs["config"]["seed"] for t in main
                  if t.user_attrs["baseline"]) == [0, 1, 2]
    confirmed = [(t.user_attrs["confirms"], t.user_attrs["config"]["seed"])
                 for t in complete if t.user_attrs.get("confirms") is not None]
    on_front = non_dominated([t.values for t in main])
    assert sorted(confirmed) == sorted((t.number, 1) for t, on in zip(main, on_front)
                                       if on and not t.user_attrs["baseline"])
    failed = [t for t in trials if t.state == State.FAIL]
    assert failed  # every kill left at least one trial behind
    for old in failed:  # each one interrupted, and its parameters ran again later
        assert "interrupted" in old.user_attrs["fail_reason"]
        assert any(t.params == old.params and t.number > old.number for t in trials)
    table = pd.read_csv(folder / "trials.csv")
    assert sorted(table.trial) == [t.number for t in trials]
    assert dict(zip(table.trial, table.state)) == {t.number: t.state.name for t in trials}
    assert not list(folder.glob(".trials.csv.tmp*"))  # the killed write's leftover is gone

    tune = tune_trials(folder)
    told = {t.number: t for t in trials}
    last_run = max(t["run"] for t in tune.values())
    for trial in complete:  # each COMPLETE trial ran to its last epoch in one Tune trial
        entry = tune[(study.study_name, trial.number)]
        assert entry["epochs"] == 2 and entry["model"]
        finals = [r for r in entry["reports"] if r.get("final")]
        assert finals or entry["run"] != last_run  # the clean run lost no report
        for report in finals:
            assert report["val_acc"] == pytest.approx(trial.values[0])
    for (name, number), entry in tune.items():  # and each Tune trial is an Optuna trial
        assert name == study.study_name and number in told
        if entry["config"] is not None:
            assert entry["config"]["prune_ratio"] == told[number].params["prune_ratio"]
        if told[number].state != State.COMPLETE:
            assert "interrupted" in told[number].user_attrs["fail_reason"]


def test_trial_exception_and_out_of_memory_are_failures_the_search_survives(tmp_path):
    """One trial raises, and trials with a batch too big for the memory each process may use
    (a real allocation failure under RLIMIT_DATA): all FAIL with their reason in trials.csv,
    the other trials finish, and the analysis leaves the failures out."""
    space = tmp_path / "space.yaml"
    space.write_text("params: {}\nfixed: {schedule: one_shot, lr: 0.01}\n"
                     "grid:\n  prune_ratio: [0.0, 0.5]\n  batch_size: [32, 512]\n")
    args = ["--model", "mobilenet_v2", "--train-subset", "512", "--image-size", "32",
            "--epochs", "1", "--regimes", "scratch", "--sampler", "grid", "--space", str(space),
            "--max-concurrent", "2", "--retries", "1", "--name", "t",
            "--results", str(tmp_path)]
    proc = start(args, tmp_path, {"raise": "disk quota exceeded", "prune_ratio": 0.5},
                 memory_limit=6 * 2**30)  # batch 32 fits, batch 512 does not
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 1, out[-3000:]  # failed trials leave the study short
    table = pd.read_csv(tmp_path / "t" / "trials.csv")
    # each grid point ran once, in the file's order; the failed ones were not run again
    assert list(zip(table.prune_ratio, table.batch_size)) == [(0.0, 32), (0.0, 512),
                                                              (0.5, 32), (0.5, 512)]
    assert "every grid point has run; 3 failed" in out
    kinds = set()
    for row in table.itertuples():
        if row.prune_ratio == 0.5:
            assert row.state == "FAIL" and "disk quota exceeded" in row.fail_reason
            kinds.add("exception")
        elif row.batch_size == 512:
            assert row.state == "FAIL" and row.fail_reason.startswith("out of memory")
            assert "--batch-size (it is 512)" in row.fail_reason
            kinds.add("oom")
        else:
            assert row.state == "COMPLETE", row
            kinds.add("complete")
    assert kinds == {"exception", "oom", "complete"}, table
    assert "out of memory" in out and "disk quota exceeded" in out

    report = subprocess.run([sys.executable, "-m", "analysis", "--results",
                             str(tmp_path / "t")], cwd=tmp_path, env=ENV, capture_output=True,
                            text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    fronts = pd.read_csv(tmp_path / "t" / "report" / "fronts.csv")
    assert len(fronts) and (fronts.state == "COMPLETE").all()
    assert set(fronts.trial) <= set(table[table.state == "COMPLETE"].trial)


def test_a_study_stops_asking_after_repeated_failures(tmp_path):
    """Trials that keep failing (here: every one reports a fail_reason) close their study
    after max_failures, instead of being replaced forever; the FAILs keep their reasons."""
    from hpo_prune.search.studies import space as spaces
    from hpo_prune.settings import TrialConfig
    from hpo_prune.search.tuning.searcher import StudySearcher
    from hpo_prune.results.storage import open_storage
    from hpo_prune.search.studies.designs import design_of
    from hpo_prune.search.studies.study import open_study

    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    base = TrialConfig(model="mobilenet_v2", dataset="digits", init="scratch").validate()
    plan = open_study(storage, "f.mobilenet_v2.digits.scratch", base,
                      design_of(spaces.load(None, "mobilenet_v2"), "tpe", 0, 10))
    searcher = StudySearcher([plan], max_failures=3)
    for i in range(3):
        assert isinstance(searcher.suggest(f"t{i}"), dict)
        searcher.on_trial_complete(f"t{i}", {"fail_reason": f"broken {i}"})
    assert searcher.suggest("t3") == StudySearcher.FINISHED
    failed = plan.study.get_trials(states=(State.FAIL,))
    assert [t.user_attrs["fail_reason"] for t in failed] == ["broken 0", "broken 1", "broken 2"]
