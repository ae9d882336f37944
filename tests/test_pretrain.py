"""Fractal pre-training: the cache (hits, locking, corruption), the source, the command line.

Tiny corpora (3 classes x 8 images, 16 px, 1 epoch, mobilenet_v2) in a temporary cache
directory ($HPO_PRUNE_CACHE), so no test touches the user's cache.
"""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from hpo_prune.data import datasets
from hpo_prune.resolution import resolve_trial
from hpo_prune.sources import pretrain
from hpo_prune import pretrain as pretrain_cli
from hpo_prune import train, trial
from hpo_prune.settings import TrialConfig
from hpo_prune.training import precision

TINY = ["--model", "mobilenet_v2", "--image-size", "16", "--classes", "3", "--per-class", "8",
        "--epochs", "1", "--device", "cpu"]
AUTO = precision.choose(torch.device("cpu"))  # what the commands' --precision auto gives
TINY_FIELDS = dict(model="mobilenet_v2", image_size=16, fractal_classes=3, fractal_per_class=8,
                   pretrain_epochs=1, device="cpu", precision=AUTO)
TRIAL = ["--model", "mobilenet_v2", "--dataset", "digits", "--init", "pretrained",
         "--image-size", "16", "--train-subset", "40", "--epochs", "1", "--device", "cpu",
         "--fractal-classes", "3", "--fractal-per-class", "8", "--pretrain-epochs", "1"]
HEAD = ["classifier.1.weight", "classifier.1.bias"]  # mobilenet_v2's classifier


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train fastest on one thread; on a busy machine a second intra-op thread
    made these trainings ~15x slower (1 s -> 19 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    where = tmp_path / "cache"
    monkeypatch.setenv(pretrain.CACHE_ENV, str(where))
    return where


def tiny_settings() -> dict:
    return pretrain.settings(resolve_trial(TrialConfig(init="pretrained", **TINY_FIELDS)))


def finished(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.glob("*") if p.suffix in (".pt", ".json")
                  and p.name != precision.CACHE_FILE)


def test_second_request_is_a_cache_hit(cache):
    s = tiny_settings()
    lines = []
    pt, trained = pretrain.ensure(s, "cpu", log=lines.append)
    assert trained and pt.parent == cache and pt.name.startswith("fractal-mobilenet_v2-16px-")
    assert any(line.startswith("pre-training mobilenet_v2") for line in lines)
    meta = pt.with_suffix(".json")
    record = json.loads(meta.read_text())
    assert record["settings"] == s
    assert (record["train_images"], record["holdout_images"]) == (21, 3)
    assert 0 <= record["corpus_acc"] <= 1 and record["seconds"] > 0
    blob = torch.load(pt, weights_only=True)
    assert blob["head"] == HEAD and blob["settings"] == s
    stamps = pt.stat().st_mtime_ns, meta.stat().st_mtime_ns

    lines.clear()
    assert pretrain.ensure(s, "cpu", log=lines.append) == (pt, False)
    weights = pretrain.weights(resolve_trial(TrialConfig(init="pretrained", **TINY_FIELDS)),
                              log=lines.append)
    assert lines == []  # nothing trained, nothing waited for
    assert (pt.stat().st_mtime_ns, meta.stat().st_mtime_ns) == stamps
    assert set(weights) == set(blob["state_dict"]) - set(HEAD)
    assert all(torch.equal(weights[k], blob["state_dict"][k]) for k in weights)
    assert finished(cache) == [meta.name, pt.name]


def test_cache_key_covers_what_determines_the_weights_only(monkeypatch):
    base = resolve_trial(TrialConfig(init="pretrained", precision="fp32"))
    key = pretrain.cache_key(pretrain.settings(base))
    same = base.replace(lr=0.1, epochs=7, seed=3, device="cpu", prune_ratio=0.5)
    assert pretrain.cache_key(pretrain.settings(same)) == key
    for change in [dict(model="mobilenet_v2"), dict(image_size=64), dict(head="classic"),
                   dict(fractal_classes=21), dict(fractal_per_class=151),
                   dict(pretrain_epochs=5), dict(pretrain_lr=0.02), dict(pretrain_seed=1),
                   dict(precision="bf16")]:
        assert pretrain.cache_key(pretrain.settings(base.replace(**change))) != key, change
    assert pretrain.settings(base)["image_size"] == 32  # digits' own size
    caltech = resolve_trial(TrialConfig(init="pretrained", precision="fp32", dataset="caltech101"))
    assert pretrain.settings(caltech)["image_size"] == 64
    monkeypatch.delenv(pretrain.CACHE_ENV, raising=False)
    assert pretrain.cache_dir() == Path.home() / ".cache" / "hpo_prune" / "pretrained"


def test_pretraining_uses_the_familys_from_scratch_recipe_not_the_dense_one():
    # an unpruned fine-tuning has its own recipe (models.DENSE); the pre-training is the
    # family's from-scratch one, so changing DENSE never moves the checkpoint or its key
    from hpo_prune import models

    for model in models.MODELS:
        training = pretrain.settings(resolve_trial(TrialConfig(model=model, init="pretrained",
                                                               precision="fp32")))["training"]
        family = models.recipe(model, "scratch")
        assert (training["optimizer"], training["lr"], training["warmup"]) == \
            (family["optimizer"], family["lr"], family["warmup"]), model
    assert pretrain.settings(resolve_trial(TrialConfig(init="pretrained", precision="fp32"))
                             )["training"]["warmup"] == 0.1


def test_two_concurrent_processes_train_one_checkpoint(cache):
    env = dict(os.environ, **{pretrain.CACHE_ENV: str(cache), "OMP_NUM_THREADS": "1"})
    command = [sys.executable, "-m", "hpo_prune.pretrain", *TINY]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    stdout = [out for out, _ in outputs]
    assert sum("pre-training mobilenet_v2" in out for out in stdout) == 1
    other = next(out for out in stdout if "pre-training mobilenet_v2" not in out)
    assert "using cached checkpoint" in other
    key = pretrain.cache_key(tiny_settings())
    assert finished(cache) == [f"{key}.json", f"{key}.pt"]
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary files


def test_a_waiting_request_gets_the_checkpoint_trained_meanwhile(cache):
    s, barrier, results = tiny_settings(), threading.Barrier(2), {}
    logs = {0: [], 1: []}

    def request(i):
        barrier.wait()
        results[i] = pretrain.ensure(s, "cpu", log=logs[i].append)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert sorted(trained for _, trained in results.values()) == [False, True]
    assert results[0][0] == results[1][0]
    waiter = next(i for i in results if not results[i][1])
    assert any(line.startswith("waiting for another process") for line in logs[waiter])
    assert len(finished(cache)) == 2


def test_trial_fine_tunes_from_the_fractal_source_cold_and_warm(cache, tmp_path, capsys):
    # no --source: fractal is digits' default source of the pretrained regime
    assert train.main(TRIAL + ["--out", str(tmp_path / "cold")]) == 0
    assert "[pretrain] pre-training mobilenet_v2" in capsys.readouterr().out
    assert train.main(TRIAL + ["--out", str(tmp_path / "warm")]) == 0
    assert "pre-training" not in capsys.readouterr().out
    assert len(list(cache.glob("*.pt"))) == 1
    cold, warm = (json.loads((tmp_path / run / "metrics.json").read_text())
                  for run in ("cold", "warm"))
    init = cold["init"]
    assert (init["regime"], init["source"]) == ("pretrained", "fractal")
    assert init["not_loaded"] == HEAD  # every tensor but the new head comes from the corpus
    assert init["tensors_loaded"] == init["tensors_total"] - 2
    assert warm["init"] == init
    # the same trial, cold cache or warm: identical training (no random number consumed)
    assert [(e["train_loss"], e["val_acc"]) for e in cold["epochs"]] == \
        [(e["train_loss"], e["val_acc"]) for e in warm["epochs"]]
    assert cold["final"]["test_acc"] == warm["final"]["test_acc"]

    config = TrialConfig.from_dict(cold["config"])  # as the trial resolved it
    model, _ = trial.build_model(config, datasets.load(config.data))
    blob = torch.load(next(cache.glob("*.pt")), weights_only=True)["state_dict"]
    own = model.state_dict()
    assert all(torch.equal(own[k], blob[k]) for k in own if k not in HEAD)
    assert (own[HEAD[0]].shape[0], blob[HEAD[0]].shape[0]) == (10, 3)  # digits' own head


def test_corrupt_checkpoint_exits_2_and_rebuild_repairs_it(cache, tmp_path, capsys):
    assert pretrain_cli.main(TINY) == 0
    capsys.readouterr()
    pt = next(cache.glob("*.pt"))
    pt.write_bytes(pt.read_bytes()[:1000])

    with pytest.raises(SystemExit) as stop:
        pretrain_cli.main(TINY)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1
    assert str(pt) in err and "corrupt" in err and "--rebuild" in err

    with pytest.raises(SystemExit) as stop:  # a trial that needs it says the same
        train.main(TRIAL + ["--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and str(pt) in err and "--rebuild" in err
    assert not (tmp_path / "run" / "metrics.json").exists()

    assert pretrain_cli.main(TINY + ["--rebuild"]) == 0
    assert "pre-training mobilenet_v2" in capsys.readouterr().out
    assert set(torch.load(pt, weights_only=True)["head"]) == set(HEAD)
    assert pretrain_cli.main(TINY) == 0
    assert "using cached checkpoint" in capsys.readouterr().out

    meta = pt.with_suffix(".json")
    meta.write_text("{ not json")
    with pytest.raises(SystemExit) as stop:
        pretrain_cli.main(TINY)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and str(meta) in err and "--rebuild" in err


@pytest.mark.parametrize("args, message", [  # more: tests/test_bad_inputs.py
    (["--classes", "0"], "--classes must be >= 2"),
    (["--per-class", "1"], "--per-class must be >= 2"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--lr", "nan"], "--lr must be a finite number > 0"),
    (["--image-size", "8"], "--image-size must be"),
])
def test_bad_pretrain_input_exits_2_with_one_line(cache, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        pretrain_cli.main(["--model", "mobilenet_v2", "--device", "cpu", *args])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not cache.exists() or finished(cache) == []


@pytest.mark.parametrize("args, message", [
    (["--fractal-classes", "1"], "--fractal-classes must be >= 2"),
    (["--fractal-per-class", "0"], "--fractal-per-class must be >= 2"),
    (["--source", "nowhere"], "unknown source 'nowhere'"),
])
def test_bad_trial_input_exits_2_with_one_line(cache, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        train.main(["--model", "mobilenet_v2", "--init", "pretrained", "--image-size", "16",
                    "--device", "cpu", "--out", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and message in err, err
