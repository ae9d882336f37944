"""Linear probe: the new classifier head of a pre-trained model, fitted by logistic regression
on the model's frozen features of the training split, before fine-tuning starts (LP-FT: Kumar
et al., "Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution",
ICLR 2022).

A randomly initialised head sends large, random gradients into the pre-trained features in the
first steps; a fitted one starts fine-tuning from the best linear read-out of them. The fit is
scikit-learn's multinomial ``LogisticRegression`` on standardised features (L2, ``C``), folded
back into the head's weight and bias, so the model computes exactly the probe's logits.

The fit is deterministic (lbfgs), so it is remembered per process: a trial whose model (all
but the head), training images and transform are byte for byte those of an earlier one gets
the same head without refitting (the search's trials of one study share them; ~4 s saved per
VGG16 trial on a CPU core).
"""
from __future__ import annotations

import hashlib
import time
import warnings

import numpy as np
import torch
from torch import nn

from .. import models
from ..data.augment import BatchTransform
from ..data.datasets import Split
from .loop import autocast

__all__ = ["fit_head"]

C = 1.0  # inverse L2 strength on standardised features (scikit-learn's default)
MAX_ITER = 200  # lbfgs iterations: the head is a starting point, so an unconverged fit (on
# the embedded default lbfgs stops at the cap) is kept without scikit-learn's warning
CHUNK = 256  # images per forward pass
_FITTED: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = {}  # digest -> weight, bias, acc
_REMEMBERED = 4  # fits kept per process (one per study and source, in practice)


@torch.no_grad()
def features(model: nn.Module, split: Split, transform: BatchTransform) -> np.ndarray:
    """The inputs of the classifier head for every image of ``split`` (eval mode, no
    augmentation, the transform's precision), as float64 (n, d)."""
    head = models.classifier(model)
    out: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda m, args, o: out.append(args[0].detach().float()))
    training = model.training
    model.eval()
    model.to(memory_format=transform.memory_format)
    try:
        for i in range(0, len(split), CHUNK):
            with autocast(transform.device, transform.precision):
                model(transform(split.x[i:i + CHUNK]))
    finally:
        hook.remove()
        model.train(training)
    return torch.cat(out).flatten(1).cpu().double().numpy()


def digest(model: nn.Module, train: Split, transform: BatchTransform) -> str:
    """What the fit depends on: every tensor of the model but the head's (and the head's
    shape), the training images and labels, the transform and the fit's settings."""
    head = models.classifier(model)
    skip = {id(p) for p in head.parameters()}
    h = hashlib.sha256(repr((type(model).__name__, tuple(head.weight.shape), C, MAX_ITER,
                             transform.precision, transform.device.type,
                             transform.memory_format)).encode())
    tensors = [(k, v) for k, v in model.state_dict(keep_vars=True).items() if id(v) not in skip]
    tensors += [("x", train.x), ("y", train.y), ("mean", transform.mean),
                ("std", transform.std)]
    for name, t in tensors:
        t = torch.as_tensor(t).detach().cpu().contiguous()
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def fit_head(model: nn.Module, train: Split, transform: BatchTransform) -> dict:
    """Set ``model``'s classifier head to the logistic-regression probe of its features on
    ``train``; returns what the probe measured (train accuracy, seconds, whether this process
    had fitted it already)."""
    started = time.perf_counter()
    head = models.classifier(model)
    key = digest(model, train, transform)
    if key not in _FITTED:
        if len(_FITTED) >= _REMEMBERED:
            _FITTED.pop(next(iter(_FITTED)))
        _FITTED[key] = _fit(model, train, transform)
        cached = False
    else:
        cached = True
    weight, bias, accuracy = _FITTED[key]
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    return {"head_init": "probe", "probe_train_acc": accuracy, "probe_cached": cached,
            "probe_seconds": round(time.perf_counter() - started, 1)}


def _fit(model: nn.Module, train: Split, transform: BatchTransform):
    """(head weight, head bias, train accuracy) of the probe of ``model``'s features."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = features(model, train, transform), train.y.numpy()
    scaler = StandardScaler().fit(x)
    probe = LogisticRegression(C=C, max_iter=MAX_ITER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(scaler.transform(x), y)
    coef, intercept = probe.coef_, probe.intercept_
    if len(probe.classes_) == 2:  # one logit (class 1 vs 0): as two, class 0's at zero
        coef, intercept = np.vstack([0 * coef, coef]), np.concatenate([0 * intercept, intercept])
    # the probe on raw features: logits = x @ w.T + b
    w = coef / np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    b = intercept - w @ scaler.mean_
    head = models.classifier(model)
    weight = np.zeros(tuple(head.weight.shape))
    # a class absent from `train` gets a constant logit below every one the probe gives there
    bias = np.full(head.bias.shape[0], (x @ w.T + b).min() - 1.0)
    weight[probe.classes_], bias[probe.classes_] = w, b
    return (torch.as_tensor(weight, dtype=head.weight.dtype),
            torch.as_tensor(bias, dtype=head.bias.dtype),
            float(probe.score(scaler.transform(x), y)))
