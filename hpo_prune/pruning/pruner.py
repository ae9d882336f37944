"""The Pruner: drives masks through training according to a trial's PruneSettings.

``train_epoch`` calls ``before_step()`` and ``after_step()`` around every optimizer step.
Optimizer step ``s`` (0-based, of ``total_steps``) is inside the pruning window when
``round(prune_start * total_steps) <= s <= round(prune_end * total_steps)`` (the end clipped
to the last step). Inside it, masks are recomputed every ``prune_every`` steps and at its
last step, to the schedule's sparsity at the position of ``s`` in the window; the last
recomputation reaches the full target. Sparsity never decreases; after the window training
fine-tunes with the masks fixed. Masks are re-applied after every optimizer step, so
momentum and weight decay never revive a pruned weight. With ``rescale`` 'norm' each
recomputation then scales every layer's kept weights back to the Frobenius norm the layer had
before it (weight granularity).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .counting import count
from .layers import prunable_layers
from ..settings import PruneSettings
from .schedules import settings_of, sparsity_at
from .strategies import strategy


class Pruner:
    def __init__(self, model: nn.Module, settings: PruneSettings, total_steps: int,
                 input_shape, val_acc: Callable[[], float] | None = None, seed: int = 0,
                 name: str = "the model"):
        """``settings`` resolved (a criterion, not 'auto'); ``seed`` draws the 'random'
        criterion's scores; ``name`` is the model's, for errors."""
        if settings.criterion == "auto":
            raise ValueError("Pruner takes a resolved criterion (hpo_prune.resolution), not "
                             "'auto'")
        self.model, self.settings, self.input_shape = model, settings, tuple(input_shape)
        self.seed, self.val_acc = seed, val_acc
        self.prunable_params = sum(m.weight.numel() for _, m in prunable_layers(model))
        dense = count(model, self.input_shape)
        self.params_total, self.macs_dense = dense["params_total"], dense["macs_dense"]
        self.strategy = strategy(settings.granularity, model, self.input_shape, settings.norm,
                                 name)
        last = max(total_steps - 1, 0)
        self.end_step = min(round(settings.prune_end * total_steps), last)
        self.start_step = min(round(settings.prune_start * total_steps), self.end_step)
        self.step = 0
        self.target = 0.0  # sparsity the masks were last computed for
        self.val_acc_before_pruning: float | None = None
        self.keep = None  # weight: {name: bool mask}; filter: [bool per group channel]
        self.kept = self.prunable_params
        self.finished = False
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []

    # ------------------------------------------------------------------ training hooks
    def before_step(self) -> None:
        s = self.step
        self.step += 1
        if not self.start_step <= s <= self.end_step:
            return
        if s != self.end_step and (s - self.start_step) % self.settings.prune_every:
            return
        if self.val_acc_before_pruning is None and self.val_acc is not None:
            training = self.model.training
            self.val_acc_before_pruning = float(self.val_acc())
            self.model.train(training)
        span = self.end_step - self.start_step
        position = (s - self.start_step) / span if s < self.end_step else 1.0
        c = self.settings
        target = sparsity_at(c.schedule, position, c.prune_ratio, 0.0, 1.0, **settings_of(c))
        if target > self.target:
            self.prune_to(target)

    def after_step(self) -> None:
        with torch.no_grad():
            for param, mask in self._pairs:
                param.mul_(mask)

    def sparsity(self) -> float:
        """Achieved sparsity of the prunable weights now, in [0, 1]."""
        return 1 - self.kept / self.prunable_params

    # ------------------------------------------------------------------ masks
    def prune_to(self, target: float) -> None:
        """Recompute the masks for sparsity `target` now and apply them."""
        c = self.settings
        before = self._norms() if c.rescale == "norm" else None
        scores = self.strategy.scores(c.criterion, self.seed)
        self._set_keep(self.strategy.keep(scores, target, c.scope, self.keep))
        self.target = target
        self.after_step()
        if before is not None:
            self._rescale(before)

    @torch.no_grad()
    def _norms(self) -> dict[str, torch.Tensor]:
        return {name: w.detach().float().norm() for name, w in self.strategy.weights.items()}

    @torch.no_grad()
    def _rescale(self, before: dict[str, torch.Tensor]) -> None:
        """Each layer's kept weights times (its norm before the masks / after them)."""
        for name, w in self.strategy.weights.items():
            after = w.float().norm()
            if after > 0:
                w.mul_((before[name] / after).to(w.dtype))

    def _set_keep(self, keep) -> None:
        self.keep = keep
        params = dict(self.model.named_parameters())
        masks = self.strategy.masks(keep)
        self.kept = self.strategy.kept(keep, masks)
        self._pairs = [(params[name], mask) for name, mask in masks.items()]

    # ------------------------------------------------------------------ end of training
    def finish(self) -> nn.Module:
        """Filter granularity: remove the masked channels for real (the model shrinks in
        place). Weight granularity: the same model, zeros kept. Returns the model."""
        if self.strategy.physical and not self.finished and self.keep is not None:
            self.strategy.finish(self.keep)
            self._pairs = []
            physical = sum(m.weight.numel() for _, m in prunable_layers(self.model))
            if physical != self.kept:
                raise RuntimeError(f"pruned model has {physical} prunable weights but the masks "
                                   f"kept {self.kept}")
        self.finished = True
        return self.model

    def final_metrics(self) -> dict:
        counted = count(self.model, self.input_shape)
        physical = self.strategy.physical and self.finished
        left = {"filters_left_alone": self.strategy.left_alone} if self.strategy.physical else {}
        return {**left, "params_total": self.params_total,
                "params_remaining": counted["params_total"] if physical
                else counted["params_nonzero"],
                "prunable_params": self.prunable_params,
                "macs_dense": self.macs_dense,
                "macs_remaining": counted["macs_dense"] if physical else counted["macs"],
                "achieved_sparsity": self.sparsity(),
                "requested_sparsity": self.settings.prune_ratio,
                "val_acc_before_pruning": self.val_acc_before_pruning}

    # ------------------------------------------------------------------ resuming
    def state_dict(self) -> dict:
        keep = self.keep
        if isinstance(keep, dict):
            keep = {k: v.cpu() for k, v in keep.items()}
        return {"granularity": self.settings.granularity, "step": self.step,
                "target": self.target, "val_acc_before_pruning": self.val_acc_before_pruning,
                "keep": keep}

    def load_state_dict(self, state: dict) -> None:
        if state["granularity"] != self.settings.granularity:
            raise ValueError(f"pruner state is for {state['granularity']} pruning, this "
                             f"pruner does {self.settings.granularity}")
        self.step, self.target = int(state["step"]), float(state["target"])
        self.val_acc_before_pruning = state["val_acc_before_pruning"]
        if state["keep"] is not None:
            self._set_keep(state["keep"])
            self.after_step()


def unpruned_metrics(model: nn.Module, input_shape) -> dict:
    """The pruning entries of metrics.json for a trial without pruning (same counting)."""
    counted = count(model, input_shape)
    return {"params_total": counted["params_total"],
            "params_remaining": counted["params_total"],
            "prunable_params": sum(m.weight.numel() for _, m in prunable_layers(model)),
            "macs_dense": counted["macs_dense"], "macs_remaining": counted["macs_dense"],
            "achieved_sparsity": 0.0, "requested_sparsity": 0.0,
            "val_acc_before_pruning": None}
