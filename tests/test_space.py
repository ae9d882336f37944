"""Search-space files: what they sample, and one clear error for every malformed one."""
from __future__ import annotations

import itertools
import math

import optuna
import pytest

from hpo_prune.settings import OPTIMIZERS
from hpo_prune.search.studies import space as spaces
from hpo_prune.errors import UsageError


def test_shipped_spaces_load_and_sample_valid_configs():
    from hpo_prune.settings import TrialConfig

    for path in sorted(spaces.SPACES_DIR.glob("*.yaml")):
        space = spaces.load(str(path), "vgg16")
        for regime, optimizer in itertools.product(spaces.REGIMES, OPTIMIZERS):
            study = optuna.create_study(directions=["maximize", "minimize"],
                                        sampler=optuna.samplers.RandomSampler(seed=0))
            for _ in range(20):
                values = space.suggest(study.ask(), regime, optimizer) if space.params else {}
                TrialConfig(init=regime).replace(**space.fixed, **values).validate()
            assert space.baseline(regime, optimizer).get("prune_ratio", 0.0) == 0.0


def test_every_shipped_lr_range_holds_the_default_lr_of_every_model_it_names():
    """A search never samples around a recipe it was not measured with: for each model a file
    names (its ``models:``), every regime and optimizer, the lr range (that model's overrides
    merged in) contains the family's default lr; a grid's lr values are the default."""
    import yaml

    from hpo_prune.models import recipe

    checked = 0
    for path in sorted(spaces.SPACES_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        assert doc.get("models"), f"{path.name} names no models"
        for model in doc["models"]:
            space = spaces.load(str(path), model)
            for regime, optimizer in itertools.product(spaces.REGIMES, OPTIMIZERS):
                lr = recipe(model, regime, optimizer)["lr"]
                if "lr" in space.params:
                    spec = space.spec("lr", regime, optimizer)
                    assert spec["low"] <= lr <= spec["high"], (path.name, model, regime,
                                                              optimizer, spec, lr)
                    checked += 1
                grid = space.grid.get("lr")
                if grid is not None:
                    values = grid[regime] if isinstance(grid, dict) else grid
                    assert values == [lr], (path.name, model, regime, values, lr)
    assert checked >= 3 * 4 * 2  # vgg, mobilenet and filter, each model, regime, optimizer


def test_a_models_overrides_apply_to_that_model_only(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("models: [vgg16, vgg16_bn]\nparams:\n  lr: {type: float, log: true, "
                    "low: 0.0001, high: 0.001, optimizers: {adamw: {regimes: {pretrained: "
                    "{low: 0.0002, high: 0.0009}}}}, models: {vgg16_bn: {low: 0.001, high: "
                    "0.01, optimizers: {adamw: {regimes: {pretrained: {low: 0.002, "
                    "high: 0.02}}}}}}}\n")
    plain, bn = spaces.load(str(path), "vgg16"), spaces.load(str(path), "vgg16_bn")
    assert (plain.spec("lr", "scratch", "adamw")["low"],
            plain.spec("lr", "pretrained", "adamw")["low"]) == (0.0001, 0.0002)
    assert bn.spec("lr", "scratch", "adamw")["high"] == 0.01
    pretrained = bn.spec("lr", "pretrained", "adamw")
    assert (pretrained["low"], pretrained["high"]) == (0.002, 0.02)
    path.write_text("params:\n  lr: {type: float, low: 0.1, high: 0.2, models: "
                    "{vgg16_bn: {low: 0.3}}}\n")
    with pytest.raises(UsageError, match="empty range"):  # vgg16_bn's 0.3..0.2, even
        spaces.load(str(path), "vgg16")                   # when another model is searched


def test_conditional_and_per_regime_parameters():
    space = spaces.load("vgg.yaml", "vgg16")
    for regime, optimizer in itertools.product(spaces.REGIMES, OPTIMIZERS):
        low, high = (space.spec("lr", regime, optimizer)[k] for k in ("low", "high"))
        study = optuna.create_study(directions=["maximize", "minimize"],
                                    sampler=optuna.samplers.RandomSampler(seed=1))
        for _ in range(60):
            values = space.suggest(study.ask(), regime, optimizer)
            assert ("prune_steps" in values) == (values["schedule"] == "iterative")
            assert low <= values["lr"] <= high
        assert space.baseline(regime, optimizer)["lr"] == pytest.approx(math.sqrt(low * high))


BAD = {
    "not a mapping": ("- 1\n- 2\n", "(top level)"),
    "unknown top key": ("parms: {}\n", "parms"),
    "unknown param": ("params:\n  learning_rate: {type: float, low: 0.1, high: 1}\n",
                      "params.learning_rate"),
    "reserved param": ("params:\n  model: {type: categorical, choices: [vgg16]}\n",
                       "params.model"),
    "missing type": ("params:\n  lr: {low: 0.1, high: 1}\n", "params.lr"),
    "low above high": ("params:\n  lr: {type: float, low: 0.1, high: 0.01}\n", "params.lr"),
    "ratio out of range": ("params:\n  prune_ratio: {type: float, low: 0.0, high: 1.5}\n",
                           "params.prune_ratio"),
    "unknown schedule": ("params:\n  schedule: {type: categorical, choices: [agp, fast]}\n",
                         "params.schedule"),
    "log of zero": ("params:\n  lr: {type: float, low: 0.0, high: 0.1, log: true}\n",
                    "params.lr.low"),
    "string bound": ("params:\n  lr: {type: float, low: small, high: 0.1}\n", "params.lr.low"),
    "bad regime": ("params:\n  lr: {type: float, low: 0.01, high: 0.1, regimes: {warm: {}}}\n",
                   "params.lr.regimes"),
    "when on later param": ("params:\n  prune_steps: {type: int, low: 2, high: 4, when: "
                            "{schedule: iterative}}\n  schedule: {type: categorical, choices: "
                            "[iterative]}\n", "params.prune_steps.when"),
    "fixed out of range": ("params:\n  lr: {type: float, low: 0.01, high: 0.1}\nfixed: "
                           "{epochs: 0}\n", "fixed.epochs"),
    "grid not a list": ("grid:\n  prune_ratio: 0.5\n", "grid.prune_ratio"),
    "empty": ("{}\n", "params"),
    "fixed and sampled": ("params:\n  scope: {type: categorical, choices: [local]}\nfixed: "
                          "{scope: global}\n", "fixed.scope"),
    "data setting": ("params:\n  image_size: {type: int, low: 32, high: 64}\n",
                     "params.image_size"),
    "pretrain setting": ("fixed: {pretrain_epochs: 1}\nparams:\n  lr: {type: float, low: "
                         "0.01, high: 0.1}\n", "fixed.pretrain_epochs"),
    "broken yaml": ("params: {lr: [\n", "line"),
    "empty range for an optimizer": ("params:\n  lr: {type: float, low: 0.01, high: 0.1, "
                                     "optimizers: {sgd: {low: 0.1, high: 0.05}}}\n",
                                     "params.lr.optimizers.sgd"),
    "empty range for an optimizer's regime": (
        "params:\n  lr: {type: float, low: 0.01, high: 0.1, optimizers: {adamw: {low: "
        "0.0001, high: 0.001, regimes: {pretrained: {high: 0.00001}}}}}\n",
        "params.lr.optimizers.adamw.regimes.pretrained"),
    "unknown optimizer": ("params:\n  lr: {type: float, low: 0.01, high: 0.1, optimizers: "
                          "{adam: {low: 0.001, high: 0.01}}}\n", "params.lr.optimizers"),
    "unknown key of an optimizer": ("params:\n  lr: {type: float, low: 0.01, high: 0.1, "
                                    "optimizers: {sgd: {top: 1}}}\n",
                                    "params.lr.optimizers.sgd.top"),
    "python tag": ("params: !!python/object/apply:os.system ['echo pwned > pwned.txt']\n",
                   "line"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_space_is_one_error_naming_file_and_key(tmp_path, case):
    text, key = BAD[case]
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        spaces.load(str(path), "vgg16")
    message = str(err.value)
    assert str(path) in message and key in message and "\n" not in message
    assert not (tmp_path / "pwned.txt").exists()


PER_OPTIMIZER = """
params:
  prune_ratio: {type: float, low: 0.0, high: 0.9}
  optimizer: {type: categorical, choices: [adamw, sgd]}
  lr:
    type: float
    log: true
    low: 0.01
    high: 0.1
    regimes:
      pretrained: {low: 0.005, high: 0.05}
    optimizers:
      adamw:
        low: 0.0001
        high: 0.001
        regimes:
          pretrained: {high: 0.0005}
"""


def test_learning_rate_ranges_follow_the_sampled_optimizer_and_regime(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(PER_OPTIMIZER)
    space = spaces.load(str(path), "vgg16")
    bounds = {("scratch", "sgd"): (0.01, 0.1), ("pretrained", "sgd"): (0.005, 0.05),
              ("scratch", "adamw"): (0.0001, 0.001), ("pretrained", "adamw"): (0.0001, 0.0005)}
    for regime in spaces.REGIMES:
        study = optuna.create_study(directions=["maximize", "minimize"],
                                    sampler=optuna.samplers.RandomSampler(seed=2))
        seen = set()
        for _ in range(40):
            values = space.suggest(study.ask(), regime, "adamw")
            low, high = bounds[regime, values["optimizer"]]
            assert low <= values["lr"] <= high
            seen.add(values["optimizer"])
        assert seen == {"adamw", "sgd"}


def test_the_model_familys_default_optimizer_picks_the_range_unless_the_space_fixes_one(
        tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(PER_OPTIMIZER.replace("  optimizer: {type: categorical, choices: [adamw, "
                                          "sgd]}\n", ""))
    space = spaces.load(str(path), "vgg16")
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=3))
    for default, (low, high) in (("adamw", (0.0001, 0.001)), ("sgd", (0.01, 0.1))):
        for _ in range(10):
            assert low <= space.suggest(study.ask(), "scratch", default)["lr"] <= high
    space.fixed["optimizer"] = "sgd"
    for _ in range(10):
        assert 0.01 <= space.suggest(study.ask(), "scratch", "adamw")["lr"] <= 0.1
