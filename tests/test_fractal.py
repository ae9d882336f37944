"""The fractal corpus generator: determinism, valid systems, variation, separability, speed."""
import time

import numpy as np
import pytest
import torch

from hpo_prune.data import fractal
from hpo_prune.errors import UsageError


def test_same_settings_give_the_same_bytes_and_other_seeds_differ():
    a = fractal.render(4, 6, 32, seed=3)
    b = fractal.render(4, 6, 32, seed=3)
    c = fractal.render(4, 6, 32, seed=4)
    assert a.x.shape == (24, 3, 32, 32) and a.x.dtype == torch.uint8
    assert a.y.dtype == torch.int64
    assert a.y.tolist() == [c for c in range(4) for _ in range(6)]  # class-major
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)


def test_first_systems_do_not_depend_on_the_number_of_classes():
    few, many = fractal.sample_systems(3, seed=0), fractal.sample_systems(6, seed=0)
    for s, t in zip(few, many[:3]):
        assert np.array_equal(s.A, t.A) and np.array_equal(s.b, t.b)


def test_systems_meet_the_sigma_factor_criterion_and_are_not_degenerate():
    probe = np.random.default_rng(0)
    for system in fractal.sample_systems(12, seed=5):
        n = len(system.p)
        assert 2 <= n <= fractal.MAX_MAPS
        sv = np.linalg.svd(system.A, compute_uv=False)  # (n, 2), descending
        assert np.all(sv <= 1 + 1e-9)  # every map is contractive
        alpha = (sv[:, 0] + 2 * sv[:, 1]).sum()
        assert (5 + n) / 2 - 1e-9 <= alpha <= (6 + n) / 2 + 1e-9
        assert np.allclose(system.s1, sv[:, 0])
        assert system.p.sum() == pytest.approx(1.0) and np.all(system.p > 0)
        assert fractal.fill_rate(system, probe) >= fractal.MIN_FILL * 0.8  # re-rendered


def test_images_vary_within_a_class_and_come_in_grey_and_colour():
    corpus = fractal.render(3, 20, 32, seed=1)
    x = corpus.x.float()
    first = x[:20]
    assert (first[1:] - first[0]).abs().amax(dim=(1, 2, 3)).min() > 0  # no two alike
    spread = x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))
    assert spread.min() > 100  # a bright figure on a dark ground in every image
    grey = (x.amax(1) - x.amin(1)).amax(dim=(1, 2)) <= 1  # R == G == B up to rounding
    assert 0 < grey.sum() < len(grey)
    # the figure moves and is scaled: its centre of mass varies within a class
    mass = x.mean(1)[:20] - x.mean(1)[:20].amin(dim=(1, 2), keepdim=True)
    cols = (mass.sum(1) * torch.arange(32)).sum(1) / mass.sum(dim=(1, 2))
    assert cols.std() > 1.0


def test_a_linear_classifier_tells_the_classes_apart():
    """Logistic regression on translation- and mirror-invariant features (the magnitude of
    the 2-D Fourier transform of the grey image) beats chance (0.2) by far."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    corpus = fractal.render(5, 40, 16, seed=1)
    grey = corpus.x.float().mean(1).numpy() / 255
    grey -= grey.mean(axis=(1, 2), keepdims=True)
    spectrum = np.log1p(np.abs(np.fft.fft2(grey)))
    spectrum = spectrum + spectrum[:, ::-1] + spectrum[:, :, ::-1] + spectrum[:, ::-1, ::-1]
    features, y = spectrum.reshape(len(grey), -1), corpus.y.numpy()
    train = np.arange(len(y)) % 4 != 0
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    clf.fit(features[train], y[train])
    assert clf.score(features[~train], y[~train]) >= 0.7


def test_thousands_of_images_render_in_seconds():
    started = time.perf_counter()
    corpus = fractal.render(10, 200, 32, seed=0)
    seconds = time.perf_counter() - started
    assert len(corpus) == 2000
    assert seconds < 30  # about 1-3 s on a 2-core laptop CPU; generous for a shared machine


@pytest.mark.parametrize("classes, per_class, size", [(0, 5, 32), (1, 5, 32), (3, 0, 32),
                                                       (3, 5, 4)])
def test_impossible_corpora_are_usage_errors(classes, per_class, size):
    with pytest.raises(UsageError):
        fractal.render(classes, per_class, size)
