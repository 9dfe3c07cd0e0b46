"""The exact score of a stationary Gaussian fitted to images: a reference denoiser with a closed-form loss.

Model normal images of C channels as a stationary Gaussian: a mean per
channel and, at every spatial frequency f of the (circular) image, a C x C
cross-channel spectral density S(f), estimated from images by their
orthonormal FFTs, ``S(f) = mean_n X_n(f) X_n(f)^H``. Its score at the noise
level sigma_k is exact: the posterior mean is the Wiener filter, applied per
frequency in the eigenbasis of S(f),

    E[x | x~] = mean + F^-1[ U diag(lambda / (lambda + sigma_k^2)) U^H F(x~ - mean) ],

and the score is ``(E[x | x~] - x~) / sigma_k^2`` (Eq. 2 of the paper). Under
that Gaussian its denoising score-matching loss (Eq. 4, summed over the
image as :func:`srlib.method.sde.dsm_loss` sums it) is, in closed form,

    E || sigma_k s(x~, k) + z ||^2 = sum over f and eigenvalues of lambda / (lambda + sigma_k^2):

the number of directions whose variance exceeds the noise's, counted
softly. It knows the images' mean and power spectrum and nothing else: no
edge, no shape, no texture beyond second-order statistics.
:mod:`srlib.method.kselect` holds a trained score model against it, noise
level by noise level.
"""

from __future__ import annotations

import torch

from srlib.errors import SrlibError
from srlib.method.sde import VESDE


class StationaryGaussianScore(torch.nn.Module):
    """The exact score of the stationary Gaussian fitted to ``images`` (N, C, H, W) in [-1, 1], as a score model.

    Called as a score network is, ``model(x, k)`` with a (B,) tensor of
    times, and carrying its schedule in ``.sde``, so that
    :func:`srlib.method.sde.dsm_loss` and
    :func:`srlib.method.restoration.restoration_error` take it as they take
    the U-Net. Computed in float64, returned in the input's dtype.
    """

    def __init__(self, images: torch.Tensor, sde: VESDE = VESDE(), chunk: int = 16):
        super().__init__()
        images = torch.as_tensor(images)
        if images.dim() != 4 or len(images) < 2:
            raise SrlibError(f"a Gaussian reference needs at least 2 images (N, C, H, W); got shape {tuple(images.shape)}")
        images = images.detach().to("cpu", torch.float64)
        mean = images.mean(dim=(0, 2, 3), keepdim=True)
        n, c, h, w = images.shape
        spectrum = torch.zeros((h, w, c, c), dtype=torch.complex128)
        for part in images.split(chunk):  # the outer products of chunk images at a time
            freq = torch.fft.fft2(part - mean, norm="ortho")
            spectrum += torch.einsum("nchw,ndhw->hwcd", freq, freq.conj())
        spectrum /= n
        eigenvalues, eigenvectors = torch.linalg.eigh(spectrum)  # (H, W, C), (H, W, C, C)
        self.sde = sde
        self.register_buffer("mean", mean[0])
        self.register_buffer("eigenvalues", eigenvalues.clamp(min=0))
        self.register_buffer("eigenvectors", eigenvectors)

    def posterior_mean(self, x: torch.Tensor, k) -> torch.Tensor:
        """E[x | x~] for noisy images ``x`` (B, C, H, W) at times ``k`` (a float or (B,)): the Wiener filter."""
        variance = self._variance(k, len(x), x.device)
        freq = torch.fft.fft2(x.to(torch.float64) - self.mean, norm="ortho").permute(0, 2, 3, 1)  # (B, H, W, C)
        basis = torch.einsum("hwdc,bhwd->bhwc", self.eigenvectors.conj(), freq)  # U^H X
        basis = basis * (self.eigenvalues / (self.eigenvalues + variance[:, None, None, None]))
        restored = torch.einsum("hwcd,bhwd->bhwc", self.eigenvectors, basis).permute(0, 3, 1, 2)
        return (self.mean + torch.fft.ifft2(restored, norm="ortho").real).to(x.dtype)

    def forward(self, x: torch.Tensor, k) -> torch.Tensor:
        variance = self._variance(k, len(x), x.device)
        restored = self.posterior_mean(x, k).to(torch.float64)
        return ((restored - x.to(torch.float64)) / variance[:, None, None, None]).to(x.dtype)

    def expected_dsm_loss(self, k: float) -> float:
        """The closed form of its DSM loss at time ``k`` on its own Gaussian, summed over an image: sum lambda / (lambda + sigma_k^2)."""
        variance = float(self.sde.marginal_std(float(k))) ** 2
        return float((self.eigenvalues / (self.eigenvalues + variance)).sum())

    def _variance(self, k, batch: int, device) -> torch.Tensor:
        if not isinstance(k, torch.Tensor):
            k = torch.full((batch,), float(k))
        return self.sde.marginal_std(k.to("cpu", torch.float64)).pow(2).to(device)
