"""Reconstruction baselines: what the paper argues against, on the same budget.

Two reconstruction models learn the normal images only; a pixel's anomaly
value is its squared reconstruction error (the channel mean of
``(x - reconstruct(x))**2``), a map of shape (B, 1, H, W) like the restoration
error of :func:`srlib.method.restoration.restoration_error`, so
:func:`srlib.method.restoration.anomaly_map`, :func:`~srlib.method.restoration.image_scores`
and :mod:`srlib.method.metrics` apply unchanged.

- :class:`ConvAutoencoder` with :func:`train_autoencoder`: a small
  convolutional autoencoder trained with the MSE loss, the AE(MSE) row of the
  paper's Table 1 in miniature.
- :class:`PCAReconstruction`: projection onto the leading principal
  components of the training images (scikit-learn's PCA), the linear
  autoencoder.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from srlib.errors import SrlibError


@torch.inference_mode()
def reconstruction_error(reconstruct: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                         batch_size: int = 64) -> torch.Tensor:
    """Per-pixel squared reconstruction error, the channel mean: shape (B, 1, H, W).

    Parameters
    ----------
    reconstruct : callable
        Maps images (b, C, H, W) to reconstructions of the same shape (a
        :class:`ConvAutoencoder` in eval mode, a fitted
        :class:`PCAReconstruction`).
    x : torch.Tensor
        Images (B, C, H, W).
    batch_size : int
        Images per call of ``reconstruct``.
    """
    maps = []
    for batch in x.split(batch_size):
        rebuilt = reconstruct(batch)
        if rebuilt.shape != batch.shape:
            raise SrlibError(f"the reconstruction has shape {tuple(rebuilt.shape)}, the images {tuple(batch.shape)}")
        maps.append((batch - rebuilt).pow(2).mean(dim=1, keepdim=True))
    return torch.cat(maps)


class ConvAutoencoder(nn.Module):
    """A small convolutional autoencoder with a spatial bottleneck.

    The encoder halves the resolution ``levels`` times with stride-2 3x3
    convolutions (``width * 2**i`` channels) and ends in a 1x1 convolution to
    ``latent_channels``; the decoder mirrors it with stride-2 transposed
    convolutions. An image of side S passes through a code of
    ``latent_channels * (S / 2**levels)**2`` numbers.

    Parameters
    ----------
    in_channels : int
        Image channels.
    width : int
        Channels of the first level.
    levels : int
        Halvings of the resolution; image sides must be multiples of ``2**levels``.
    latent_channels : int
        Channels of the bottleneck.
    """

    def __init__(self, in_channels: int = 3, width: int = 16, levels: int = 3, latent_channels: int = 8):
        super().__init__()
        if min(in_channels, width, levels, latent_channels) < 1:
            raise SrlibError(f"ConvAutoencoder sizes must be positive: in_channels {in_channels}, width {width}, "
                             f"levels {levels}, latent_channels {latent_channels}")
        self.levels = levels
        channels = [in_channels] + [width * 2**i for i in range(levels)]
        encoder, decoder = [], []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            encoder += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        encoder.append(nn.Conv2d(channels[-1], latent_channels, 1))
        decoder += [nn.Conv2d(latent_channels, channels[-1], 1), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(channels[:1:-1], channels[-2:0:-1]):
            decoder += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        decoder += [nn.ConvTranspose2d(channels[1], channels[1], 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                    nn.Conv2d(channels[1], in_channels, 3, padding=1)]
        self.encoder, self.decoder = nn.Sequential(*encoder), nn.Sequential(*decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        multiple = 2**self.levels
        if x.shape[-1] % multiple or x.shape[-2] % multiple:
            raise SrlibError(f"images of {x.shape[-2]}x{x.shape[-1]} px: a {self.levels}-level autoencoder needs "
                             f"sides that are multiples of {multiple}; resize them or change levels")
        return self.decoder(self.encoder(x))


def train_autoencoder(model: ConvAutoencoder, images: torch.Tensor, epochs: int = 40, batch_size: int = 16,
                      lr: float = 1e-3, seed: int = 0, progress: bool = True) -> dict:
    """Fit ``model`` to reconstruct ``images`` (the normal training set) with the MSE loss.

    Adam; shuffled batches (the last, partial one kept) in an order drawn
    from ``seed``. The initialisation is the model's as given (call
    ``torch.manual_seed`` before building it for a reproducible run). Leaves
    the model in eval mode.

    Returns
    -------
    dict
        ``loss``: the mean training loss of each epoch; ``seconds``: the
        training time.
    """
    if epochs < 1 or batch_size < 1:
        raise SrlibError(f"epochs ({epochs}) and batch_size ({batch_size}) must be at least 1")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    losses = []
    started = time.perf_counter()
    model.train()
    for _ in tqdm(range(epochs), desc="autoencoder", unit="epoch", disable=not progress or None, leave=False):
        total = 0.0
        for batch in images[torch.randperm(len(images), generator=order)].split(batch_size):
            loss = nn.functional.mse_loss(model(batch), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(images))
    model.eval()
    return {"loss": losses, "seconds": time.perf_counter() - started}


class PCAReconstruction:
    """Reconstruction from the leading principal components of the training images.

    Parameters
    ----------
    n_components : int or float
        As scikit-learn's PCA: a number of components, or a fraction in (0, 1)
        of the training variance to keep.
    """

    def __init__(self, n_components: int | float = 0.9):
        self.n_components = n_components
        self.pca = None

    def fit(self, images: torch.Tensor) -> PCAReconstruction:
        """Fit on images (N, C, H, W); returns self."""
        from sklearn.decomposition import PCA

        flat = images.detach().cpu().double().flatten(1).numpy()
        limit = min(flat.shape)
        if isinstance(self.n_components, int) and not 1 <= self.n_components <= limit:
            raise SrlibError(f"n_components {self.n_components} must be between 1 and {limit} "
                             f"(the smaller of {flat.shape[0]} images and {flat.shape[1]} pixels)")
        self.pca = PCA(n_components=self.n_components, svd_solver="full").fit(flat)
        self.shape = tuple(images.shape[1:])
        return self

    @property
    def components(self) -> int:
        """How many components the fit kept."""
        return int(self.pca.n_components_)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Project images onto the fitted components and back."""
        if self.pca is None:
            raise SrlibError("PCAReconstruction is not fitted: call fit(train_images) first")
        if tuple(x.shape[1:]) != self.shape:
            raise SrlibError(f"images of shape {tuple(x.shape[1:])}, but the PCA was fitted on {self.shape}")
        flat = x.detach().cpu().double().flatten(1).numpy()
        rebuilt = self.pca.inverse_transform(self.pca.transform(flat))
        return torch.from_numpy(np.asarray(rebuilt)).reshape(x.shape).to(x)
