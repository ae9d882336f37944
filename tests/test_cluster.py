"""The search on an existing two-node Ray cluster (both nodes on this machine)."""
from __future__ import annotations


import optuna
import pytest

from test_search import TINY, search, studies


@pytest.fixture
def cluster(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


def test_trials_run_on_both_nodes_of_an_existing_cluster(cluster, tmp_path):
    # trials long enough to overlap: each node (1 CPU) must take one of the two at once
    proc = search(*TINY, "--regimes", "scratch", "--trials", "4", "--name", "c",
                  "--max-concurrent", "2", "--epochs", "3", "--train-subset", "256",
                  "--results", str(tmp_path), "--address", cluster.address, cwd=tmp_path)
    assert "2 node(s)" in proc.stdout
    study = next(iter(studies(tmp_path / "c").values()))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 4
    assert len({t.user_attrs["node"] for t in complete}) == 2


def test_unreachable_cluster_is_one_line_exit_2(tmp_path):
    proc = search(*TINY, "--regimes", "scratch", "--trials", "1", "--name", "u",
                  "--results", str(tmp_path), "--address", "127.0.0.1:1", cwd=tmp_path,
                  check=False, timeout=180)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--address" in lines[0], proc.stderr[-2000:]
