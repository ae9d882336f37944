"""Batch-wise augmentation and normalisation on tensors, on the trial's device (no PIL)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


class BatchTransform:
    """uint8 (B,3,H,W) -> normalised float; in training: pad + random crop, optional h-flip.

    Random numbers come from a CPU generator, so a seed gives the same crops on any device.
    """

    def __init__(self, mean, std, flip: bool, pad: int, device: torch.device,
                 channels_last: bool = False):
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1)
        self.flip, self.pad, self.device = flip, pad, device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None):
        x = x.to(self.device, non_blocking=True)
        if generator is not None:
            x = self._augment(x, generator)
        x = x.float().div_(255).sub_(self.mean).div_(self.std)
        return x.contiguous(memory_format=self.memory_format)

    def _augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, _, h, w = x.shape
        if self.pad:
            padded = F.pad(x, (self.pad,) * 4)
            dy = torch.randint(0, 2 * self.pad + 1, (b,), generator=generator).to(x.device)
            dx = torch.randint(0, 2 * self.pad + 1, (b,), generator=generator).to(x.device)
            rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (B,H,1)
            cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (B,1,W)
            batch = torch.arange(b, device=x.device)[:, None, None]
            x = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
        if self.flip:
            flips = (torch.rand(b, generator=generator) < 0.5).to(x.device)
            x = torch.where(flips[:, None, None, None], x.flip(3), x)
        return x
