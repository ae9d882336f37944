"""`python -m hpo_prune.train` end to end: a finished run's metrics.json and model.pt, one-line
errors with exit status 2 for every bad input (leaving nothing that looks finished), and the
same seed giving the same metrics twice."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import MOBILENET_V2_FILE
from hpo_prune import TrialConfig, load_model, models
from hpo_prune.resolution import resolve_data
from hpo_prune.data import datasets
from hpo_prune.errors import UsageError
from hpo_prune.training.loop import evaluate
from hpo_prune.trial import run_trial, transforms_for
from hpo_prune.resolution import resolve_trial
from helpers import param_count

# mobilenet_v2 at 16 px is the cheapest trial on a CPU (a whole 2-epoch run: ~8 CPU-seconds)
TINY = ["--model", "mobilenet_v2", "--dataset", "digits", "--train-subset", "64",
        "--epochs", "1", "--batch-size", "16", "--image-size", "16"]
DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: downloads fail at once, offline


def _env(home: Path) -> dict:
    """The test's own torch hub / Hugging Face caches, and no network."""
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env.update(TORCH_HOME=str(home / "torch"), HF_HUB_CACHE=str(home / "hf"),
               http_proxy=DEAD_PROXY, https_proxy=DEAD_PROXY, HTTP_PROXY=DEAD_PROXY,
               HTTPS_PROXY=DEAD_PROXY)
    return env


def train(args: list[str], home: Path, cwd: Path, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "hpo_prune.train", *args], cwd=cwd,
                          env=_env(home), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One real 2-epoch trial, pretrained from ImageNet weights in a temporary hub cache."""
    home = tmp_path_factory.mktemp("home")
    checkpoints = home / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(1234)
    imagenet = models.build("mobilenet_v2", 1000, 224).state_dict()
    torch.save(imagenet, checkpoints / MOBILENET_V2_FILE)
    out = home / "run"
    args = [*TINY, "--epochs", "2", "--init", "pretrained", "--source", "imagenet", "--seed",
            "0", "--optimizer", "sgd", "--lr", "0.01", "--warmup", "0", "--out", str(out)]
    proc = train(args, home, home)
    assert proc.returncode == 0, proc.stderr
    return {"home": home, "out": out, "proc": proc, "imagenet": imagenet,
            "metrics": json.loads((out / "metrics.json").read_text())}


def test_metrics_json_has_the_documented_keys(finished):
    metrics = finished["metrics"]
    assert {"config", "epochs", "final"} <= set(metrics)
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    for e in metrics["epochs"]:
        assert {"epoch", "train_loss", "val_acc", "lr", "seconds", "images_per_s"} <= set(e)
        assert 0 <= e["val_acc"] <= 1 and e["train_loss"] > 0
        assert e["seconds"] > 0 and e["images_per_s"] > 0
    lrs = [e["lr"] for e in metrics["epochs"]]  # cosine per step: 4 of 8 steps done at epoch 2
    assert lrs == pytest.approx([0.01, 0.005])
    final = metrics["final"]
    assert {"val_acc", "test_acc", "params_total", "params_remaining",
            "remaining_fraction"} <= set(final)
    assert 0 <= final["val_acc"] <= 1 and 0 <= final["test_acc"] <= 1
    assert final["val_acc"] == metrics["epochs"][-1]["val_acc"]
    assert final["params_total"] == final["params_remaining"] == 2_236_682
    assert final["remaining_fraction"] == 1.0
    config = TrialConfig.from_dict(metrics["config"])
    assert (config.net.model, config.weights.init, config.weights.source,
            config.train.epochs) == \
        ("mobilenet_v2", "pretrained", "imagenet", 2)
    assert "Traceback" not in finished["proc"].stderr


def test_pretrained_counts_recorded(finished):
    init = finished["metrics"]["init"]
    assert init["regime"] == "pretrained" and init["source"] == "imagenet"
    assert init["not_loaded"] == ["classifier.1.weight", "classifier.1.bias"]
    assert init["tensors_loaded"] == init["tensors_total"] - 2
    assert init["params_loaded"] == 2_236_682 - (1280 * 10 + 10)


def test_model_pt_is_the_trained_model(finished):
    out, metrics = finished["out"], finished["metrics"]
    model = load_model(out)
    assert param_count(model) == metrics["final"]["params_total"]
    config = TrialConfig.from_dict(metrics["config"])
    data = datasets.load(resolve_data(config.data))
    acc = evaluate(model, data.test, transforms_for(data, torch.device("cpu"), "none",
                                                config.train.precision))
    assert acc == pytest.approx(metrics["final"]["test_acc"])
    weights = model.state_dict()  # fine-tuned: moved away from the ImageNet weights
    assert not torch.equal(weights["features.0.0.weight"],
                           finished["imagenet"]["features.0.0.weight"])


def test_a_run_checkpoint_is_a_source(finished):
    torch.manual_seed(0)
    model = models.build("mobilenet_v2", 10, 16)
    config = TrialConfig(model="mobilenet_v2", init="pretrained",
                         source=str(finished["out"] / "model.pt"))
    from hpo_prune import sources

    info = sources.initialise(model, config)
    assert info["not_loaded"] == [] and info["tensors_loaded"] == info["tensors_total"]


def _one_line_error(proc, out: Path, expected: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and expected in lines[0], lines[0]
    assert not (out / "metrics.json").exists()


def _bad_checkpoints(folder: Path) -> dict:
    (folder / "broken.pt").write_bytes(b"\x80\x02 not a checkpoint")
    torch.save({"conv.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(10, 8)},
               folder / "other.pt")
    return {"broken": str(folder / "broken.pt"), "other": str(folder / "other.pt")}


# the other bad inputs of every command: tests/test_bad_inputs.py
BAD_INPUTS = {
    "imagenet offline, torchvision": (["--init", "pretrained", "--source", "imagenet"],
                                      MOBILENET_V2_FILE),
    "imagenet offline, timm": (["--model", "mobilenet_v1", "--init", "pretrained", "--source",
                                "imagenet"], "mobilenetv1_100.ra4_e3600_r224_in1k.safetensors"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(tmp_path, case):
    args, expected = BAD_INPUTS[case]
    out = tmp_path / "out"
    proc = train([*TINY, *args, "--out", str(out)], tmp_path, tmp_path, timeout=120)
    _one_line_error(proc, out, expected)
    assert not out.exists()
    if case.startswith("imagenet offline"):  # names the cache path and the file to place
        assert str(tmp_path / "torch" / "hub" / "checkpoints") in proc.stderr


def test_out_below_a_file_fails_before_training(tmp_path):
    (tmp_path / "afile").write_text("not a directory")
    out = tmp_path / "afile" / "run"
    proc = train([*TINY, "--out", str(out)], tmp_path, tmp_path)
    _one_line_error(proc, out, "is a file")
    assert "epoch" not in proc.stdout  # refused before any training


def test_finished_out_needs_overwrite(finished, tmp_path):
    out = finished["out"]
    before = (out / "metrics.json").read_bytes()
    proc = train([*TINY, "--out", str(out)], finished["home"], tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "already holds a finished run" in proc.stderr and "--overwrite" in proc.stderr
    assert (out / "metrics.json").read_bytes() == before  # the finished run is untouched


def test_failed_overwrite_leaves_nothing_finished(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished["out"], out)
    broken = _bad_checkpoints(tmp_path)["broken"]
    proc = train([*TINY, "--init", "pretrained", "--source", broken, "--overwrite", "--out",
                  str(out)], tmp_path, tmp_path)
    _one_line_error(proc, out, "cannot read checkpoint")
    assert not (out / "model.pt").exists()


def test_config_validation_rejects_bad_numbers():
    for bad in ({"lr": -1.0}, {"lr": float("nan")}, {"warmup": 1.0}, {"warmup": -0.5},
                {"epochs": 0}, {"epochs": -2}):
        with pytest.raises(UsageError):
            TrialConfig(**bad).validate()


def test_auto_recipe_resolves_to_the_model_familys_defaults():
    for model in models.MODELS:
        for regime in ("scratch", "pretrained"):
            for ratio in (0.0, 0.8):  # unpruned runs take the family's dense recipe
                resolved = resolve_trial(TrialConfig(model=model, init=regime, prune_ratio=ratio))
                expected = models.recipe(model, regime, dense=ratio == 0)
                train = resolved.train
                assert (train.optimizer, train.lr, train.warmup, train.head_init) == \
                    (expected["optimizer"], expected["lr"], expected["warmup"],
                     expected["head_init"])
    # VGG16's dense recipe (a linear-probe head, chosen on unpruned val) is not its pruned one
    dense = resolve_trial(TrialConfig(model="vgg16", init="pretrained"))
    pruned = resolve_trial(dense.replace(prune_ratio=0.8, lr=0.0, warmup=-1.0,
                                         head_init="auto"))
    assert (dense.train.head_init, pruned.train.head_init) == ("probe", "random")
    assert (dense.train.lr, dense.train.warmup) == \
        (models.DENSE[("vgg16", "pretrained", "adamw")]["lr"], 0.3)
    assert pruned.train.lr == models.RECIPES["vgg16"]["pretrained"]["adamw"]["lr"]
    given = resolve_trial(TrialConfig(model="vgg16", optimizer="sgd", lr=0.02,
                                      warmup=0.0)).train
    assert (given.optimizer, given.lr, given.warmup) == ("sgd", 0.02, 0.0)


def test_same_seed_same_metrics_on_cpu(tiny_digits):
    config = resolve_trial(TrialConfig(model="mobilenet_v2", train_subset=64, epochs=2,
                                       batch_size=16, image_size=16, seed=0, device="cpu"))
    reported = []
    first = run_trial(config, reporter=lambda m, checkpoint: reported.append(m),
                      data=tiny_digits)
    second = run_trial(config, data=tiny_digits)
    assert reported == first.epochs  # the reporter sees every epoch as it ends
    for a, b in zip(first.epochs, second.epochs):
        assert (a["train_loss"], a["val_acc"], a["lr"]) == (b["train_loss"], b["val_acc"],
                                                           b["lr"])
    assert (first.final["val_acc"], first.final["test_acc"]) == \
        (second.final["val_acc"], second.final["test_acc"])
    a, b = first.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = run_trial(config.replace(seed=1), data=tiny_digits)
    with pytest.raises(ValueError, match="run_trial takes resolved settings"):
        run_trial(TrialConfig(model="mobilenet_v2"), data=tiny_digits)
    assert other.epochs[0]["train_loss"] != first.epochs[0]["train_loss"]
