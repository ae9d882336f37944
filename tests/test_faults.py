"""Faults a long search meets: a killed driver, a killed trial worker."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import psutil

from test_search import ENV, TINY, search, studies

State = optuna.trial.TrialState


def start(args, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hpo_prune.search", *args], cwd=cwd,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def wait_for(condition, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_killed_driver_resumes_to_exact_counts(tmp_path):
    """SIGKILL to the driver and its local Ray processes, mid-search: --resume marks the
    trials left RUNNING as interrupted, runs their parameters again, and ends at exactly the
    requested count with no trial counted twice."""
    args = [*TINY, "--regimes", "scratch", "--trials", "4", "--max-concurrent", "2",
            "--name", "k", "--results", str(tmp_path)]
    proc = start(args, tmp_path)
    csv = tmp_path / "k" / "trials.csv"
    assert wait_for(lambda: csv.exists() and (pd.read_csv(csv).state == "COMPLETE").sum() >= 1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    study = next(iter(studies(tmp_path / "k").values()))
    before = {t.number: t.state for t in study.get_trials()}
    running = [n for n, s in before.items() if s == State.RUNNING]
    assert running, before  # killed mid-trial: the storage still says RUNNING
    search(*args, "--resume", cwd=tmp_path)
    study = next(iter(studies(tmp_path / "k").values()))
    trials = study.get_trials()
    assert sum(t.state == State.COMPLETE for t in trials) == 4
    assert not [t for t in trials if t.state in (State.RUNNING, State.WAITING)]
    for number in running:  # each interrupted trial: FAIL with the reason, params run again
        old = trials[number]
        assert old.state == State.FAIL and "interrupted" in old.user_attrs["fail_reason"]
        assert any(t.state == State.COMPLETE and t.params == old.params and t.number > number
                   for t in trials)
    table = pd.read_csv(tmp_path / "k" / "trials.csv")
    assert (table.state == "COMPLETE").sum() == 4 and not table.duplicated("trial").any()


def test_killed_worker_is_retried_from_its_last_checkpoint(tmp_path):
    args = ["--model", "mobilenet_v2", "--image-size", "16", "--train-subset", "512",
            "--batch-size", "32", "--epochs", "6", "--regimes", "scratch", "--trials", "1",
            "--name", "w", "--results", str(tmp_path)]
    proc = start(args, tmp_path)
    tune_dir = tmp_path / "w" / "tune"
    assert wait_for(lambda: any(tune_dir.glob("run-1/*/checkpoint_000001")))

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
    assert trial.user_attrs["epochs_run"] == 6
    assert trial.user_attrs["resumed_from_epoch"] >= 2  # not from scratch
