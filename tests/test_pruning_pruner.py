"""The Pruner inside the real training loop: the schedule is followed, pruned weights stay
exactly zero through many SGD steps (momentum, weight decay), filters stay masked with their
BatchNorm and bias, val accuracy is taken once at the window's start, and state resumes."""
import copy

import pytest
import torch
from torch import nn

from hpo_prune.resolution import resolve_data
from hpo_prune.data import datasets
from hpo_prune.settings import TrialConfig
from hpo_prune.training.loop import batches, evaluate, train_epoch
from hpo_prune.pruning import Pruner, prunable_layers, sparsity_at
from hpo_prune.trial import transforms_for
from hpo_prune.resolution import resolve_trial

SHAPE = (1, 3, 16, 16)


@pytest.fixture(scope="module")
def data():
    return datasets.load(resolve_data(TrialConfig(train_subset=96, image_size=16).data))


def _small_cnn(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


class Run:
    """A model, SGD with momentum and weight decay, and a pruner, trained with train_epoch."""

    def __init__(self, data, config: TrialConfig, epochs: int, model=None):
        self.data, self.config = data, config
        self.model = model if model is not None else _small_cnn()
        self.transform = transforms_for(data, torch.device("cpu"), "crop", "fp32")
        steps = len(batches(len(data.train), config.train.batch_size, torch.Generator())) * epochs
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9,
                                         weight_decay=5e-4)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: 1.0)
        self.generator = torch.Generator().manual_seed(0)
        self.val_calls = []
        self.pruner = Pruner(self.model, resolve_trial(config).prune, steps, SHAPE,
                             val_acc=self._val_acc, seed=config.train.seed)

    def _val_acc(self):
        self.val_calls.append(self.pruner.step)
        return evaluate(self.model, self.data.val, self.transform)

    def epoch(self):
        return train_epoch(self.model, self.optimizer, self.scheduler, self.data.train,
                           self.transform, self.config.train.batch_size, self.generator,
                           hooks=self.pruner)


def _config(**changes):
    base = dict(model="vgg16", batch_size=16, prune_ratio=0.8, schedule="agp",
                prune_start=0.0, prune_end=0.5, prune_every=2)
    return TrialConfig(**{**base, **changes})


class Recorder:
    """Wraps the pruner's hooks to record the model right after every optimizer step."""

    def __init__(self, pruner):
        self.pruner, self.sparsity, self.zero_ok = pruner, [], []

    def before_step(self):
        self.pruner.before_step()

    def after_step(self):
        self.pruner.after_step()
        self.sparsity.append(self.pruner.sparsity())
        params = dict(self.pruner.model.named_parameters())
        keep = self.pruner.keep or {}
        self.zero_ok.append(all(not params[k][~m].any() for k, m in keep.items()))


def test_weight_masks_follow_the_schedule_and_stay_zero(data):
    config = _config()
    run = Run(data, config, epochs=3)
    recorder = Recorder(run.pruner)
    for _ in range(3):
        train_epoch(run.model, run.optimizer, run.scheduler, data.train, run.transform,
                    config.train.batch_size, run.generator, hooks=recorder)
    pruner, s = run.pruner, recorder.sparsity
    end = pruner.end_step
    assert len(s) == 3 * 6 and pruner.start_step == 0 and end == 9  # 96 images, batch 16
    assert all(recorder.zero_ok)  # pruned weights are exactly zero after every step
    assert all(b >= a for a, b in zip(s, s[1:]))  # never decreases
    # masks recomputed every 2 steps from the window's start and at its end, then fixed
    recomputed = [0, 2, 4, 6, 8, end]
    for step in range(len(s)):
        last = max(r for r in recomputed if r <= step)
        expected = sparsity_at("agp", last / end, 0.8, 0.0, 1.0)
        assert s[step] == pytest.approx(expected, abs=1e-3), step
    assert s[end] == pytest.approx(0.8, abs=1e-4) and s[-1] == s[end]
    # momentum and weight decay push on the pruned weights; only the re-masking stops them
    weights = dict(run.model.named_parameters())
    pushed = sum(int(run.optimizer.state[weights[name]]["momentum_buffer"][~mask]
                     .ne(0).sum()) for name, mask in pruner.keep.items())
    assert pushed > 0
    final = pruner.final_metrics()
    assert final["params_remaining"] == sum(int(p.count_nonzero())
                                            for p in run.model.parameters())
    assert final["achieved_sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert run.val_calls == [1]  # once, as the first pruning step began (counter advanced)


def test_val_acc_is_taken_at_the_window_start_and_training_mode_kept(data):
    config = _config(prune_start=0.4, prune_end=0.8, schedule="one_shot")
    run = Run(data, config, epochs=2)
    modes = []

    class Hooks:
        def before_step(self):
            run.pruner.before_step()
            modes.append(run.model.training)

        def after_step(self):
            run.pruner.after_step()

    for _ in range(2):
        train_epoch(run.model, run.optimizer, run.scheduler, data.train, run.transform,
                    config.train.batch_size, run.generator, hooks=Hooks())
    assert run.pruner.start_step == round(0.4 * 12) and run.val_calls == [5 + 1]
    assert all(modes)  # evaluating val did not leave the model in eval mode
    assert 0 <= run.pruner.final_metrics()["val_acc_before_pruning"] <= 1


def test_filter_masks_zero_filters_with_their_batchnorm_and_bias(data):
    config = _config(granularity="filter", scope="local", prune_ratio=0.5)
    run = Run(data, config, epochs=2)
    for _ in range(2):
        run.epoch()
    conv, bn = run.model[0], run.model[1]
    dead = conv.weight.detach().flatten(1).abs().sum(1) == 0
    assert 0 < int(dead.sum()) < 16
    assert not conv.bias[dead].any() and not bn.weight[dead].any() and not bn.bias[dead].any()
    assert not run.model[3].weight[:, dead].any()  # the next layer's inputs follow
    x = run.transform(data.val.x[:8])
    run.model.eval()
    with torch.no_grad():
        masked = run.model(x)
    pruned = run.pruner.finish()
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), masked, rtol=1e-4, atol=1e-5)
    assert pruned[0].out_channels == 16 - int(dead.sum())
    final = run.pruner.final_metrics()
    assert final["params_remaining"] == sum(p.numel() for p in pruned.parameters())
    assert 0.5 <= final["achieved_sparsity"] < 0.6


@pytest.mark.parametrize("granularity", ["weight", "filter"])
def test_resume_from_state_dict_continues_identically(data, granularity):
    config = _config(granularity=granularity, criterion="random", schedule="lin",
                     prune_end=1.0, prune_every=1, seed=7)
    first = Run(data, config, epochs=2)
    first.epoch()  # half way through the window
    state = copy.deepcopy({"model": first.model.state_dict(),
                           "optimizer": first.optimizer.state_dict(),
                           "generator": first.generator.get_state(),
                           "pruner": first.pruner.state_dict()})
    halfway = first.pruner.sparsity()
    assert 0 < halfway < 0.8
    first.epoch()

    second = Run(data, config, epochs=2)
    second.model.load_state_dict(state["model"])
    second.optimizer.load_state_dict(state["optimizer"])
    second.generator.set_state(state["generator"])
    second.pruner.load_state_dict(state["pruner"])
    assert second.pruner.sparsity() == halfway
    second.epoch()
    assert second.pruner.sparsity() == first.pruner.sparsity()
    for (name, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert first.val_calls == [1] and second.val_calls == []  # restored, not re-measured


def test_random_criterion_is_seeded_from_the_config(data):
    def kept(seed):
        run = Run(data, _config(criterion="random", schedule="one_shot", seed=seed), epochs=1)
        run.pruner.before_step()
        return {k: v.clone() for k, v in run.pruner.keep.items()}

    a, b, c = kept(1), kept(1), kept(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert len(a) == len(prunable_layers(_small_cnn())) == 3


def test_rescale_norm_keeps_each_layers_norm_and_its_zeros(data):
    """--rescale norm: after a recomputation every layer has the norm it had before it, its
    pruned weights are still exactly zero and its kept ones all grew by one factor; without
    it the masks alone shrink the layers."""
    def pruned(rescale):
        run = Run(data, _config(schedule="one_shot", rescale=rescale), epochs=1)
        before = {k: w.detach().clone() for k, w in run.pruner.strategy.weights.items()}
        run.pruner.before_step()
        return run, before

    run, before = pruned("norm")
    for name, w in run.pruner.strategy.weights.items():
        w, keep = w.detach(), run.pruner.keep[name]
        assert float(w.norm()) == pytest.approx(float(before[name].norm()), rel=1e-5)
        assert torch.all(w[~keep] == 0) and 0 < int(keep.sum()) < keep.numel()
        factor = w[keep] / before[name][keep]
        assert float(factor.min()) > 1
        torch.testing.assert_close(factor, torch.full_like(factor, float(factor[0])))
    plain, before = pruned("none")
    for name, w in plain.pruner.strategy.weights.items():
        w = w.detach()
        assert float(w.norm()) < float(before[name].norm())
        torch.testing.assert_close(w[plain.pruner.keep[name]],
                                   before[name][plain.pruner.keep[name]])
