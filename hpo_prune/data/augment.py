"""Batch-wise augmentation and normalisation on tensors, on the trial's device (no PIL)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


class BatchTransform:
    """uint8 (B,3,H,W) -> normalised float; in training: pad + random crop, optional h-flip.

    Random numbers come from a CPU generator, so a seed gives the same crops on any device.
    ``memory_format`` and ``precision`` ('fp32', or 'bf16' autocast) say how the model consumes
    the batches: the training loop and the evaluation run the model in them.
    """

    def __init__(self, mean, std, flip: bool, pad: int, device: torch.device,
                 channels_last: bool = False, precision: str = "fp32"):
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1)
        self.flip, self.pad, self.device = flip, pad, device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.precision = precision

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None):
        x = to_device(x, self.device)
        if generator is not None:
            x = self._augment(x, generator)
        x = x.float().div_(255).sub_(self.mean).div_(self.std)
        return x.contiguous(memory_format=self.memory_format)

    def _augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, c, h, w = x.shape
        if self.pad:
            padded = F.pad(x, (self.pad,) * 4)
            span = 2 * self.pad + 1
            dy = to_device(torch.randint(0, span, (b,), generator=generator), x.device)
            dx = to_device(torch.randint(0, span, (b,), generator=generator), x.device)
            rows = dy[:, None, None] + torch.arange(h, device=x.device)[:, None]  # (B,H,1)
            cols = dx[:, None, None] + torch.arange(w, device=x.device)  # (B,1,W)
            # one gather of each crop's pixels by their flat index in the padded image
            flat = (rows * (w + 2 * self.pad) + cols).view(b, 1, h * w).expand(b, c, h * w)
            x = padded.view(b, c, -1).gather(2, flat).view(b, c, h, w)
        if self.flip:
            flips = to_device(torch.rand(b, generator=generator) < 0.5, x.device)
            x = torch.where(flips[:, None, None, None], x.flip(3), x)
        return x


def to_device(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy to the device without a blocking copy (which would wait for a GPU's queue)."""
    return values.to(device, non_blocking=True)
