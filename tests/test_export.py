"""`python -m hpo_prune.export` on a real search (Ray Tune + Optuna, tiny mobilenet_v2 trials:
a grid of weight- and filter-pruned trials), and `--keep-models front` applied by a resumed
search. One search serves every test; the tests that change a results folder work on a copy."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hpo_prune import TrialConfig, load_model
from hpo_prune.export import main as export
from hpo_prune.files import EXPORT_FILE, MODEL_FILE, ONNX_FILE
from hpo_prune.pruning import count
from hpo_prune.training.checkpoint import COMPACT, DENSE, read_model, save_model
from helpers import ENV, param_count, search

SPACE = """params: {}
fixed: {schedule: one_shot}
grid:
  prune_ratio: [0.0, 0.5, 0.8]
  granularity: [weight, filter]
"""
ARGS = ["--model", "mobilenet_v2", "--train-subset", "64", "--batch-size", "32",
        "--image-size", "16", "--epochs", "1", "--regimes", "scratch", "--sampler", "grid",
        "--confirm", "0", "--name", "x"]
SHAPE = (1, 3, 16, 16)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    (root / "space.yaml").write_text(SPACE)
    search(*ARGS, "--space", str(root / "space.yaml"), "--keep-models", "all",
           "--max-concurrent", "2", "--results", str(root), cwd=root)
    return root / "x"


def table(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "trials.csv")


def trial(folder: Path, granularity: str, ratio: float) -> pd.Series:
    rows = table(folder)
    rows = rows[(rows.granularity == granularity) & (rows.prune_ratio == ratio)
                & (rows.state == "COMPLETE")]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def outputs(model: torch.nn.Module) -> torch.Tensor:
    x = torch.randn(3, *SHAPE[1:], generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        return model(x)


def run_export(*argv) -> dict:
    assert export(list(argv)) == 0
    return json.loads((Path(argv[argv.index("--out") + 1]) / EXPORT_FILE).read_text())


def test_export_of_a_weight_pruned_trial(results, tmp_path):
    from hpo_prune.data import datasets
    from hpo_prune.training.loop import evaluate
    from hpo_prune.trial import transforms_for

    row = trial(results, "weight", 0.8)
    out = tmp_path / "weight"
    proc = subprocess.run([sys.executable, "-m", "hpo_prune.export", "--results", str(results),
                           "--trial", str(row.trial), "--out", str(out), "--repeats", "1", "--threads", "1"],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"trial #{row.trial}" in proc.stdout and "latency" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted([EXPORT_FILE, MODEL_FILE])
    info = json.loads((out / EXPORT_FILE).read_text())
    blob = torch.load(out / MODEL_FILE, weights_only=True)
    assert blob["format"] == COMPACT == info["files"]["model_format"]
    exported, original = load_model(out), load_model(results / row.model_dir)
    assert torch.equal(outputs(exported), outputs(original))
    counted = count(exported, SHAPE)
    assert counted["params_nonzero"] == row.params_remaining == info["counts"]["params_nonzero"]
    assert info["counts"]["unpruned_params"] == row.params_total
    assert info["counts"]["macs"] == counted["macs"] < info["counts"]["unpruned_macs"]
    size = (out / MODEL_FILE).stat().st_size
    assert info["files"][MODEL_FILE] == size < 0.5 * info["files"]["unpruned_dense_bytes"]
    config = TrialConfig.from_dict(info["config"])
    assert (config.prune.granularity, config.prune.prune_ratio) == ("weight", 0.8)
    data = datasets.load(config.data)  # the trial's own test split: the reported accuracy
    acc = evaluate(exported, data.test, transforms_for(data, torch.device("cpu"), "none",
                                                   config.train.precision))
    assert acc == pytest.approx(row.test_acc) == pytest.approx(info["accuracy"]["test_acc"])
    assert info["accuracy"]["val_acc"] == pytest.approx(row.val_acc)
    assert info["input"]["normalisation"]["mean"] == pytest.approx(list(data.mean))
    for batch in ("batch_1", "batch_32"):
        assert info["latency"][batch]["model_ms"] > 0 and info["latency"][batch]["dense_ms"] > 0
    assert info["source"]["trial"] == row.trial and info["picked"] is None
    assert info["accuracy"]["selected_on"] is None  # --trial: the user chose, not val
    assert info["onnx"] is None


RESOLVED = ("optimizer", "lr", "warmup", "head_init", "head", "val_fraction", "image_size",
            "source", "augment", "criterion")


def test_every_record_of_a_trial_holds_the_same_resolved_config(results, tmp_path):
    """trials.csv, metrics.json, the model file, an export's model.json and the run hash agree
    on the values the placeholders stood for (resolved once, when the search sampled it)."""
    from hpo_prune.files import METRICS_FILE

    row = trial(results, "weight", 0.8)
    metrics = json.loads((results / row.model_dir / METRICS_FILE).read_text())["config"]
    saved = read_model(results / row.model_dir).config
    info = run_export("--results", str(results), "--trial", str(row.trial), "--out",
                      str(tmp_path / "e"), "--repeats", "1", "--threads", "1")
    exported = info["config"]
    resolved = TrialConfig.from_dict(metrics)
    for key in RESOLVED:
        value = resolved.get(key)
        shown = "" if pd.isna(row[key]) else row[key]
        assert shown == value == metrics[key] == saved.get(key) == exported[key], key
    assert [resolved.get(k) for k in ("optimizer", "augment", "criterion", "image_size",
                                      "val_fraction", "lr")] == ["adamw", "none", "lamp", 16,
                                                                 0.2, 5e-3]
    assert TrialConfig.from_dict(metrics).run_hash() == saved.run_hash() == \
        TrialConfig.from_dict(exported).run_hash()
    # the facts the trial used are stored with it: the analysis and the export read them
    facts = json.loads((results / row.model_dir / METRICS_FILE).read_text())["data"]
    assert (facts["classes"], facts["image_size"]) == (10, 16)
    assert row.val_images == facts["val_images"] == 288  # digits' 20% val split
    assert row.test_images == facts["test_images"] == 360
    assert facts["train_images"] == 64
    assert read_model(results / row.model_dir).normalisation == \
        {"mean": facts["mean"], "std": facts["std"]} == \
        {k: info["input"]["normalisation"][k] for k in ("mean", "std")}


def test_export_of_a_filter_pruned_trial_as_onnx_is_checked(results, tmp_path):
    import onnxruntime

    row = trial(results, "filter", 0.5)
    out = tmp_path / "filter"
    info = run_export("--results", str(results), "--study", "scratch", "--trial",
                      str(row.trial), "--out", str(out), "--format", "onnx", "--repeats", "1",
                      "--threads", "1")
    assert sorted(p.name for p in out.iterdir()) == sorted([EXPORT_FILE, MODEL_FILE, ONNX_FILE])
    assert torch.load(out / MODEL_FILE, weights_only=True)["format"] == DENSE  # as it was
    exported = load_model(out)
    assert param_count(exported) == row.params_remaining < row.params_total
    assert info["counts"]["params_total"] == row.params_remaining  # physically smaller
    check = info["onnx"]["check"]
    assert check["max_abs_diff"] <= check["tolerance"]
    assert info["files"][ONNX_FILE] == (out / ONNX_FILE).stat().st_size
    # the file takes any batch size: run it on another input than the export's check
    session = onnxruntime.InferenceSession(str(out / ONNX_FILE),
                                           providers=["CPUExecutionProvider"])
    x = torch.randn(5, *SHAPE[1:], generator=torch.Generator().manual_seed(9))
    (got,) = session.run(["logits"], {"images": x.numpy()})
    with torch.no_grad():
        want = exported(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_pick_exports_the_configuration_the_analysis_selects(results, tmp_path):
    from analysis import summarise

    summary = summarise(results, n_boot=0).iloc[0]
    out = tmp_path / "picked"
    info = run_export("--results", str(results), "--pick", "within-1pt", "--out", str(out),
                      "--repeats", "1", "--threads", "1")
    assert info["source"]["trial"] == summary["trial_1pt"]
    picked = info["picked"]
    assert picked["pick"] == "within-1pt" and picked["tolerance"] == 0.01
    assert picked["reference"]["val_acc"] == pytest.approx(summary["unpruned_val_acc"])
    assert picked["configuration"]["removed"] == pytest.approx(summary["removed_1pt"])
    assert picked["configuration"]["val_acc"] == pytest.approx(summary["val_acc_1pt"])
    # trials of one epoch stay at chance: the rule still selects, and says what that is worth
    assert picked["note"] == ("" if summary["reference_trained"] else
                              summary["note"].split("; ")[0])
    row = table(results).set_index("trial").loc[info["source"]["trial"]]
    assert count(load_model(out), SHAPE)["params_nonzero"] == row.params_remaining


def copy_of(results: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy" / "x"
    shutil.copytree(results, copy)
    return copy


def test_a_checkpoint_of_the_dense_format_still_exports(results, tmp_path):
    """A results folder written before compact checkpoints: its model.pt is format 1."""
    copy = copy_of(results, tmp_path)
    row = trial(copy, "weight", 0.5)
    saved = read_model(copy / row.model_dir)
    save_model(copy / row.model_dir, saved.model, saved.config, saved.num_classes,
               saved.image_size, compact=False)
    assert torch.load(copy / row.model_dir / MODEL_FILE, weights_only=True)["format"] == DENSE
    out = tmp_path / "old"
    info = run_export("--results", str(copy), "--trial", str(row.trial), "--out", str(out),
                      "--repeats", "1", "--threads", "1")
    assert info["source"]["checkpoint_format"] == DENSE
    assert info["files"]["model_format"] == COMPACT
    assert torch.equal(outputs(load_model(out)), outputs(saved.model))


def test_keep_models_front_applies_on_resume_and_is_kept(results, tmp_path, capsys):
    """A search run with --keep-models all, resumed with front: the models of every trial off
    the analysis's front go at once (baselines stay), trials.csv says so, search.json records
    front, a later --resume keeps it; exporting a removed trial says what would have kept it."""
    from analysis.load import load_results
    from analysis.summary import analyse

    copy = copy_of(results, tmp_path)
    resume = [*ARGS, "--space", str(results.parent / "space.yaml"), "--results",
              str(copy.parent), "--storage", f"sqlite:///{copy / 'optuna.db'}", "--resume"]
    proc = search(*resume, "--keep-models", "front", cwd=copy.parent)
    assert "nothing to run" in proc.stdout
    assert json.loads((copy / "search.json").read_text())["keep_models"] == "front"
    (study,) = analyse(load_results(copy).trials, n_boot=0)
    on_front = {int(t) for seeds in study.front["seed_trials"] for t in str(seeds).split()}
    assert study.front["model_kept"].all()  # fronts.csv's column: every front model is there
    rows = table(copy)
    complete = rows[rows.state == "COMPLETE"]
    first_baseline = complete[complete.baseline.astype(bool)].trial.min()
    for r in complete.itertuples():
        kept = (copy / r.model_dir / MODEL_FILE).is_file()
        # the baseline's first run stays, its seed replicates go; else: on the front or gone
        expected = r.trial == first_baseline if r.baseline else r.trial in on_front
        assert kept == expected, r.trial
        assert r.model_kept == kept and (copy / r.model_dir / "metrics.json").is_file()
        assert bool(r.front_keeps) == expected  # front's decision, as the search recorded it
    removed = complete[~complete.model_kept]
    # the grid's weight- and filter-pruned trials of one ratio: one of each pair is dominated
    assert len(removed) >= 1, "front kept every model: nothing was tested"
    assert "removed the model of trial(s)" in proc.stdout
    again = search(*resume, cwd=copy.parent)  # no flag: the search's own setting
    assert json.loads((copy / "search.json").read_text())["keep_models"] == "front"
    assert "removed the model" not in again.stdout
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        export(["--results", str(copy), "--trial", str(removed.trial.iloc[0]),
                "--out", str(tmp_path / "gone")])
    assert stop.value.code == 2
    line = capsys.readouterr().err.strip()
    assert "was not kept" in line and "--keep-models all would have kept it" in line
    assert not (tmp_path / "gone").exists()
