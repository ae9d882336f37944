"""Your own model and data end to end: a real search (Ray Tune + Optuna) of a timm model on an
image folder written here, both regimes (the pretrained one from a weights file), weight and
filter pruning; then the analysis and the export of its results."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from hpo_prune import models
from hpo_prune.export import main as export
from helpers import ENV, search, write_folder

SPACE = """params: {}
fixed: {schedule: one_shot}
grid:
  prune_ratio: [0.0, 0.8]
  granularity: [weight, filter]
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("own")
    write_folder(root / "my pets", per_class=12)
    torch.manual_seed(0)
    torch.save(models.build("timm:resnet10t", 1000, 32).state_dict(), root / "weights.pt")
    (root / "space.yaml").write_text(SPACE)
    search("--model", "timm:resnet10t", "--dataset", "folder:my pets",  # relative to cwd
           "--image-size", "32", "--batch-size", "16", "--epochs", "1", "--sampler", "grid",
           "--confirm", "0", "--space", str(root / "space.yaml"), "--source",
           str(root / "weights.pt"), "--keep-models", "all", "--max-concurrent", "2",
           "--results", str(root), cwd=root)
    return root / "timm-resnet10t_quick"


def test_the_search_runs_both_regimes_on_the_folder(results):
    table = pd.read_csv(results / "trials.csv")
    assert set(table.state) == {"COMPLETE"} and len(table) == 8  # 4 grid points x 2 regimes
    assert set(table.dataset) == {"my-pets"} and set(table.model) == {"timm:resnet10t"}
    assert sorted(set(table.study)) == ["timm-resnet10t_quick.timm:resnet10t.my-pets.pretrained",
                                        "timm-resnet10t_quick.timm:resnet10t.my-pets.scratch"]
    # 36 images: 20% test (8 at 3 classes: stratified 7.2 -> 8), 10% of the rest val
    assert set(table.test_images) == {8} and set(table.val_images) == {3}
    pruned = table[table.prune_ratio == 0.8]
    assert (pruned.remaining_fraction < 0.3).all() and (pruned.remaining_fraction > 0.1).all()
    for row in table[table.regime == "pretrained"].itertuples():
        metrics = json.loads((results / row.model_dir / "metrics.json").read_text())
        assert metrics["init"]["tensors_loaded"] == metrics["init"]["tensors_total"] - 2
        assert metrics["config"]["dataset"].startswith("folder:/")
        assert metrics["data"]["classes"] == 3


def test_the_analysis_and_the_export_take_its_results(results, tmp_path, capsys):
    proc = subprocess.run([sys.executable, "-m", "analysis", "--results", str(results),
                           "--out", str(tmp_path / "report"), "--bootstrap", "100"], env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert set(summary.dataset) == {"my-pets"} and set(summary.regime) == {"pretrained",
                                                                              "scratch"}
    table = pd.read_csv(results / "trials.csv")
    for granularity in ("weight", "filter"):
        row = table[(table.prune_ratio == 0.8) & (table.granularity == granularity)
                    & (table.regime == "scratch")].iloc[0]
        out = tmp_path / granularity
        assert export(["--results", str(results), "--study", "scratch", "--trial",
                       str(row.trial), "--out", str(out), "--repeats", "1"]) == 0
        info = json.loads((out / "model.json").read_text())
        assert info["counts"]["remaining_fraction"] < 0.3
        assert info["files"]["ratio_to_unpruned"] < 0.5  # the file shrinks with the model
        if granularity == "filter":  # physically smaller: fewer parameters, not zeros
            assert info["counts"]["params_total"] < 0.5 * info["counts"]["unpruned_params"]
