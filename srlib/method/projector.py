"""The exact score of the training patches: each patch restored to its nearest training patch.

Chapter 1 shows that as k -> 0 the exact score of the perturbed data
distribution restores a point to its projection onto the data,
``E[x | x~] -> P_M(x~)``. On images a score U-Net sees a neighbourhood of each
pixel, so take the data to be the training images' patches, exactly as
given: the exact score of that set restores each patch of a test image to its
nearest training patch, and Algorithm 1's error at a pixel, in that limit, is
the squared difference between the pixel and the centre of that patch (the
channel mean, as :func:`srlib.method.restoration.restoration_error`).

No network and no training, and no generalisation either: the projector
knows every training patch and nothing else. It says how far each patch of a
test image lies from the patches the model was trained on, the question a
learned score answers from what it has made of them.
:func:`srlib.method.restoration.anomaly_map` and the metrics apply to its
maps unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from srlib.errors import SrlibError


def _patches(images: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """Every ``patch`` x ``patch`` patch of reflect-padded images, ``stride`` apart: (B, L, C * patch**2), one per pixel at stride 1."""
    half = patch // 2
    padded = F.pad(images, (half,) * 4, mode="reflect") if half else images
    return F.unfold(padded, patch, stride=stride).transpose(1, 2)


@torch.inference_mode()
def nearest_patch_error(train: torch.Tensor, images: torch.Tensor, patch: int = 7, train_stride: int = 1,
                        query_stride: int = 1, chunk: int = 4096) -> torch.Tensor:
    """Per-pixel error of restoring each patch to its nearest training patch: shape (B, 1, H, W).

    Parameters
    ----------
    train : torch.Tensor
        Normal images (N, C, h, w) whose patches are the data.
    images : torch.Tensor
        Images to score (B, C, H, W), same C.
    patch : int
        Odd side of the square patches (the neighbourhood a pixel is judged by).
    train_stride : int
        Distance between the training patches kept (1: every patch; larger
        strides keep every ``train_stride``-th row and column, a cheaper subset).
    query_stride : int
        Score the pixels of every ``query_stride``-th row and column; each
        scored pixel's value fills its ``query_stride`` x ``query_stride`` block.
    chunk : int
        Query patches per matrix product (memory: ``chunk`` x training patches floats).
    """
    if patch < 1 or patch % 2 == 0:
        raise SrlibError(f"patch {patch} must be an odd number >= 1, so that every patch has a centre pixel")
    if train_stride < 1 or query_stride < 1:
        raise SrlibError(f"strides must be >= 1, got train_stride {train_stride} and query_stride {query_stride}")
    if train.dim() != 4 or images.dim() != 4 or train.shape[1] != images.shape[1]:
        raise SrlibError(f"training images {tuple(train.shape)} and images {tuple(images.shape)} must both be "
                         "(N, C, H, W) with the same C")
    if min(*train.shape[-2:], *images.shape[-2:]) <= patch // 2:
        raise SrlibError(f"patch {patch} is too large for images of {tuple(train.shape[-2:])} and "
                         f"{tuple(images.shape[-2:])} px: use a patch smaller than twice the smallest side")
    if train.shape[1] > 1 and (train == train[:, :1]).all() and (images == images[:, :1]).all():
        # Grey images stored as equal channels: every distance is C times one channel's, so the nearest
        # patch and the channel-mean error are one channel's, at a C-th of the cost.
        train, images = train[:, :1], images[:, :1]
    data = _patches(train.float(), patch, train_stride).reshape(-1, train.shape[1] * patch**2)
    norms = data.pow(2).sum(dim=1)
    centre = torch.arange(train.shape[1]) * patch**2 + patch**2 // 2  # the centre pixel of each channel
    data_centres = data[:, centre]
    height, width = images.shape[-2:]
    maps = []
    for image in images.float():
        queries = _patches(image[None], patch, query_stride)[0]
        # |q - d|^2 = |q|^2 - 2 q.d + |d|^2; |q|^2 is the same for every d. One fused addmm per block
        # (about 1.6x faster than building the sum in three passes on this machine's CPU).
        nearest = torch.cat([torch.addmm(norms, block, data.T, alpha=-2).argmin(dim=1) for block in queries.split(chunk)])
        error = (queries[:, centre] - data_centres[nearest]).pow(2).mean(dim=1)
        rows, cols = -(-height // query_stride), -(-width // query_stride)
        grid = error.reshape(1, 1, rows, cols)
        full = grid.repeat_interleave(query_stride, dim=2).repeat_interleave(query_stride, dim=3)
        maps.append(full[..., :height, :width])
    return torch.cat(maps).to(images.device)
