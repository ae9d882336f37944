"""Honest counts of a whole model: parameters (total and nonzero) and multiply-accumulates.

MACs are those of the convolution and linear layers (BatchNorm, activations, pooling and
additions are left out, as in ShrinkBench; they are well under 1% on these networks), per
image of ``input_shape``. ``macs`` scales each layer's MACs by the density (nonzero fraction)
of its weight, as ShrinkBench does for unstructured pruning; ``macs_dense`` does not. A
physically pruned model is counted as it is, so both equal its own MACs.
"""
from __future__ import annotations

import torch
from torch import nn

from .groups import example_input


@torch.no_grad()
def count(model: nn.Module, input_shape) -> dict:
    """``{"params_total", "params_nonzero", "macs", "macs_dense"}`` of the whole ``model``
    for inputs of ``input_shape`` (N, C, H, W); MACs are per image. Runs one forward pass
    in eval mode and restores the model's mode."""
    macs = {"macs": 0.0, "macs_dense": 0}

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            per_output = (module.in_channels // module.groups) * module.kernel_size[0] \
                * module.kernel_size[1]
        else:
            per_output = module.in_features
        dense = output.numel() // output.shape[0] * per_output
        density = int(module.weight.count_nonzero()) / module.weight.numel()
        macs["macs_dense"] += dense
        macs["macs"] += dense * density

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    training = model.training
    try:
        model.eval()
        model(example_input(model, input_shape))
    finally:
        model.train(training)
        for h in handles:
            h.remove()
    params = list(model.parameters())
    return {"params_total": sum(p.numel() for p in params),
            "params_nonzero": sum(int(p.count_nonzero()) for p in params),
            "macs": int(round(macs["macs"])), "macs_dense": int(macs["macs_dense"])}
