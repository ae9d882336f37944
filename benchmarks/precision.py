"""What --precision auto chooses here, and why: the CPU, its bf16 flags, seconds per batch.

    python benchmarks/precision.py [--models vgg16 vgg16_bn mobilenet_v1 mobilenet_v2]
        [--batch-size 32] [--image-size 32] [--repeats 3] [--threads 0] [--device cpu]

Prints the CPU model and the flags that matter (AVX2, AVX-512, AVX512-BF16, AMX; Arm's bf16),
what ``auto`` resolves to on this machine (``training.precision.choose``: the capability plus
its own short measurement, cached), and then, for each built-in model, the seconds of one
training step (forward + backward + AdamW step, channels_last, a batch of random images) in
fp32 and under bf16 autocast: the best of --repeats after a warm-up step, the precisions
alternating. On a CPU without native bf16 expect bf16 many times slower than fp32 (oneDNN
emulates it) and ``auto`` to pick fp32; with AVX512-BF16 / AMX, bf16 faster and ``auto`` bf16.
"""
from __future__ import annotations

import argparse

import torch
from torch import nn

from hpo_prune import models
from hpo_prune.files import cache_dir
from hpo_prune.resolution import precision_of
from hpo_prune.training import precision
from hpo_prune.training.fit import resolve_device

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "bf16")


def step_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int
                 ) -> dict[str, float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(p: str) -> None:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=p == "bf16"):
            loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return precision.time_both(step, x.device, repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(models.MODELS))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's own)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    flags = precision.cpu_flags()
    print(f"CPU: {precision.cpu_model()}")
    print("flags: " + ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in FLAGS
                               if f != "bf16" or "asimd" in flags))
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    print(f"native bf16 on {device}: {precision.native_bf16(device)}; torch {torch.__version__},"
          f" {torch.get_num_threads()} threads")
    chosen = precision_of("auto", str(device), log=print)
    print(f"--precision auto -> {chosen} (cached in "
          f"{cache_dir() / precision.CACHE_FILE})")
    print(f"\n| model | fp32 s/batch | bf16 s/batch | bf16 / fp32 | batch {args.batch_size}, "
          f"{args.image_size} px |")
    print("|---|---|---|---|---|")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size,
                    generator=generator).to(device, memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch_size,), generator=generator).to(device)
    for name in args.models:
        torch.manual_seed(0)
        model = models.build(name, 10, args.image_size).to(device,
                                                          memory_format=torch.channels_last)
        seconds = step_seconds(model.train(), x, y, args.repeats)
        print(f"| {name} | {seconds['fp32']:.3f} | {seconds['bf16']:.3f} | "
              f"{seconds['bf16'] / seconds['fp32']:.2f}x | |", flush=True)


if __name__ == "__main__":
    main()
