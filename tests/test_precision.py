"""--precision auto: bf16 only where the device computes it natively and a measurement shows
it faster; the choice cached per machine; every command and the pre-training receive the
resolved value."""
import argparse
import json

import pytest
import torch

from hpo_prune.resolution import precision_of, resolve_trial
from hpo_prune.settings import TrialConfig
from hpo_prune.sources import pretrain
from hpo_prune.training import precision

CPU = torch.device("cpu")
FAST_BF16 = {"fp32": 0.9, "bf16": 0.5}
SLOW_BF16 = {"fp32": 0.7, "bf16": 10.0}  # an emulated path: 15x slower


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A fresh cache and no choice remembered in this process; the capability and the
    measurement as each test sets them (``calls`` counts the measurements)."""
    monkeypatch.setenv("HPO_PRUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(precision, "_chosen", {})
    state = {"native": True, "seconds": FAST_BF16, "calls": 0}

    def measure(device, repeats=5):
        state["calls"] += 1
        return state["seconds"]

    monkeypatch.setattr(precision, "native_bf16", lambda device: state["native"])
    monkeypatch.setattr(precision, "measure", measure)
    return state


@pytest.mark.parametrize("native, seconds, chosen", [
    (True, FAST_BF16, "bf16"),     # AVX512-BF16 / AMX, or a GPU that has it
    (True, SLOW_BF16, "fp32"),     # says native, measures slow: never the slow path
    (True, {"fp32": 1.0, "bf16": 0.95}, "fp32"),  # not faster by SPEEDUP: no gain worth it
    (False, FAST_BF16, "fp32"),    # no native bf16: not even measured
    (False, SLOW_BF16, "fp32"),    # AVX2 only (AMD Zen 2/3, most laptops)
])
def test_auto_picks_bf16_only_where_native_and_measured_faster(machine, native, seconds,
                                                               chosen):
    machine.update(native=native, seconds=seconds)
    lines = []
    assert precision.choose(CPU, log=lines.append) == chosen
    assert machine["calls"] == (1 if native else 0)
    assert len(lines) == 1 and f"-> {chosen}" in lines[0] and precision.cpu_model() in lines[0]


def test_the_choice_is_cached_per_machine_and_measured_once(machine, tmp_path, monkeypatch):
    assert precision.choose(CPU) == "bf16"
    cached = json.loads((tmp_path / "cache" / precision.CACHE_FILE).read_text())
    key = precision.machine_key(CPU)
    assert torch.__version__ in key and precision.cpu_model() in key and "cpu" in key
    assert cached[key]["precision"] == "bf16" and cached[key]["seconds"] == FAST_BF16
    # a new process (nothing remembered) reads the cache: no second measurement, even if
    # the measurement would now say otherwise
    monkeypatch.setattr(precision, "_chosen", {})
    machine["seconds"] = SLOW_BF16
    assert precision.choose(CPU) == "bf16" and machine["calls"] == 1
    # another machine (another CPU model) in the same cache measures its own
    monkeypatch.setattr(precision, "_chosen", {})
    monkeypatch.setattr(precision, "cpu_model", lambda: "Another CPU")
    assert precision.choose(CPU) == "fp32" and machine["calls"] == 2
    assert len(json.loads((tmp_path / "cache" / precision.CACHE_FILE).read_text())) == 2


def test_a_damaged_or_unwritable_cache_costs_only_a_measurement(machine, tmp_path,
                                                                monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / precision.CACHE_FILE).write_text("{ not json")
    assert precision.choose(CPU) == "bf16" and machine["calls"] == 1
    assert json.loads((cache / precision.CACHE_FILE).read_text())  # rewritten whole
    (cache / precision.CACHE_FILE).write_text(json.dumps(
        {precision.machine_key(CPU): {"precision": "fp16"}}))
    monkeypatch.setattr(precision, "_chosen", {})
    assert precision.choose(CPU) == "bf16" and machine["calls"] == 2
    (tmp_path / "afile").write_text("a file, not a folder")
    monkeypatch.setenv("HPO_PRUNE_CACHE", str(tmp_path / "afile" / "cache"))
    monkeypatch.setattr(precision, "_chosen", {})
    assert precision.choose(CPU) == "bf16" and machine["calls"] == 3


def test_capability_reads_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(precision.sys, "platform", "linux")
    for flags, native in [({"avx2", "fma"}, False), ({"avx512f", "avx512_bf16"}, True),
                          ({"amx_bf16", "amx_tile"}, True), ({"fp", "asimd", "bf16"}, True)]:
        monkeypatch.setattr(precision, "cpu_flags", lambda flags=flags: flags)
        assert precision.native_bf16(CPU) is native, flags
        assert precision.emulated("bf16", CPU) is not native
        assert not precision.emulated("fp32", CPU)


def test_the_real_measurement_times_both_precisions():
    seconds = precision.measure(CPU, repeats=1)
    assert set(seconds) == {"bf16", "fp32"} and all(s > 0 for s in seconds.values())


def test_resolution_fills_the_precision_and_the_pretraining_receives_it(machine):
    assert TrialConfig().train.precision == "auto"
    assert resolve_trial(TrialConfig(model="mobilenet_v2")).train.precision == "bf16"
    machine.update(native=False)
    forced = resolve_trial(TrialConfig(model="mobilenet_v2", precision="fp32"))
    assert forced.train.precision == "fp32"
    assert precision_of("bf16", "cpu") == "bf16"  # forced: no measurement, no cache
    config = resolve_trial(TrialConfig(model="mobilenet_v2", init="pretrained", dataset="digits"))
    assert pretrain.settings(config)["training"]["precision"] == "bf16"  # remembered
    assert "--precision bf16" in pretrain.command(pretrain.settings(config))
    with pytest.raises(ValueError, match="resolved settings.*precision"):
        pretrain.settings(TrialConfig(init="pretrained"))


def test_the_search_resolves_once_and_a_resume_keeps_the_recorded_precision(machine, capsys):
    from hpo_prune.errors import UsageError
    from hpo_prune.search.cli import trial_precision

    args = argparse.Namespace(precision="auto", gpus_per_trial=0.0, device="cpu")
    assert trial_precision(args, "s", None) == "bf16"  # a new search: measured here
    machine.update(native=False)  # resumed on a machine that emulates bf16: said, kept
    capsys.readouterr()
    assert trial_precision(args, "s", "bf16") == "bf16"
    note = capsys.readouterr().out.strip().splitlines()
    assert len(note) == 1 and "emulates bf16" in note[0]
    assert trial_precision(args, "s", "fp32") == "fp32" and capsys.readouterr().out == ""
    with pytest.raises(UsageError, match="--precision fp32 differs from the bf16 search 's'"):
        trial_precision(argparse.Namespace(precision="fp32", gpus_per_trial=0.0,
                                           device="cpu"), "s", "bf16")
    if not torch.cuda.is_available():  # GPU trials: auto cannot be measured on this driver
        with pytest.raises(UsageError, match="pass --precision bf16 or fp32"):
            trial_precision(argparse.Namespace(precision="auto", gpus_per_trial=1.0,
                                               device="auto"), "s", None)
