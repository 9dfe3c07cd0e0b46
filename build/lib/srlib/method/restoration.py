"""Algorithm 1 of the paper: restoration-error maps and anomaly scores.

A test image is perturbed with the time-k noise, restored by one step along
the learned score, and compared with itself. Normal pixels are resilient to
the perturbation (small error); anomalous ones are not.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from srlib.errors import SrlibError
from srlib.method.constants import PAPER_K

# How many draws share a forward pass on a CPU: as many as fit in this many
# pixels (B * H * W per draw). Small passes are dominated by per-layer
# overhead and gain from batching; large ones lose to cache misses, so small
# images run their draws at once and the paper's 192 px one at a time.
# ``python -m srlib.bench --draws-per-pass`` measures it; the Performance page
# has the ratios this threshold was chosen by.
CPU_PIXELS_PER_PASS = 3 * 128 * 128


def _channels_last(model) -> bool:
    """Whether the model's convolutions are in channels_last (feed them inputs that are too)."""
    parameters = model.parameters() if isinstance(model, torch.nn.Module) else ()
    weight = next((p for p in parameters if p.dim() == 4), None)
    return weight is not None and not weight.is_contiguous() and weight.is_contiguous(
        memory_format=torch.channels_last)


@torch.inference_mode()
def restoration_error(model, x: torch.Tensor, k: float = PAPER_K, n_draws: int = 3,
                      noise: torch.Tensor | None = None, batch_size: int | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-pixel restoration error, the raw anomaly map of Algorithm 1.

    For each draw eps, with ``n = sigma_k * eps``, the error is the channel
    mean of ``(model(x + n, k) * sigma_k**2 + n)**2``; the draws are averaged.

    Parameters
    ----------
    model : callable
        Score model ``model(x, k)`` with its noise schedule in ``model.sde``
        (a :class:`srlib.method.sde.VESDE`); used as it is (put it in eval mode).
    x : torch.Tensor
        Images (B, C, H, W) on the model's device.
    k : float
        Perturbation time (1e-3 in the paper).
    n_draws : int
        N, the number of independent perturbations.
    noise : torch.Tensor, optional
        Unit normals of shape (n_draws, B, C, H, W), for exact comparisons.
        Otherwise drawn one draw at a time from ``generator`` (the global RNG
        if None), so the result does not depend on ``batch_size``.
    batch_size : int, optional
        Draws evaluated together in one forward pass (of ``batch_size * B``
        images); the result is the same for any value. Defaults to all draws
        on a GPU; on a CPU as many as fit in ``CPU_PIXELS_PER_PASS`` pixels.

    Returns
    -------
    torch.Tensor
        Shape (B, 1, H, W).
    """
    if noise is not None and tuple(noise.shape) != (n_draws, *x.shape):
        raise ValueError(f"noise has shape {tuple(noise.shape)}, expected {(n_draws, *x.shape)}")
    if batch_size is None:
        batch_size = n_draws
        if x.device.type == "cpu":
            batch_size = min(max(CPU_PIXELS_PER_PASS // x[:, 0].numel(), 1), n_draws)
    sde = getattr(model, "sde", None)
    if sde is None:
        raise SrlibError(f"the score model {type(model).__name__} has no .sde (its noise schedule): "
                         "set model.sde = srlib.method.sde.VESDE(sigma)")
    memory_format = torch.channels_last if _channels_last(model) else torch.contiguous_format
    times = torch.full((x.shape[0],), k, dtype=x.dtype, device=x.device)
    std = sde.marginal_std(times)[:, None, None, None]
    total = 0.0
    for start in range(0, n_draws, batch_size):
        draws = min(batch_size, n_draws - start)
        if noise is not None:
            eps = noise[start:start + draws].to(x)
        else:
            eps = torch.stack([torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
                               for _ in range(draws)])
        n = eps * std
        perturbed = (x + n).flatten(0, 1).contiguous(memory_format=memory_format)
        score = model(perturbed, times.repeat(draws)).reshape(n.shape)
        errors = (score * std**2 + n).pow(2).mean(dim=2, keepdim=True)
        for error in errors:  # summed draw by draw, as one draw at a time would
            total = total + error
    return total / n_draws


def _lanczos(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize each map with Pillow's Lanczos filter on 32-bit float images."""
    flat = maps.detach().to("cpu", torch.float32).reshape(-1, *maps.shape[-2:]).numpy()
    resized = [np.asarray(Image.fromarray(m).resize(size[::-1], Image.Resampling.LANCZOS)) for m in flat]
    out = torch.from_numpy(np.stack(resized)).reshape(*maps.shape[:-2], *size)
    return out.to(device=maps.device, dtype=maps.dtype)


def anomaly_map(raw: torch.Tensor, out_size=256, resize: str = "bilinear", kernel: int = 31) -> torch.Tensor:
    """Resize raw error maps and smooth them with a mean filter.

    Parameters
    ----------
    raw : torch.Tensor
        Maps of shape (B, 1, H, W), from :func:`restoration_error`.
    out_size : int or (int, int)
        Output size (256 for MVTec AD's masks).
    resize : {"bilinear", "lanczos"}
        ``"bilinear"`` (align_corners=False) is what the authors' code ran;
        ``"lanczos"`` is what the paper says (Pillow, per map, in float32).
    kernel : int
        Odd side of the mean filter. Its zero padding counts in the mean, as
        in the authors' code, so values near the border are damped. 1: none.
    """
    size = (out_size, out_size) if isinstance(out_size, int) else tuple(out_size)
    if resize == "bilinear":
        maps = F.interpolate(raw, size=size, mode="bilinear", align_corners=False)
    elif resize == "lanczos":
        maps = _lanczos(raw, size)
    else:
        raise SrlibError(f"unknown resize {resize!r}: use 'bilinear' (the authors' code) or 'lanczos' (the paper)")
    if kernel < 1 or kernel % 2 == 0:
        raise SrlibError(f"mean-filter kernel {kernel} must be an odd number >= 1 (the paper uses 31)")
    # A column pass then a row pass: 2k additions a pixel instead of k*k; the
    # same mean up to float32 rounding (the Performance page has both figures).
    half = kernel // 2
    maps = F.avg_pool2d(maps, (kernel, 1), stride=1, padding=(half, 0), count_include_pad=True)
    return F.avg_pool2d(maps, (1, kernel), stride=1, padding=(0, half), count_include_pad=True)


def image_scores(maps: torch.Tensor) -> torch.Tensor:
    """Image-level anomaly score: the maximum of each map, shape (B,)."""
    return maps.flatten(1).amax(dim=1)
