"""The search on an existing two-node Ray cluster (both nodes on this machine). An unreachable
--address: tests/test_bad_inputs.py."""
from __future__ import annotations


import optuna
import pytest

from helpers import TINY, search, studies


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
    # 4 finished trials, and on top the confirmation runs of the front (--confirm 1)
    assert len([t for t in complete if t.user_attrs.get("confirms") is None]) == 4
    assert len({t.user_attrs["node"] for t in complete}) == 2


@pytest.fixture
def three_nodes(monkeypatch):
    """A head that runs no trials (it hosts the driver) and two 1-CPU worker nodes."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    yield cluster, workers
    cluster.shutdown()


def test_lost_worker_node_trial_resumes_on_the_other_node(three_nodes, tmp_path):
    """A whole worker node dies (its raylet and workers SIGKILLed) mid-trial: Tune retries the
    trial on the surviving node from its last checkpoint and the search completes."""
    import psutil
    from helpers import results_logged, start, wait_for

    cluster, workers = three_nodes
    args = ["--model", "mobilenet_v2", "--image-size", "16", "--train-subset", "512",
            "--batch-size", "32", "--epochs", "8", "--regimes", "scratch", "--trials", "1",
            "--levels", "none",
            "--name", "n", "--results", str(tmp_path), "--address", cluster.address]
    proc = start(args, tmp_path)
    assert wait_for(lambda: results_logged(tmp_path / "n") >= 3)  # epoch 2's checkpoint is in

    def node_of_trial():
        for node in workers:
            raylet = node.all_processes["raylet"][0].process.pid
            for child in psutil.Process(raylet).children(recursive=True):
                if any("ImplicitFunc" in part for part in child.cmdline()):
                    return node
        return None

    assert wait_for(lambda: node_of_trial() is not None, timeout=30)
    lost = node_of_trial()
    cluster.remove_node(lost, allow_graceful=False)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    (trial,) = next(iter(studies(tmp_path / "n").values())).get_trials()
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.user_attrs["epochs_run"] == 8
    assert trial.user_attrs["resumed_from_epoch"] >= 2  # from a checkpoint, not from scratch
    survivor = next(node for node in workers if node is not lost)
    assert trial.user_attrs["node"] == survivor.node_id
