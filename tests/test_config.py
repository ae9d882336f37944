"""TrialConfig.run_hash: the fields that change a result, defaults left out, so that adding a
field with a default (or writing a default out) keeps every hash made before."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from hpo_prune.settings import TrainSettings, TrialConfig
from hpo_prune.settings import trial as trial_module
from hpo_prune.settings.fields import key_of, option

FIELDS = {key: TrialConfig.field(key) for key in TrialConfig.keys()}
EMPTY = hashlib.sha256(b"{}").hexdigest()[:16]  # "44136fa355b3678a"


def digest(changed: dict) -> str:
    """The hash of a config whose non-default hashed fields are ``changed``."""
    return hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:16]


def other(name: str):
    """A value of field ``name`` different from its default (not necessarily a valid one:
    the hash does not validate)."""
    default = FIELDS[name].default
    if isinstance(default, bool):
        return not default
    if isinstance(default, (int, float)):
        return default + 1
    choices = FIELDS[name].metadata["choices"]
    if isinstance(choices, tuple):
        return next(c for c in choices if c != default)
    return f"{default}x"


def test_the_defaults_hash_as_the_empty_dict():
    assert EMPTY == "44136fa355b3678a"
    assert TrialConfig().run_hash() == EMPTY == digest({})


def test_writing_a_default_out_leaves_the_hash_unchanged():
    explicit = TrialConfig(**{key: f.default for key, f in FIELDS.items()})
    assert explicit == TrialConfig()
    assert explicit.run_hash() == EMPTY


def test_one_changed_field_hashes_as_a_dict_of_only_that_field():
    lr = FIELDS["lr"].default + 0.005
    assert TrialConfig(lr=lr).run_hash() == digest({"lr": lr})
    assert TrialConfig(lr=lr).run_hash() != EMPTY
    two = TrialConfig(lr=lr, prune_ratio=0.5, schedule=other("schedule"))
    assert two.run_hash() == digest({"lr": lr, "prune_ratio": 0.5, "schedule": two.prune.schedule})


@pytest.mark.parametrize("name", ["device", "data_dir", "download"])
def test_fields_that_do_not_change_the_result_are_not_hashed(name):
    assert FIELDS[name].metadata["hashed"] is False
    assert TrialConfig(**{name: other(name)}).run_hash() == EMPTY
    lr = FIELDS["lr"].default + 0.005
    assert TrialConfig(lr=lr, **{name: other(name)}).run_hash() == TrialConfig(lr=lr).run_hash()


def test_every_field_is_in_the_hash_exactly_when_it_is_marked_hashed():
    for name, f in FIELDS.items():
        value = other(name)
        changed = TrialConfig(**{name: value}).run_hash()
        if f.metadata["hashed"]:
            assert changed == digest({name: value}) != EMPTY, name
        else:
            assert changed == EMPTY, name


def test_adding_a_field_with_a_default_keeps_every_old_hash(monkeypatch):
    """A later version of the settings with one more (hashed) field: configs that leave it at
    its default hash as they did before it existed."""

    @dataclasses.dataclass(frozen=True)
    class GrownTrain(TrainSettings):
        new_knob: float = option(0.25, "a setting added later", group="train")

    lr = FIELDS["lr"].default + 0.005
    before = TrialConfig(lr=lr, prune_ratio=0.5).run_hash()
    parts = {**trial_module.PARTS, "train": GrownTrain}
    monkeypatch.setattr(trial_module, "PARTS", parts)
    monkeypatch.setattr(trial_module, "_FIELDS", {
        key_of(f): (part, f) for part, cls in parts.items() for f in dataclasses.fields(cls)})
    assert isinstance(TrialConfig().train, GrownTrain)
    assert TrialConfig().run_hash() == EMPTY
    assert TrialConfig(lr=lr, prune_ratio=0.5).run_hash() == before
    assert TrialConfig(new_knob=0.5).run_hash() == digest({"new_knob": 0.5}) != EMPTY


def test_the_records_are_flat_and_each_part_holds_its_own_fields():
    config = TrialConfig(lr=0.01, dataset="svhn", prune_ratio=0.5, pretrain_epochs=2)
    assert (config.train.lr, config.data.dataset, config.prune.prune_ratio,
            config.fractal.epochs) == (0.01, "svhn", 0.5, 2)
    record = config.to_dict()
    assert list(record) == TrialConfig.keys() and record["pretrain_epochs"] == 2
    assert TrialConfig.from_dict(record) == config and hash(TrialConfig.from_dict(record))
    assert config.replace(lr=0.02).train.lr == 0.02 and config.train.lr == 0.01
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train = TrainSettings()
    with pytest.raises(TypeError, match="no field"):
        TrialConfig(learning_rate=0.1)
