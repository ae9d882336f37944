"""The compute precision a machine does well: ``--precision auto`` resolved, once per machine.

bf16 autocast pays only where the hardware computes bfloat16 natively: a CUDA device that
supports it, or a CPU with AVX512-BF16 / AMX (x86) or the bf16 extension (Arm). Elsewhere
oneDNN emulates it, about 15x slower than fp32 (a 2-core AMD Zen 3: 10 s against 0.7 s per
VGG16 batch). So ``choose`` picks bf16 only when the capability is there *and* a short
measurement (forward + backward of a small convolutional net in both precisions, a second or
two) shows bf16 faster; anything it cannot confirm gets fp32, the slow emulated path never.

The choice is cached per machine in the project's cache directory (``precision.json`` beside
the pre-trained checkpoints), keyed by the CPU model, the torch version and the device, so the
measurement runs once; delete the file to measure again. The probe runs on one thread, so
another job's threads on a busy machine cannot turn its ratio around.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from ..files import atomic_write, cache_dir

__all__ = ["PRECISIONS", "AUTO", "CACHE_FILE", "SPEEDUP", "choose", "native_bf16", "measure",
           "time_both", "cpu_model", "machine_key", "emulated"]

PRECISIONS = ("bf16", "fp32")  # what a trial computes in; AUTO resolves to one of them
AUTO = "auto"
CACHE_FILE = "precision.json"
SPEEDUP = 1.1  # bf16 must beat fp32 by this factor in the measurement to be chosen

_chosen: dict[str, dict] = {}  # machine key -> its cached entry, in this process


def cpu_model() -> str:
    """The CPU's model name, as the OS reports it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        out = _sysctl("machdep.cpu.brand_string")
        if out:
            return out
    return platform.processor() or platform.machine() or "unknown CPU"


def _sysctl(name: str) -> str:
    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux: /proc/cpuinfo 'flags' on x86, 'Features' on Arm)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            return set(line.split(":", 1)[1].split())
    return set()


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX512-BF16 / AMX; Arm FEAT_BF16


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (False where that cannot be told)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu":
        return False
    if sys.platform == "darwin":
        return _sysctl("hw.optional.arm.FEAT_BF16") == "1"
    return bool(cpu_flags() & set(CPU_BF16_FLAGS))


def _probe_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))


def measure(device: torch.device, repeats: int = 5) -> dict[str, float]:
    """Seconds of one forward + backward of a small conv net (batch 32, 32 px, channels_last)
    in each precision: the best of ``repeats``, the two precisions alternating (so a load
    that comes and goes slows both alike), after a warm-up step each. On the CPU it runs on
    one thread: the ratio is the hardware's, and a busy machine (another job's threads
    oversubscribing the cores) cannot turn it around."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        return _measure(device, repeats)
    finally:
        torch.set_num_threads(threads)


def _measure(device: torch.device, repeats: int) -> dict[str, float]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, 32, 32, generator=generator).to(
        device, memory_format=torch.channels_last)
    y = torch.randint(0, 10, (32,), generator=generator).to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        net = _probe_net().to(device, memory_format=torch.channels_last)

    def step(precision: str) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        net.zero_grad(set_to_none=True)

    return time_both(step, device, repeats)


def time_both(step, device: torch.device, repeats: int) -> dict[str, float]:
    """Seconds of ``step(precision)`` in each precision: the best of ``repeats``, the two
    precisions alternating, after a warm-up call each."""
    times: dict[str, list[float]] = {precision: [] for precision in PRECISIONS}
    for _ in range(repeats + 1):
        for precision in PRECISIONS:
            started = time.perf_counter()
            step(precision)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[precision].append(time.perf_counter() - started)
    return {precision: min(t[1:]) for precision, t in times.items()}


def machine_key(device: torch.device) -> str:
    """What the choice depends on: the CPU model, the torch version and the device."""
    name = cpu_model()
    if device.type == "cuda":
        name += f" | {torch.cuda.get_device_name(device)}"
    return f"{name} | torch {torch.__version__} | {device.type}"


def decide(native: bool, seconds: dict[str, float] | None) -> str:
    """bf16 only where it is native and measured faster by SPEEDUP; fp32 otherwise."""
    if not native or seconds is None:
        return "fp32"
    return "bf16" if seconds["bf16"] * SPEEDUP < seconds["fp32"] else "fp32"


def choose(device: torch.device, log=None) -> str:
    """``--precision auto`` on ``device``: 'bf16' or 'fp32' (see the module's docstring);
    measured on first use on this machine, then read from the cache (a cache that cannot be
    written only costs the measurement again in the next process)."""
    key = machine_key(device)
    if key not in _chosen:
        path = cache_dir() / CACHE_FILE
        entry = _read(path).get(key)
        if not _valid(entry):
            native = native_bf16(device)
            seconds = measure(device) if native else None
            entry = {"precision": decide(native, seconds), "native_bf16": native,
                     "seconds": seconds}
            _store(path, key, entry)
            if log is not None:
                log(_line(key, entry))
        _chosen[key] = entry
    return _chosen[key]["precision"]


def _store(path: Path, key: str, entry: dict) -> None:
    from filelock import FileLock

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path.with_suffix(".lock"))):
            entries = _read(path)
            entries[key] = entry
            atomic_write(path, lambda tmp: tmp.write_text(json.dumps(entries, indent=2)))
    except OSError:
        pass


def _line(key: str, entry: dict) -> str:
    seconds = entry["seconds"]
    measured = (f"measured fp32 {seconds['fp32'] * 1e3:.0f} ms, bf16 {seconds['bf16'] * 1e3:.0f}"
                " ms per batch" if seconds else "no native bf16")
    return f"--precision auto -> {entry['precision']} on {key} ({measured})"


def _valid(entry) -> bool:
    return isinstance(entry, dict) and entry.get("precision") in PRECISIONS


def _read(path: Path) -> dict:
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def emulated(precision: str, device: torch.device) -> bool:
    """Whether ``precision`` would run on an emulated (slow) path on ``device``."""
    return precision == "bf16" and not native_bf16(device)
