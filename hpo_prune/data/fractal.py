"""FractalDB-style corpus: images rendered from random iterated function systems (IFS).

Formula-driven supervised pre-training (Kataoka et al., ACCV 2020) needs no natural images:
each class is one random IFS, a set of 2-4 affine maps ``x -> A x + b``, and its images are
renderings of the system's attractor. Systems are sampled the way Anderson & Farrell
("Improving Fractal Pre-training", WACV 2022) filter FractalDB's degenerate ones: the
singular values of the maps satisfy the sigma-factor criterion
``sum_i (s1_i + 2 s2_i) = alpha`` with ``alpha ~ U[(5+n)/2, (6+n)/2]`` (n maps), which rules
out attractors that collapse to points or dust; a system whose attractor still fills too
little of the image is rejected too. Every image varies its class's system (one map's
weight jittered), is mirrored at random, placed at a random position and scale, and drawn
in a random colour or grey on a dark background.

Rendering is a vectorised chaos game (numpy): many walkers per image, all images of a chunk
at once, at twice the target resolution and then box-filtered, so a few thousand 32x32
images take seconds on a CPU. The same settings give the same bytes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import check
from .datasets import Split

MAX_MAPS = 4
MIN_FILL = 0.08  # a class's plain rendering must cover at least this fraction of its box
JITTER = 0.2  # weight jitter: one map's parameters scaled by U[1 - JITTER, 1 + JITTER]
GREY = 0.5  # probability of a grey (instead of coloured) image
WALKERS, BURN_IN, STEPS = 96, 12, 24  # chaos game per image: WALKERS * STEPS points
CHUNK = 1024  # images rendered at once


@dataclass(frozen=True)
class System:
    """One IFS: ``A`` (n,2,2), ``b`` (n,2), map probabilities ``p`` (n,), proportional to
    ``|det A|``, and the largest singular value of each map ``s1`` (n,)."""
    A: np.ndarray
    b: np.ndarray
    p: np.ndarray
    s1: np.ndarray


def _singular_values(n: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) singular values with 1 >= s1 >= s2 >= 0 and sum(s1 + 2 s2) == alpha."""
    out = np.zeros((n, 2))
    left = alpha
    for i in range(n):
        rest = n - i - 1  # maps still to come, each contributing at most 3
        c = left if rest == 0 else rng.uniform(max(0.0, left - 3 * rest), min(3.0, left))
        s2 = rng.uniform(max(0.0, (c - 1) / 2), c / 3)
        out[i] = (c - 2 * s2, s2)
        left -= c
    return out


def _rotation(theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def sample_system(rng: np.random.Generator) -> System:
    """One random IFS that satisfies the sigma-factor criterion."""
    n = int(rng.integers(2, MAX_MAPS + 1))
    alpha = rng.uniform((5 + n) / 2, (6 + n) / 2)
    sv = _singular_values(n, alpha, rng)
    turn, tilt = rng.uniform(-np.pi, np.pi, (2, n))
    signs = rng.choice([-1.0, 1.0], (n, 2))
    A = _rotation(turn) @ (sv[:, :, None] * _rotation(tilt)) * signs[:, None, :]
    b = rng.uniform(-1, 1, (n, 2))
    det = np.abs(sv[:, 0] * sv[:, 1])
    return System(A, b, det / det.sum(), sv[:, 0])


def sample_systems(n_classes: int, seed: int) -> list[System]:
    """``n_classes`` non-degenerate systems; the first c are the same for any n_classes >= c."""
    rng = np.random.default_rng([seed, 0])
    probe = np.random.default_rng([seed, 1])
    systems: list[System] = []
    while len(systems) < n_classes:
        system = sample_system(rng)
        if fill_rate(system, probe) >= MIN_FILL:
            systems.append(system)
    return systems


def fill_rate(system: System, rng: np.random.Generator, size: int = 32) -> float:
    """Fraction of the attractor's bounding square that a plain rendering covers."""
    params = _pad([system], np.zeros(1, dtype=np.int64))
    mask = _chaos_game(*params, size, rng, place=False)
    return float((mask > 0.5).mean())


def _pad(systems: list[System], labels: np.ndarray):
    """Per-image arrays padded to MAX_MAPS maps (padding maps have probability 0)."""
    A = np.zeros((len(systems), MAX_MAPS, 2, 2))
    b = np.zeros((len(systems), MAX_MAPS, 2))
    p = np.zeros((len(systems), MAX_MAPS))
    s1 = np.ones((len(systems), MAX_MAPS))
    for i, s in enumerate(systems):
        n = len(s.p)
        A[i, :n], b[i, :n], p[i, :n], s1[i, :n] = s.A, s.b, s.p, s.s1
    return A[labels], b[labels], p[labels], s1[labels]


def _chaos_game(A, b, p, s1, size: int, rng: np.random.Generator, place: bool = True):
    """Coverage masks (B, size, size) in [0, 1] of the attractors of B per-image systems."""
    B = len(A)
    cum = np.cumsum(p, axis=1)
    cum[np.arange(B), (p > 0).sum(1) - 1] = 2.0  # no rounding step past the last real map
    cum[p == 0] = 2.0
    pts = rng.uniform(-1, 1, (B, WALKERS, 2))
    rows = np.arange(B)[:, None]
    trace = np.empty((STEPS, B, WALKERS, 2))
    for step in range(BURN_IN + STEPS):
        u = rng.random((B, WALKERS, 1))
        k = (u > cum[:, None, :]).sum(-1)  # (B, W) map index per walker
        pts = np.einsum("bwij,bwj->bwi", A[rows, k], pts) + b[rows, k]
        if step >= BURN_IN:
            trace[step - BURN_IN] = pts
    pts = trace.transpose(1, 0, 2, 3).reshape(B, -1, 2)
    lo, hi = pts.min(1, keepdims=True), pts.max(1, keepdims=True)
    extent = np.maximum((hi - lo).max(-1, keepdims=True), 1e-9)
    unit = (pts - lo) / extent  # in [0, 1], aspect ratio kept
    if place:  # random scale in [0.6, 1] of the image and a random position inside it
        scale = rng.uniform(0.6, 1.0, (B, 1, 1))
        span = (hi - lo) / extent * scale
        offset = rng.random((B, 1, 2)) * (1 - span)
        unit = unit * scale + offset
    fine = 2 * size  # render at twice the resolution, then box-filter
    ij = np.clip((unit * fine).astype(np.int64), 0, fine - 1)
    flat = (np.arange(B)[:, None] * fine + ij[..., 1]) * fine + ij[..., 0]
    hits = np.bincount(flat.ravel(), minlength=B * fine * fine) > 0
    hits = hits.reshape(B, size, 2, size, 2).astype(np.float32)
    return hits.mean(axis=(2, 4))


def _variations(systems: list[System], labels: np.ndarray, rng: np.random.Generator):
    """Per-image parameters: one map's weight jittered (kept contractive), random mirroring."""
    A, b, p, s1 = _pad(systems, labels)
    B = len(labels)
    n_maps = np.array([len(s.p) for s in systems])[labels]
    which = (rng.random(B) * n_maps).astype(np.int64)
    top = np.minimum(1 + JITTER, 0.999 / s1[np.arange(B), which])
    weight = rng.uniform(1 - JITTER, top)
    A[np.arange(B), which] *= weight[:, None, None]
    b[np.arange(B), which] *= weight[:, None]
    mirror = rng.choice([-1.0, 1.0], (B, 1, 2))  # conjugating by a flip mirrors the attractor
    A = A * mirror[..., :, None] * mirror[..., None, :]
    b = b * mirror
    return A, b, p, s1


def _colours(B: int, rng: np.random.Generator):
    """Foreground and background colours (B, 3) in [0, 1]: grey or coloured, on dark."""
    grey = rng.random(B) < GREY
    fg = rng.random((B, 3))
    fg = fg / fg.max(1, keepdims=True) * rng.uniform(0.7, 1.0, (B, 1))
    fg[grey] = rng.uniform(0.6, 1.0, (grey.sum(), 1))
    bg = rng.uniform(0.0, 0.25, (B, 3))
    bg[grey] = rng.uniform(0.0, 0.2, (grey.sum(), 1))
    return fg, bg


def render(n_classes: int, n_per_class: int, image_size: int = 32, seed: int = 0) -> Split:
    """The corpus: uint8 images (N, 3, S, S) and int64 labels, class-major order."""
    check(n_classes >= 2, f"a fractal corpus needs at least 2 classes, got {n_classes}")
    check(n_per_class >= 1, f"a fractal corpus needs at least 1 image per class, got "
          f"{n_per_class}")
    check(image_size >= 8, f"fractal images must be at least 8 px, got {image_size}")
    systems = sample_systems(n_classes, seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    rng = np.random.default_rng([seed, 2])
    images = np.empty((len(labels), 3, image_size, image_size), dtype=np.uint8)
    for start in range(0, len(labels), CHUNK):
        chunk = labels[start:start + CHUNK]
        mask = _chaos_game(*_variations(systems, chunk, rng), image_size, rng)
        fg, bg = _colours(len(chunk), rng)
        mask = mask[:, None]
        rgb = bg[:, :, None, None] * (1 - mask) + fg[:, :, None, None] * mask
        images[start:start + CHUNK] = np.rint(rgb * 255).astype(np.uint8)
    return Split(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)))
