"""The dsm criterion of k selection: held-out DSM losses per k against closed forms, and the Gaussian reference."""

import math

import numpy as np
import pytest
import torch

from srlib.method import kselect
from srlib.method.gaussian import StationaryGaussianScore
from srlib.method.sde import VESDE

KS = (1e-5, 1e-3, 1e-2, 1e-1, 0.5)


def sigma2(k: float, base: float = 25.0) -> float:
    """sigma_k^2 of the paper's schedule, written out here."""
    return (base ** (2 * k) - 1) / (2 * math.log(base))


class DiagonalGaussianScore(torch.nn.Module):
    """The exact score of N(0, diag(variances)) perturbed at time k: -x~ / (variance + sigma_k^2)."""

    def __init__(self, variances: torch.Tensor):
        super().__init__()
        self.register_buffer("variances", variances)
        self.sde = VESDE(25.0)

    def forward(self, x, k):
        s2 = self.sde.marginal_std(k)[:, None, None, None] ** 2
        return -x / (self.variances + s2)


def test_heldout_dsm_loss_of_the_exact_denoiser_is_the_closed_form():
    # For x ~ N(0, lambda) in each dimension, sigma_k s + z = (lambda z - sigma_k x) / (lambda + sigma_k^2),
    # whose mean square is lambda / (lambda + sigma_k^2): the loss per dimension is the mean of that.
    variances = torch.logspace(-5, 0, 48, dtype=torch.float64).reshape(3, 4, 4).float()
    images = torch.randn((3000, 3, 4, 4), generator=torch.Generator().manual_seed(0)) * variances.sqrt()
    losses = kselect.heldout_dsm_losses(DiagonalGaussianScore(variances), images, KS, n_draws=2, seed=1, batch_size=500)
    lam = variances.double().numpy().ravel()
    for k in KS:
        expected = np.mean(lam / (lam + sigma2(k)))
        assert losses[k] == pytest.approx(expected, rel=0.02), k
    assert losses[1e-5] > 0.5 > losses[0.5]  # most variances exceed the smallest noise, none the largest


def test_a_model_that_removes_nothing_scores_one():
    class Zero(torch.nn.Module):
        sde = VESDE(25.0)

        def forward(self, x, k):
            return torch.zeros_like(x)

    images = torch.rand((6, 3, 8, 8)) * 2 - 1
    losses = kselect.heldout_dsm_losses(Zero(), images, (1e-3, 0.1), n_draws=50, seed=0)
    assert losses == {1e-3: pytest.approx(1, abs=0.02), 0.1: pytest.approx(1, abs=0.02)}  # E z^2 = 1
    # The same unit noise at every k and for every model: the loss of a zero score is the same number.
    assert losses[1e-3] == pytest.approx(losses[0.1], abs=1e-12)


def stationary_samples(n: int, seed: int, size: int = 8):
    """x_c = sum_d h_cd (circular convolution) w_d + mean_c, w white: a stationary Gaussian with S(f) = H(f) H(f)^H."""
    rng = np.random.default_rng(0)
    kernels = np.zeros((2, 2, size, size))
    kernels[:, :, :3, :3] = rng.normal(0, 0.3, (2, 2, 3, 3))
    white = np.random.default_rng(seed).normal(size=(n, 2, size, size))
    freq = np.einsum("cdhw,ndhw->nchw", np.fft.fft2(kernels), np.fft.fft2(white))
    images = np.real(np.fft.ifft2(freq)) + np.array([0.1, -0.2])[None, :, None, None]
    transfer = np.fft.fft2(kernels).transpose(2, 3, 0, 1)  # (H, W, C, D)
    return torch.from_numpy(images).float(), transfer @ transfer.conj().swapaxes(-1, -2)


def test_gaussian_reference_has_the_closed_form_loss_of_the_true_spectrum():
    fit, spectrum = stationary_samples(4000, seed=1)
    reference = StationaryGaussianScore(fit)
    held, _ = stationary_samples(1000, seed=2)
    losses = kselect.heldout_dsm_losses(reference, held, KS, n_draws=2, seed=3, batch_size=250)
    eye = np.eye(2)
    for k in KS:
        # sum over f of tr(S (S + sigma^2 I)^-1), by numpy's inverse, per dimension
        expected = np.real(np.trace(spectrum @ np.linalg.inv(spectrum + sigma2(k) * eye), axis1=-2, axis2=-1)).sum() / 128
        assert reference.expected_dsm_loss(k) / 128 == pytest.approx(expected, rel=0.03), k
        assert losses[k] == pytest.approx(expected, rel=0.03), k
    # The Wiener filter of white data of variance v shrinks towards the mean by v / (v + sigma^2).
    white = torch.randn((4000, 1, 8, 8), generator=torch.Generator().manual_seed(4)) * 0.5 + 0.3
    x = torch.randn((2, 1, 8, 8), generator=torch.Generator().manual_seed(5))
    shrunk = StationaryGaussianScore(white).posterior_mean(x, 0.1)
    factor = 0.25 / (0.25 + sigma2(0.1))
    assert torch.allclose(shrunk, 0.3 + factor * (x - 0.3), atol=0.03)


def test_dsm_scores_and_choice_by_hand():
    losses = {1e-4: 1.2, 1e-3: 0.6, 1e-2: 0.3, 1e-1: 0.1}
    reference = {1e-4: 0.8, 1e-3: 0.6, 1e-2: 0.4, 1e-1: 0.05}
    scores = kselect.dsm_scores(losses, reference)
    assert [scores[k]["dsm_ratio"] for k in sorted(scores)] == pytest.approx([1.5, 1.0, 0.75, 2.0])
    assert scores[1e-2]["dsm"] == pytest.approx(-0.75) and scores[1e-2]["gaussian_dsm_loss"] == 0.4
    assert kselect.choose(scores, "dsm") == 1e-2  # where the model beats the Gaussian by the most
    flat = kselect.dsm_scores({1e-3: 0.5, 1e-2: 0.5}, {1e-3: 0.0, 1e-2: 1.0})  # a reference with no variance
    assert flat[1e-3]["dsm"] is None and kselect.choose(flat, "dsm") == 1e-2
    with pytest.raises(Exception, match="same k"):
        kselect.dsm_scores({1e-3: 1.0}, {1e-2: 1.0})
