"""Algorithm 1 against direct computations: draws, resizing, the mean filter, scores."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from srlib.errors import SrlibError
from srlib.method.restoration import anomaly_map, image_scores, restoration_error
from srlib.method.sde import VESDE, marginal_std
from srlib.method.unet import ScoreUNet


def one_image_one_draw_at_a_time(model, x, noise, k):
    """The definition, image by image and draw by draw."""
    std = model.sde.marginal_std(torch.tensor([k]))
    maps = []
    for i in range(x.shape[0]):
        total = 0.0
        for eps in noise[:, i:i + 1]:
            n = eps * std
            with torch.no_grad():
                r = model(x[i:i + 1] + n, torch.tensor([k])) * std**2 + n
            total = total + (r**2).mean(dim=1, keepdim=True)
        maps.append(total / noise.shape[0])
    return torch.cat(maps)


@pytest.fixture(scope="module")
def small_net():
    torch.manual_seed(0)
    return ScoreUNet(width=16).eval()


def test_batched_draws_equal_one_at_a_time(small_net):
    x = torch.randn(2, 3, 40, 36)
    noise = torch.randn(3, *x.shape)
    expected = one_image_one_draw_at_a_time(small_net, x, noise, 1e-3)
    for batch_size in (1, 2, 3):
        maps = restoration_error(small_net, x, noise=noise, batch_size=batch_size)
        assert maps.shape == (2, 1, 40, 36)
        torch.testing.assert_close(maps, expected, rtol=1e-5, atol=1e-9)


def test_drawn_noise_does_not_depend_on_the_batch_size(small_net):
    x = torch.randn(1, 3, 32, 32)
    maps = [restoration_error(small_net, x, k=0.01, n_draws=3, batch_size=b,
                              generator=torch.Generator().manual_seed(5)) for b in (1, 3)]
    torch.testing.assert_close(maps[0], maps[1], rtol=1e-5, atol=1e-9)
    noise = torch.randn(3, *x.shape, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(maps[0], restoration_error(small_net, x, k=0.01, noise=noise))


def test_a_channels_last_model_gives_the_same_map():
    torch.manual_seed(1)
    model = ScoreUNet(width=16).eval()
    x = torch.randn(2, 3, 24, 24)
    noise = torch.randn(3, *x.shape)
    plain = restoration_error(model, x, noise=noise)
    model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(restoration_error(model, x, noise=noise, batch_size=3), plain,
                               rtol=1e-4, atol=1e-8)


def test_the_exact_score_of_a_point_restores_it_exactly():
    # For data concentrated at x0 the score is (x0 - x~)/sigma_k^2: every perturbation is undone
    # and the error is the squared distance to x0, whatever the noise.
    x0 = torch.randn(1, 3, 16, 16, dtype=torch.float64)

    for sigma in (25.0, 4.0):  # the restoration error reads the model's schedule
        def point_score(x_tilde, k):
            return (x0 - x_tilde) / marginal_std(k, sigma)[:, None, None, None] ** 2

        point_score.sde = VESDE(sigma)
        x = torch.cat([x0, x0 + 0.5 * torch.randn_like(x0)])
        maps = restoration_error(point_score, x, n_draws=4, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(maps, ((x0 - x) ** 2).mean(dim=1, keepdim=True), rtol=1e-7, atol=1e-12)


def test_a_model_without_a_schedule_is_refused():
    with pytest.raises(SrlibError, match="has no .sde"):
        restoration_error(lambda x, k: x, torch.zeros(1, 3, 16, 16), n_draws=1)


def test_wrong_noise_shape_is_refused(small_net):
    with pytest.raises(ValueError, match="expected"):
        restoration_error(small_net, torch.zeros(1, 3, 16, 16), noise=torch.zeros(2, 1, 3, 16, 16))


@pytest.mark.parametrize("kernel", [1, 5, 31])
def test_mean_filter_counts_zero_padding(kernel):
    raw = torch.rand(2, 1, 40, 33, dtype=torch.float64)
    ours = anomaly_map(raw, out_size=(40, 33), kernel=kernel)  # same size: resizing is the identity
    window_sum = np.stack([ndimage.correlate(m, np.ones((kernel, kernel)), mode="constant", cval=0.0)
                           for m in raw[:, 0].numpy()])
    np.testing.assert_allclose(ours[:, 0].numpy(), window_sum / kernel**2, rtol=1e-10)


def half_pixel_bilinear(n_in, n_out):
    """Interpolation matrix for align_corners=False: output centres mapped onto input centres."""
    positions = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    return np.stack([np.interp(positions, np.arange(n_in), np.eye(n_in)[j]) for j in range(n_in)], axis=1)


def test_bilinear_resize_is_half_pixel_aligned():
    raw = torch.rand(1, 1, 12, 9, dtype=torch.float64)
    ours = anomaly_map(raw, out_size=(16, 20), kernel=1)[0, 0].numpy()
    expected = half_pixel_bilinear(12, 16) @ raw[0, 0].numpy() @ half_pixel_bilinear(9, 20).T
    np.testing.assert_allclose(ours, expected, atol=1e-12)


def lanczos3(t):
    t = np.abs(t)
    return np.where(t < 3, np.sinc(t) * np.sinc(t / 3), 0.0)


def antialiased_lanczos_matrix(n_in, n_out):
    """Lanczos-3 resampling matrix: kernel stretched when shrinking, weights renormalised at the edges."""
    scale = n_in / n_out
    stretch = max(scale, 1.0)
    matrix = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = (i + 0.5) * scale
        lo = max(int(centre - 3 * stretch + 0.5), 0)
        hi = min(int(centre + 3 * stretch + 0.5), n_in)
        taps = np.arange(lo, hi)
        weights = lanczos3((taps - centre + 0.5) / stretch)
        matrix[i, lo:hi] = weights / weights.sum()
    return matrix


@pytest.mark.parametrize("out_size", [(32, 24), (8, 10)])
def test_lanczos_resize(out_size):
    raw = torch.rand(2, 1, 12, 15)
    ours = anomaly_map(raw, out_size=out_size, resize="lanczos", kernel=1)
    assert ours.shape == (2, 1, *out_size) and ours.dtype == raw.dtype
    rows, cols = antialiased_lanczos_matrix(12, out_size[0]), antialiased_lanczos_matrix(15, out_size[1])
    for ours_map, raw_map in zip(ours[:, 0].numpy(), raw[:, 0].double().numpy()):
        np.testing.assert_allclose(ours_map, rows @ raw_map @ cols.T, atol=1e-5)


def test_bad_resize_or_kernel_is_refused():
    raw = torch.rand(1, 1, 8, 8)
    with pytest.raises(SrlibError, match="'nearest'"):
        anomaly_map(raw, resize="nearest")
    with pytest.raises(SrlibError, match="kernel 4"):
        anomaly_map(raw, kernel=4)


def test_image_scores_are_the_maxima():
    maps = torch.rand(5, 1, 7, 6)
    expected = [max(maps[i].flatten().tolist()) for i in range(5)]
    assert image_scores(maps).tolist() == expected


def test_default_pipeline_shapes():
    raw = torch.rand(3, 1, 192, 192)
    maps = anomaly_map(raw)
    assert maps.shape == (3, 1, 256, 256)
    # The zero padding damps the corner: only a quarter of its window is inside the image.
    corner_window = anomaly_map(raw, kernel=1)[:, 0, :16, :16].sum(dim=(1, 2)) / 31**2
    torch.testing.assert_close(maps[:, 0, 0, 0], corner_window)
    assert math.isclose(16 * 16 / 31**2, 0.2664, abs_tol=1e-4)
