"""The time-conditioned score U-Net, in the authors' checkpoint layout.

Four down and four up levels of (conv3x3 -> GroupNorm -> swish) x 2, with the
channel widths ``width * (1, 2, 4, 8, 8)`` (64-128-256-512-512 at the default
width, 17,843,331 parameters, the authors' network). Time k enters through
Gaussian random Fourier features, a Linear(256, 256) and swish; a per-block
Linear of that embedding is added after every block. The output is divided by
``sigma_k``, so the network approximates the score grad log p.

Module names are fixed by the released checkpoints: at the default width,
``state_dict()`` has exactly their keys, shapes and order.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from srlib.method.sde import VESDE

EMBED_DIM = 256
FOURIER_SCALE = 30.0
MAX_GROUPS = 32


def group_count(channels: int) -> int:
    """GroupNorm groups for a layer: 32 as the authors, fewer for narrow layers.

    ``gcd(32, channels)`` is 32 for every layer of the default width and the
    largest divisor of 32 that splits the channels evenly otherwise (16 groups
    for the 16-channel layers of a width-16 model).
    """
    return math.gcd(MAX_GROUPS, channels)


def swish(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(x), written as the authors' network computes it.

    ``nn.SiLU`` is the same function, but its fused kernel rounds differently
    (about 1e-6 relative); this form gives bit-identical outputs to theirs.
    """
    return x * torch.sigmoid(x)


class Swish(nn.Module):
    """swish as a layer; without autograd it overwrites its input.

    In training it is the authors' product, so that a contiguous fp32 run
    does their arithmetic step for step. Without autograd (evaluation) it is
    torch's fused SiLU written over its input (the normalised activations,
    which nothing else reads): one pass over memory and no new tensor, 6%
    faster evaluation on a CPU, rounding within ~1e-6 relative of the
    product, as channels_last's convolutions are.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return swish(x)
        return F.silu(x, inplace=True)


class FourierFeatures(nn.Module):
    """sin and cos of ``2 pi k W`` for frozen random frequencies W ~ N(0, scale^2)."""

    def __init__(self, dim: int = EMBED_DIM, scale: float = FOURIER_SCALE):
        super().__init__()
        # A parameter, not a buffer: the released checkpoints count it among the
        # 17,843,331 parameters; it is never trained.
        self.W = nn.Parameter(torch.randn(dim // 2) * scale, requires_grad=False)

    def forward(self, k: torch.Tensor) -> torch.Tensor:
        angles = k[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class DoubleConv(nn.Module):
    """(conv3x3 -> GroupNorm -> swish) twice."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None):
        super().__init__()
        mid_channels = mid_channels or out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1),
            nn.GroupNorm(group_count(mid_channels), mid_channels),
            Swish(),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1),
            nn.GroupNorm(group_count(out_channels), out_channels),
            Swish(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class Down(nn.Module):
    """Max-pool by 2, then a DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


def upsample_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsample by 2 (bilinear, align_corners=True), then zero-pad to ``size``.

    Odd skip sizes leave a gap of one row/column after upsampling; the padding
    splits it with the smaller half on the top/left, as the authors' network.
    """
    x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    dh, dw = size[0] - x.shape[-2], size[1] - x.shape[-1]
    if dh or dw:
        x = F.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])
    return x


class Up(nn.Module):
    """Upsample, concatenate [skip, upsampled], DoubleConv with half the input width in the middle."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, upsample_to(x, skip.shape[-2:])], dim=1))


class TimeDense(nn.Module):
    """Linear map of the time embedding to one bias per channel, broadcast over H and W."""

    def __init__(self, channels: int, embed_dim: int = EMBED_DIM):
        super().__init__()
        self.dense = nn.Linear(embed_dim, channels)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.dense(embedding)[..., None, None]


class OutConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ScoreUNet(nn.Module):
    """Score network s(x, k) ~ grad log p_k(x) of the paper.

    Parameters
    ----------
    width : int
        Channels of the first level; levels have ``width * (1, 2, 4, 8, 8)``.
        64 is the authors' network; 16 or 32 make CPU-sized models.
    sde : VESDE
        The noise schedule (the paper's by default); the output is divided by ``sigma_k``.
    in_channels : int
        Image channels (the score has the input's shape).

    Call as ``model(x, k)`` with x of shape (B, C, H, W), H, W >= 16, and k a
    (B,) tensor of times (a float is broadcast over the batch).
    """

    LEVELS = 4

    def __init__(self, width: int = 64, sde: VESDE = VESDE(), in_channels: int = 3):
        super().__init__()
        self.width = width
        self.sde = sde
        channels = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        # Registration order is the state-dict order of the released checkpoints.
        self.embed = nn.Sequential(FourierFeatures(), nn.Linear(EMBED_DIM, EMBED_DIM))
        self.inc = DoubleConv(in_channels, channels[0])
        self.dense_in = TimeDense(channels[0])
        for level in range(1, self.LEVELS + 1):
            setattr(self, f"down{level}", Down(channels[level - 1], channels[level]))
            setattr(self, f"dense_d{level}", TimeDense(channels[level]))
        below = channels[-1]
        for level in range(1, self.LEVELS + 1):
            skip = channels[self.LEVELS - level]
            out = channels[max(self.LEVELS - 1 - level, 0)]
            setattr(self, f"up{level}", Up(below + skip, out))
            setattr(self, f"dense_u{level}", TimeDense(out))
            below = out
        self.outc = OutConv(channels[0], in_channels)

    def time_embedding(self, k: torch.Tensor) -> torch.Tensor:
        """swish(Linear(Fourier features of k)), shape (B, 256)."""
        return swish(self.embed(k))

    def forward(self, x: torch.Tensor, k) -> torch.Tensor:
        if not isinstance(k, torch.Tensor) or k.dim() == 0:
            k = torch.as_tensor(k, dtype=x.dtype, device=x.device).expand(x.shape[0])
        embedding = self.time_embedding(k)
        # Each block's time bias is added in place: the block's output (a
        # product) is not needed by autograd, and one allocation fewer per
        # block is measurably faster on a CPU.
        h = self.inc(x).add_(self.dense_in(embedding))
        skips = []
        for level in range(1, self.LEVELS + 1):
            skips.append(h)
            h = getattr(self, f"down{level}")(h).add_(getattr(self, f"dense_d{level}")(embedding))
        for level in range(1, self.LEVELS + 1):
            h = getattr(self, f"up{level}")(h, skips.pop()).add_(getattr(self, f"dense_u{level}")(embedding))
        return self.outc(h) / self.sde.marginal_std(k)[:, None, None, None]
