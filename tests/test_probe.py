"""The linear probe (LP-FT): the head it sets computes the probe's own predictions, it learns
what a linear read-out can learn, the recipe resolves it per family, and trials record it."""
import numpy as np
import pytest
import torch

from hpo_prune import TrialConfig, models, trial
from hpo_prune.data import datasets
from hpo_prune.data.datasets import Split
from hpo_prune.training.fit import transforms_for
from hpo_prune.training.loop import evaluate
from hpo_prune.training.probe import features, fit_head
from hpo_prune.resolution import resolve_trial


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _digits(subset: int = 200):
    config = resolve_trial(TrialConfig(model="mobilenet_v2", image_size=16,
                                       train_subset=subset, device="cpu"))
    return config, datasets.load(config.data)


def test_fitted_head_computes_the_probe_and_beats_the_random_head():
    config, data = _digits()
    torch.manual_seed(0)
    model = models.build("mobilenet_v2", data.num_classes, data.image_size)
    exact = transforms_for(data, torch.device("cpu"), "none", "fp32")
    before = evaluate(model, data.train, exact)
    head = models.classifier(model)
    frozen = {k: v.clone() for k, v in model.state_dict().items()
              if not k.startswith("classifier.1.")}
    info = fit_head(model, data.train, exact)
    # the folded weights give the probe's predictions: same train accuracy, image for image
    assert evaluate(model, data.train, exact) == pytest.approx(info["probe_train_acc"],
                                                               abs=1 / len(data.train))
    assert info["probe_train_acc"] > before + 0.3  # random features, still linearly readable
    assert info["head_init"] == "probe"
    # only the head moved
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in frozen.items())
    assert head.weight.shape == (data.num_classes, features(model, data.train, exact).shape[1])


def test_the_same_model_and_data_reuse_the_fit_and_any_change_refits():
    config, data = _digits(100)
    exact = transforms_for(data, torch.device("cpu"), "none", "fp32")

    def fresh():
        torch.manual_seed(1)
        return models.build("mobilenet_v2", data.num_classes, data.image_size)

    first, second = fresh(), fresh()
    a, b = fit_head(first, data.train, exact), fit_head(second, data.train, exact)
    assert (a["probe_cached"], b["probe_cached"]) == (False, True)
    assert a["probe_train_acc"] == b["probe_train_acc"]
    assert torch.equal(models.classifier(first).weight, models.classifier(second).weight)
    third = fresh()
    with torch.no_grad():  # one weight outside the head moves: the features may differ
        next(third.parameters()).view(-1)[0] += 1.0
    assert fit_head(third, data.train, exact)["probe_cached"] is False
    fewer = Split(data.train.x[:-1], data.train.y[:-1])
    assert fit_head(fresh(), fewer, exact)["probe_cached"] is False


def test_two_classes_become_two_logits():
    config, data = _digits()
    keep = data.train.y < 2
    train = Split(data.train.x[keep], data.train.y[keep])
    torch.manual_seed(0)
    model = models.build("mobilenet_v2", data.num_classes, data.image_size)
    exact = transforms_for(data, torch.device("cpu"), "none", "fp32")
    info = fit_head(model, train, exact)
    assert evaluate(model, train, exact) == pytest.approx(info["probe_train_acc"],
                                                          abs=1 / len(train))
    assert info["probe_train_acc"] > 0.9
    # absent classes: a constant logit (zero weights) that never wins on these images
    assert torch.count_nonzero(models.classifier(model).weight[2:].detach()) == 0


def test_recipe_resolves_head_init_per_family_and_explicit_wins(monkeypatch):
    # VGG16's pruned runs chose the random head in both regimes on val, its unpruned runs the
    # probe (models.DENSE, docs/recipe.md): a family listed in HEAD_INIT gets its entry for
    # pruned runs, every other (model, regime) the random head
    pruned = {"prune_ratio": 0.8}
    assert resolve_trial(TrialConfig(model="vgg16", init="pretrained", **pruned)).train.head_init == \
        "random"
    for regime in ("scratch", "pretrained"):
        assert resolve_trial(TrialConfig(model="vgg16", init=regime)).train.head_init == "probe"
    monkeypatch.setitem(models.HEAD_INIT, ("vgg16", "pretrained"), "probe")
    assert resolve_trial(TrialConfig(model="vgg16", init="pretrained", **pruned)).train.head_init == \
        "probe"
    assert resolve_trial(TrialConfig(model="vgg16", init="scratch", **pruned)).train.head_init == \
        "random"
    assert resolve_trial(TrialConfig(model="mobilenet_v2", init="pretrained")).train.head_init == \
        "random"
    explicit = TrialConfig(model="vgg16", init="pretrained", head_init="random", lr=1e-3,
                           optimizer="adamw", warmup=0.1)
    assert resolve_trial(explicit).train.head_init == "random"


def test_trial_records_the_probe_in_both_regimes(tmp_path, monkeypatch):
    monkeypatch.setenv("HPO_PRUNE_CACHE", str(tmp_path / "cache"))
    base = dict(model="mobilenet_v2", dataset="digits", image_size=16, train_subset=40,
                epochs=1, device="cpu", fractal_classes=3, fractal_per_class=8,
                pretrain_epochs=1)
    probed = trial.run_trial(resolve_trial(TrialConfig(init="pretrained", head_init="probe",
                                                         **base)))
    assert probed.init["head_init"] == "probe"
    assert 0 <= probed.init["probe_train_acc"] <= 1
    assert probed.config.train.head_init == "probe"
    # from scratch the probe reads the seeded init's features: the same head option
    scratch = trial.run_trial(resolve_trial(TrialConfig(init="scratch", head_init="probe",
                                                          **base)))
    assert scratch.init["head_init"] == "probe" and scratch.config.train.head_init == "probe"
    assert np.isfinite(scratch.final["test_acc"])
