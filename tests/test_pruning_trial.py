"""Pruned trials end to end through the command line, on the embedded digits dataset."""
import json
import subprocess
import sys

import pytest
import torch

import hpo_prune
from hpo_prune.data import datasets
from hpo_prune.training.loop import evaluate
from hpo_prune.pruning import prunable_layers
from hpo_prune.train import main
from hpo_prune.resolution import resolve_trial
from hpo_prune.trial import run_trial, transforms_for

TINY = ["--model", "mobilenet_v2", "--dataset", "digits", "--train-subset", "64",
        "--image-size", "16", "--epochs", "1", "--batch-size", "32", "--prune-every", "1"]
FINAL_KEYS = {"val_acc", "test_acc", "params_total", "params_remaining", "remaining_fraction",
              "prunable_params", "macs_dense", "macs_remaining", "achieved_sparsity",
              "requested_sparsity", "val_acc_before_pruning", "seconds"}


def _run(tmp_path, *flags):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "hpo_prune.train", *TINY, *flags,
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads((out / "metrics.json").read_text())


def _reevaluate(run_dir, metrics):
    model = hpo_prune.load_model(run_dir)
    config = hpo_prune.TrialConfig.from_dict(metrics["config"])
    data = datasets.load(config.data)
    transform = transforms_for(data, torch.device("cpu"), "none", config.train.precision)
    return model, evaluate(model, data.val, transform), evaluate(model, data.test, transform)


def _check_common(metrics, ratio):
    final = metrics["final"]
    assert FINAL_KEYS <= set(final)
    assert final["requested_sparsity"] == ratio
    assert ratio - 1e-9 <= final["achieved_sparsity"] < ratio + 0.01
    assert 0 < final["params_remaining"] < final["params_total"]
    assert final["remaining_fraction"] == final["params_remaining"] / final["params_total"]
    assert 0 < final["macs_remaining"] < final["macs_dense"]
    assert 0 <= final["val_acc_before_pruning"] <= 1
    assert [e["sparsity"] for e in metrics["epochs"]] == [final["achieved_sparsity"]]


def test_weight_pruned_trial_end_to_end(tmp_path):
    out, metrics = _run(tmp_path, "--prune-ratio", "0.8", "--schedule", "agp",
                        "--granularity", "weight", "--scope", "global")
    _check_common(metrics, 0.8)
    final = metrics["final"]
    model, val_acc, test_acc = _reevaluate(out, metrics)
    assert sum(int(p.count_nonzero()) for p in model.parameters()) == final["params_remaining"]
    assert sum(p.numel() for p in model.parameters()) == final["params_total"]  # zeros kept
    prunable = [m.weight for _, m in prunable_layers(model)]
    zeros = sum(int((w == 0).sum()) for w in prunable)
    assert zeros == round(0.8 * final["prunable_params"])  # pruned weights are exactly zero
    assert (val_acc, test_acc) == (final["val_acc"], final["test_acc"])


def test_filter_pruned_trial_end_to_end(tmp_path):
    out, metrics = _run(tmp_path, "--prune-ratio", "0.5", "--schedule", "lin",
                        "--granularity", "filter", "--scope", "global", "--norm", "2")
    _check_common(metrics, 0.5)
    final = metrics["final"]
    model, val_acc, test_acc = _reevaluate(out, metrics)
    assert sum(p.numel() for p in model.parameters()) == final["params_remaining"]
    prunable = sum(m.weight.numel() for _, m in prunable_layers(model))
    assert 1 - prunable / final["prunable_params"] == pytest.approx(final["achieved_sparsity"])
    assert (val_acc, test_acc) == (final["val_acc"], final["test_acc"])
    # the masked model (last epoch) and the physically pruned one score the same on val
    assert metrics["epochs"][-1]["val_acc"] == final["val_acc"]


def test_unpruned_trial_reports_the_same_counts():
    config = hpo_prune.TrialConfig(model="mobilenet_v2", train_subset=32, image_size=16,
                                   epochs=1, batch_size=32)
    final = run_trial(resolve_trial(config)).final
    assert FINAL_KEYS <= set(final)
    assert final["params_remaining"] == final["params_total"] == 2236682
    assert final["macs_remaining"] == final["macs_dense"] > 0
    assert (final["achieved_sparsity"], final["requested_sparsity"]) == (0.0, 0.0)
    assert final["val_acc_before_pruning"] is None


@pytest.mark.parametrize("flags, words", [
    (["--prune-ratio", "1.0"], ["--prune-ratio", "[0, 1)", "1.0"]),
    (["--prune-ratio", "-0.2"], ["--prune-ratio", "-0.2"]),
    (["--schedule", "exp"], ["schedule 'exp'", "agp", "one_cycle"]),
    (["--granularity", "block"], ["granularity 'block'", "weight", "filter"]),
    (["--scope", "layer"], ["scope 'layer'", "global", "local"]),
    (["--criterion", "taylor"], ["criterion 'taylor'", "magnitude", "random"]),
    (["--prune-start", "0.6", "--prune-end", "0.5"], ["window", "[0.6, 0.5]"]),
    (["--prune-end", "1.5"], ["window", "1.5"]),
])
def test_bad_pruning_flags_exit_2_with_one_line(flags, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--prune-ratio", "0.5", *flags])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error:")
    for word in words:
        assert word in err
