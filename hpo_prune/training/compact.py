"""Compact tensors: a mostly-zero tensor stored as a packed bit mask of its nonzero entries plus
those entries' values, so that a weight-pruned model's file shrinks with its density.

``encode(state)`` splits a state dict into the tensors kept as they are and the compact ones;
``decode(dense, compact)`` gives the state dict back, bit for bit (a stored zero comes back as
+0.0). A tensor is stored compact when that is smaller: for float32 at densities below
1 - 1/32 (~97%), since its mask costs one bit per entry and each kept value its own bytes.
Only weights (tensors of 2 or more dimensions, of at least MIN_NUMEL entries) are candidates,
so a dense or filter-pruned model encodes to its plain state dict. Everything is plain
tensors, ints and lists, so it loads with ``torch.load(..., weights_only=True)``.

One compact entry: ``{"shape": [..], "mask": uint8 tensor (ceil(numel / 8) bytes, most
significant bit first, entries in row-major order), "values": 1-d tensor of the nonzero
entries in the same order}``.
"""
from __future__ import annotations

import torch

MIN_NUMEL = 256  # smaller tensors are not worth an entry of their own
_BITS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """A bool tensor as uint8 bytes, 8 entries a byte (the last one padded with zeros)."""
    flat = mask.reshape(-1).to(torch.uint8)
    flat = torch.cat([flat, flat.new_zeros((-flat.numel()) % 8)])
    return (flat.view(-1, 8) * _BITS).sum(dim=1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, numel: int) -> torch.Tensor:
    """The first ``numel`` entries of ``pack_bits``'s output, as a flat bool tensor."""
    bits = packed.reshape(-1, 1).bitwise_and(_BITS).ne(0)
    return bits.reshape(-1)[:numel]


def _worth_it(tensor: torch.Tensor) -> bool:
    if not tensor.is_floating_point() or tensor.dim() < 2 or tensor.numel() < MIN_NUMEL:
        return False  # only weight matrices and kernels (what weight pruning zeros)
    nonzero = int(torch.count_nonzero(tensor))
    compact = nonzero * tensor.element_size() + (tensor.numel() + 7) // 8
    return compact < tensor.numel() * tensor.element_size()


def encode(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """``(dense, compact)``: the tensors of ``state`` (on the CPU) kept as they are, and the
    ones stored as mask + values."""
    dense, compact = {}, {}
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        if _worth_it(tensor):
            mask = tensor.ne(0)
            compact[name] = {"shape": list(tensor.shape), "mask": pack_bits(mask),
                             "values": tensor[mask].clone()}
        else:
            dense[name] = tensor
    return dense, compact


def decode(dense: dict[str, torch.Tensor], compact: dict[str, dict]) -> dict[str, torch.Tensor]:
    """The state dict ``encode`` split; ValueError naming the entry when one is inconsistent
    (a mask of the wrong length, more or fewer values than set bits)."""
    state = dict(dense)
    for name, entry in compact.items():
        shape = [int(s) for s in entry["shape"]]
        values, packed = entry["values"], entry["mask"]
        numel = 1
        for s in shape:
            numel *= s
        if packed.dtype != torch.uint8 or packed.numel() != (numel + 7) // 8:
            raise ValueError(f"compact tensor {name}: a mask of {packed.numel()} bytes does "
                             f"not fit shape {shape}")
        mask = unpack_bits(packed, numel)
        if int(mask.sum()) != values.numel():
            raise ValueError(f"compact tensor {name}: {values.numel()} values for "
                             f"{int(mask.sum())} set bits")
        full = values.new_zeros(numel)
        full[mask] = values.reshape(-1)
        state[name] = full.reshape(shape)
    return state

