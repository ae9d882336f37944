"""Search-space files: what they sample, and one clear error for every malformed one."""
from __future__ import annotations

import math

import optuna
import pytest

from hpo_prune.search import space as spaces
from hpo_prune.errors import UsageError


def test_shipped_spaces_load_and_sample_valid_configs():
    from hpo_prune.config import TrialConfig

    for path in sorted(spaces.SPACES_DIR.glob("*.yaml")):
        space = spaces.load(str(path), "vgg16")
        for regime in spaces.REGIMES:
            study = optuna.create_study(directions=["maximize", "minimize"],
                                        sampler=optuna.samplers.RandomSampler(seed=0))
            for _ in range(20):
                values = space.suggest(study.ask(), regime) if space.params else {}
                TrialConfig(init=regime).replace(**space.fixed, **values).validate()
            assert space.baseline(regime).get("prune_ratio", 0.0) == 0.0


def test_conditional_and_per_regime_parameters():
    space = spaces.load("vgg.yaml", "vgg16")
    seen = {"scratch": [], "pretrained": []}
    for regime in seen:
        study = optuna.create_study(directions=["maximize", "minimize"],
                                    sampler=optuna.samplers.RandomSampler(seed=1))
        for _ in range(60):
            values = space.suggest(study.ask(), regime)
            assert ("prune_steps" in values) == (values["schedule"] == "iterative")
            seen[regime].append(values["lr"])
    assert max(seen["pretrained"]) <= 0.01 < max(seen["scratch"])
    assert space.baseline("scratch")["lr"] == pytest.approx(math.sqrt(0.002 * 0.03))


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
