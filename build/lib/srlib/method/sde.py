"""The variance-exploding noise schedule and the denoising score-matching loss.

Perturbation at time k in (0, 1] adds Gaussian noise of standard deviation
``sigma_k = sqrt((sigma**(2k) - 1) / (2 ln sigma))`` (Section 4.3 of the paper).
The formulas are evaluated literally, in the dtype of the input, because that
is what the authors' float32 code computed and we want their numbers.

One object owns the schedule's base ``sigma``: a :class:`VESDE`. The score
network carries it (``model.sde``), the training configuration saves it, and
the restoration error reads it from the model, as score_sde's SDE classes do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from srlib.errors import SrlibError
from srlib.method.constants import K_DRAWS, K_MIN
from srlib.method.constants import PAPER_SIGMA as SIGMA  # the paper's base (Section 4.3)


def marginal_std(k, sigma: float):
    """Standard deviation ``sigma_k`` of the noise at time ``k`` for the base ``sigma``.

    Parameters
    ----------
    k : float or torch.Tensor
        Time(s) in (0, 1].
    sigma : float
        The schedule's base (``SIGMA``, 25, in the paper).

    Returns
    -------
    float or torch.Tensor
        A float for a float ``k`` (computed in double precision), otherwise a
        tensor of ``k``'s shape and dtype.
    """
    if isinstance(k, torch.Tensor):
        return torch.sqrt((sigma ** (2 * k) - 1.0) / 2.0 / math.log(sigma))
    return math.sqrt((sigma ** (2 * k) - 1.0) / 2.0 / math.log(sigma))


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a (B,) tensor to broadcast over the non-batch dimensions of x."""
    return values.reshape(-1, *([1] * (x.dim() - 1)))


@dataclass(frozen=True)
class VESDE:
    """The variance-exploding SDE of the paper: the noise schedule and its base ``sigma``."""

    sigma: float = SIGMA

    def __post_init__(self) -> None:
        if not self.sigma > 1:
            raise SrlibError(f"sigma must be greater than 1 (ln sigma divides the variance), got {self.sigma}")

    def marginal_std(self, k):
        """``sigma_k`` at time(s) ``k`` (see :func:`marginal_std`)."""
        return marginal_std(k, self.sigma)

    def perturb(self, x: torch.Tensor, k, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None):
        """Add the time-``k`` noise to a batch: ``x + sigma_k * noise``.

        Parameters
        ----------
        x : torch.Tensor
            Batch of shape (B, ...).
        k : float or torch.Tensor
            One time for all, or a (B,) tensor of times.
        noise : torch.Tensor, optional
            Unit normals of x's shape; drawn (from ``generator``) when omitted.

        Returns
        -------
        x_tilde, noise, std : torch.Tensor
            The perturbed batch, the unit noise used, and ``sigma_k`` shaped
            (B, 1, ..., 1) so that it broadcasts against x.
        """
        if not isinstance(k, torch.Tensor):
            k = torch.full((x.shape[0],), float(k), dtype=x.dtype, device=x.device)
        std = _per_sample(self.marginal_std(k), x)
        if noise is None:
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return x + noise * std, noise, std


def draw_times(n: int, k_max: float = 1.0, draw: str = "uniform", eps: float = K_MIN,
               generator: torch.Generator | None = None, dtype=None, device=None) -> torch.Tensor:
    """Training times k in [eps, k_max], one per image.

    ``uniform`` is the authors' k ~ U(eps, k_max) (with k_max = 1, their
    ``rand * (1 - eps) + eps``, computed the same way); ``log-uniform`` gives
    every decade of k, and so of small sigma_k, the same share of the steps.
    """
    u = torch.rand(n, generator=generator, dtype=dtype, device=device)
    if draw == "uniform":
        return u * (k_max - eps) + eps
    if draw == "log-uniform":
        return torch.exp(math.log(eps) + u * (math.log(k_max) - math.log(eps)))
    raise SrlibError(f"unknown draw of k {draw!r}: choose one of {', '.join(K_DRAWS)}")


def time_share(a: float, b: float, k_max: float = 1.0, draw: str = "uniform", eps: float = K_MIN) -> float:
    """The share of training steps whose k falls in [a, b] under :func:`draw_times` (closed form)."""
    lo, hi = max(a, eps), min(b, k_max)
    if hi <= lo:
        return 0.0
    if draw == "uniform":
        return (hi - lo) / (k_max - eps)
    if draw == "log-uniform":
        return math.log(hi / lo) / math.log(k_max / eps)
    raise SrlibError(f"unknown draw of k {draw!r}: choose one of {', '.join(K_DRAWS)}")


def dsm_loss(model, x: torch.Tensor, sde: VESDE, eps: float = K_MIN,
             generator: torch.Generator | None = None, k_max: float = 1.0, draw: str = "uniform",
             k=None, per_image: bool = False) -> torch.Tensor:
    """Denoising score-matching loss of one batch, as the authors train.

    Draws k per image (:func:`draw_times`; the authors': k ~ U(eps, 1)), then
    unit noise z (in that order, so that a seeded run consumes random numbers
    as the authors' code does), and returns the batch mean of
    ``sum((model(x + sigma_k z, k) * sigma_k + z)**2)`` over all non-batch
    dimensions. ``sde`` is the model's schedule (``model.sde``; passed apart
    because ``model`` may be wrapped in DDP or ``torch.compile``). A model
    trained with ``k_max`` < 1 has never seen noise above ``sigma_{k_max}``.

    ``k`` given (a float, or one time per image): the loss at that noise
    level, nothing drawn but z (how :mod:`srlib.method.kselect` measures a
    model per k). ``per_image``: the (B,) sums instead of their mean.
    """
    if k is None:
        k = draw_times(x.shape[0], k_max, draw, eps, generator, x.dtype, x.device)
    elif not isinstance(k, torch.Tensor):
        k = torch.full((x.shape[0],), float(k), dtype=x.dtype, device=x.device)
    x_tilde, z, std = sde.perturb(x, k, generator=generator)
    residual = model(x_tilde, k) * std + z
    losses = residual.pow(2).sum(dim=tuple(range(1, x.dim())))
    return losses if per_image else losses.mean()
