"""srlib.method.toy against closed forms, brute force and a second implementation."""

import numpy as np
import pytest
import torch

from srlib.method import toy
from srlib.errors import SrlibError
from srlib.method.sde import SIGMA, marginal_std


def test_score_of_a_single_point_is_the_gaussian_score():
    x0 = np.array([[0.3, -0.7]])
    x_tilde = np.random.default_rng(0).normal(size=(50, 2))
    sigma = 0.4
    np.testing.assert_allclose(toy.score(x_tilde, x0, sigma), -(x_tilde - x0) / sigma**2, rtol=1e-12)


def test_posterior_mean_of_two_points_is_a_logistic_blend():
    a, b = np.array([-1.0, 0.0]), np.array([1.0, 0.5])
    x_tilde = np.random.default_rng(1).normal(size=(40, 2)) * 3  # far points test the stable softmax
    sigma = 0.3
    logit_a = (np.sum((x_tilde - b) ** 2, 1) - np.sum((x_tilde - a) ** 2, 1)) / (2 * sigma**2)
    w_a = 1 / (1 + np.exp(-np.clip(logit_a, -700, 700)))
    expected = w_a[:, None] * a + (1 - w_a)[:, None] * b
    np.testing.assert_allclose(toy.posterior_mean(x_tilde, np.stack([a, b]), sigma), expected, atol=1e-12)


def test_score_is_the_gradient_of_the_log_density():
    points = toy.wave().sample(300)
    x = np.random.default_rng(2).uniform(-1.5, 1.5, size=(20, 2))
    sigma, h = 0.2, 1e-5
    numeric = np.stack(
        [(toy.log_density(x + h * e, points, sigma) - toy.log_density(x - h * e, points, sigma)) / (2 * h)
         for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(toy.score(x, points, sigma), numeric, rtol=1e-5, atol=1e-6)


def test_log_density_integrates_to_one():
    points = toy.Circle().sample(64)
    gx, gy, grid = toy.grid(lim=2.5, n=301)
    cell = (gx[0, 1] - gx[0, 0]) ** 2
    assert np.exp(toy.log_density(grid, points, 0.2)).sum() * cell == pytest.approx(1.0, abs=1e-3)


def test_circle_projection_matches_the_generic_polyline_projection():
    circle = toy.Circle(radius=1.5, center=(0.2, -0.1))
    generic = toy.Curve(circle.fn, closed=True)  # same curve, projected by the nearest-segment search
    x = np.random.default_rng(3).uniform(-2.5, 2.5, size=(500, 2))
    x = x[np.linalg.norm(x - circle.center, axis=1) > 0.1]
    np.testing.assert_allclose(circle.project(x), generic.project(x), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(circle.project(x) - circle.center, axis=1), 1.5)


def test_wave_projection_matches_brute_force_over_a_dense_sampling():
    curve = toy.wave()
    dense = curve.fn(np.linspace(0, 1, 400_001))
    x = np.random.default_rng(4).uniform(-1.5, 1.5, size=(30, 2))
    brute = dense[np.argmin(((x[:, None, :] - dense[None]) ** 2).sum(-1), axis=1)]
    np.testing.assert_allclose(curve.distance(x), np.linalg.norm(x - brute, axis=1), atol=1e-5)


def test_curvature_and_arclength_of_a_circle_and_a_parabola():
    circle = toy.Circle(radius=2.0)
    s = np.linspace(0.1, circle.length - 0.1, 7)
    np.testing.assert_allclose(circle.curvature(s), 0.5, rtol=1e-5)
    np.testing.assert_allclose(circle.arclength(circle.at_arclength(s) * 1.3), s, atol=1e-6)
    # y = x^2 on [-1, 1]: curvature 2 / (1 + 4x^2)^1.5, vertex at arc length length/2
    parabola = toy.Curve(lambda t: np.stack([2 * np.asarray(t) - 1, (2 * np.asarray(t) - 1) ** 2], axis=-1))
    xs = np.array([-0.5, 0.0, 0.3])
    on = np.stack([xs, xs**2], axis=1)
    np.testing.assert_allclose(parabola.curvature(parabola.arclength(on)), 2 / (1 + 4 * xs**2) ** 1.5, rtol=1e-4)
    assert parabola.arclength(np.array([[0.0, 0.0]]))[0] == pytest.approx(parabola.length / 2, rel=1e-6)


def test_samples_are_on_the_curve_and_evenly_spaced():
    curve = toy.wave()
    pts = curve.sample(200)
    assert curve.distance(pts).max() < 1e-6
    steps = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    np.testing.assert_allclose(steps, curve.length / 199, rtol=1e-3)
    circle = toy.Circle()
    assert circle.length == pytest.approx(2 * np.pi, rel=1e-6)


def test_off_manifold_points_lie_at_the_requested_distance():
    for manifold in (toy.Circle(), toy.wave()):
        x = manifold.off_manifold(200, 0.15, rng=5)
        np.testing.assert_allclose(manifold.distance(x), 0.15, atol=1e-4)
        y = manifold.off_manifold(200, (0.1, 0.3), rng=6)
        d = manifold.distance(y)
        assert d.min() >= 0.1 - 1e-4 and d.max() <= 0.3 + 1e-4


def test_dense_cloud_posterior_mean_matches_the_von_mises_closed_form():
    circle = toy.Circle()
    cloud = circle.sample(4096)
    x = np.random.default_rng(7).uniform(-2, 2, size=(300, 2))
    for sigma in (0.05, 0.3, 1.0):
        np.testing.assert_allclose(toy.posterior_mean(x, cloud, sigma), circle.posterior_mean(x, sigma), atol=1e-7)


def test_posterior_mean_tends_to_the_projection_at_rate_sigma_squared():
    # von Mises: |E[x|x~] - P_M(x~)| = R (1 - I1/I0)(R r / sigma^2) ~ sigma^2 / (2 r) as sigma -> 0.
    circle = toy.Circle()
    x = np.array([[1.3, 0.0], [0.0, 0.6], [-0.9, 0.9]])
    r = np.linalg.norm(x, axis=1)
    for sigma in (0.02, 0.01):
        gap = np.linalg.norm(circle.posterior_mean(x, sigma) - circle.project(x), axis=1)
        np.testing.assert_allclose(gap, sigma**2 / (2 * r), rtol=0.05)


def test_restoration_error_near_a_straight_manifold_is_the_tangential_noise():
    # A long straight line: the score restores the normal part of the noise and leaves the
    # tangential part (Section 4.2): E|x - x^|^2 = sigma^2 on it, delta^2 + sigma^2 off it by delta.
    line = toy.Curve(lambda t: np.stack([4 * (np.asarray(t) - 0.5), np.zeros_like(t)], axis=-1))
    cloud = line.sample(4001)  # spacing 0.001, much finer than sigma; the ends are 40 sigma away
    sigma, delta = 0.05, 0.2
    on = np.zeros((4000, 2))
    off = np.tile([0.0, delta], (4000, 1))
    exact = lambda x_t: toy.score(x_t, cloud, sigma)  # noqa: E731
    assert toy.restoration_error(on, exact, sigma, n_draws=2, rng=8).mean() == pytest.approx(sigma**2, rel=0.05)
    assert toy.restoration_error(off, exact, sigma, n_draws=2, rng=9).mean() == pytest.approx(
        delta**2 + sigma**2, rel=0.05)


def test_bad_input_raises_one_line_errors():
    with pytest.raises(SrlibError, match=r"shape \(n, 2\)"):
        toy.score(np.zeros((3, 3)), np.zeros((2, 2)), 0.1)
    with pytest.raises(SrlibError, match="sigma must be positive"):
        toy.posterior_mean(np.zeros((1, 2)), np.zeros((2, 2)), 0.0)
    with pytest.raises(SrlibError, match="radius"):
        toy.Circle(radius=-1)


def test_mlp_output_is_the_raw_network_divided_by_sigma_k():
    model = toy.ToyScoreMLP(generator=torch.Generator().manual_seed(0))
    x, k = torch.randn(5, 2), torch.tensor([1e-3, 0.01, 0.1, 0.5, 1.0])
    std = marginal_std(k, SIGMA)[:, None]
    phase = torch.log(std) * model.freq * 2 * np.pi
    raw = model.net(torch.cat([x / torch.sqrt(1 + std**2), torch.sin(phase), torch.cos(phase)], 1))
    torch.testing.assert_close(model(x, k), raw / std)


def test_a_short_dsm_training_learns_the_exact_score_where_a_gaussian_fit_fails():
    circle = toy.Circle()
    cloud = circle.sample(500)
    torch.set_num_threads(1)
    model, losses = toy.train_toy_score(cloud, steps=1500, batch_size=256, seed=0, progress=False)
    assert np.isfinite(losses).all()
    k = 0.05
    std = marginal_std(k, SIGMA)
    x_tilde = cloud[::5] + std * np.random.default_rng(10).standard_normal((100, 2))
    exact = toy.score(x_tilde, cloud, std)
    gaussian = -x_tilde / (std**2 + 0.5)  # the score of the best Gaussian fit to the circle's points
    relative = lambda s: np.sum((s - exact) ** 2) / np.sum(exact**2)  # noqa: E731
    assert relative(gaussian) > 0.5  # the ring is far from Gaussian at this noise level
    assert relative(model.score_at(x_tilde, k)) < 0.1
