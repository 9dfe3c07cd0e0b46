"""The noise schedule and the DSM loss against closed forms and hand computations."""

import math

import numpy as np
import pytest
import torch

from srlib.errors import SrlibError
from srlib.method.sde import SIGMA, VESDE, dsm_loss, marginal_std

LN25 = math.log(25.0)


def sigma_k_expm1(k, sigma=25.0):
    """sigma_k through expm1: the same closed form, free of cancellation at small k."""
    return math.sqrt(math.expm1(2 * k * math.log(sigma)) / (2 * math.log(sigma)))


@pytest.mark.parametrize("k", [1e-5, 1e-3, 0.1, 0.5, 1.0])
def test_marginal_std_matches_closed_form(k):
    assert marginal_std(k, SIGMA) == pytest.approx(sigma_k_expm1(k), rel=1e-9)
    as_tensor = VESDE().marginal_std(torch.tensor([k], dtype=torch.float64)).item()
    assert as_tensor == pytest.approx(sigma_k_expm1(k), rel=1e-9)


def test_marginal_std_at_the_papers_k():
    assert SIGMA == 25.0  # Section 4.3
    assert abs(VESDE().marginal_std(1e-3) - 0.031674) < 5e-7
    assert VESDE().marginal_std(1.0) == pytest.approx(math.sqrt(624 / (2 * LN25)))
    assert VESDE(9.0).marginal_std(0.5) == pytest.approx(math.sqrt(8 / (2 * math.log(9.0))))


def test_marginal_std_keeps_tensor_dtype_and_shape():
    k = torch.tensor([[1e-3, 0.5]], dtype=torch.float32)
    std = VESDE().marginal_std(k)
    assert std.dtype == torch.float32 and std.shape == (1, 2)
    assert std[0, 1].item() == pytest.approx(sigma_k_expm1(0.5), rel=1e-6)


def test_perturb_adds_scaled_noise():
    x = torch.randn(3, 2, 4, 5)
    noise = torch.randn_like(x)
    k = torch.tensor([1e-3, 0.2, 0.9])
    x_tilde, used, std = VESDE().perturb(x, k, noise=noise)
    assert used is noise and std.shape == (3, 1, 1, 1)
    for i, ki in enumerate(k.tolist()):
        expected = x[i].double() + sigma_k_expm1(ki) * noise[i].double()
        torch.testing.assert_close(x_tilde[i].double(), expected, rtol=1e-5, atol=1e-5)
    _, _, std_float = VESDE().perturb(x, 0.2, noise=noise)
    torch.testing.assert_close(std_float.flatten(), torch.full((3,), sigma_k_expm1(0.2)), rtol=1e-5, atol=0)


class AffineScore(torch.nn.Module):
    """s(x, k) = a * x + b * k: tiny, with a gradient to check."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(-0.7))
        self.b = torch.nn.Parameter(torch.tensor(0.3))

    def forward(self, x, k):
        return self.a * x + self.b * k[:, None, None, None]


def test_dsm_loss_against_hand_computation():
    x = torch.randn(4, 3, 5, 6)
    model = AffineScore()
    loss = dsm_loss(model, x, VESDE(), generator=torch.Generator().manual_seed(11))

    # The same draws, in the authors' order: k for the batch first, then z.
    g = torch.Generator().manual_seed(11)
    eps = 1e-5
    k = (torch.rand(4, generator=g) * (1 - eps) + eps).double().numpy()
    z = torch.randn(x.shape, generator=g).double().numpy()
    xs = x.double().numpy()
    per_image = []
    for i in range(4):
        std = sigma_k_expm1(k[i])
        score = -0.7 * (xs[i] + std * z[i]) + 0.3 * k[i]
        per_image.append(np.sum((score * std + z[i]) ** 2))
    assert loss.item() == pytest.approx(np.mean(per_image), rel=1e-5)
    assert eps <= k.min() and k.max() < 1


def test_dsm_loss_vanishes_for_the_exact_denoiser():
    # s = (x - x_tilde) / sigma_k^2 is the conditional score: residual s*sigma_k + z = 0.
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)

    def exact(x_tilde, k):
        std = marginal_std(k, 4.0)[:, None, None, None]
        return (x - x_tilde) / std**2

    assert dsm_loss(exact, x, VESDE(4.0), generator=torch.Generator().manual_seed(0)).item() < 1e-18


@pytest.mark.parametrize("sigma", [1.0, 0.5, -3.0])
def test_a_schedule_base_of_at_most_one_is_refused(sigma):
    with pytest.raises(SrlibError, match="sigma must be greater than 1"):
        VESDE(sigma)
