"""Anomaly maps as pictures: one colour scale, one strip (input | map | ground truth), the overlay files.

``srlib evaluate`` writes :func:`strip` PNGs of a sample of test images
(:func:`save_overlays`); the gallery of chapters 5 and 6
(:func:`srlib.results.charts.plot_gallery`) draws the same strips.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from srlib.atomic import write_bytes

BLEND = 0.6  # how much of the colour map covers the input in an overlay


def colour_range(maps) -> tuple[float, float]:
    """The 1st and 99th percentiles of ``maps``: one colour scale for a category's whole test split."""
    low, high = np.quantile(np.asarray(maps), [0.01, 0.99])
    return float(low), float(high)


def scaled(maps, low: float, high: float) -> np.ndarray:
    """``maps`` mapped linearly from [``low``, ``high``] to [0, 1], clipped."""
    return np.clip((np.asarray(maps) - low) / max(high - low, 1e-30), 0, 1)


def picture(image: torch.Tensor) -> np.ndarray:
    """A (3, S, S) image in [-1, 1] as (S, S, 3) uint8."""
    return ((image.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def strip(image: np.ndarray, heat: np.ndarray, mask: np.ndarray, blend: float = BLEND) -> np.ndarray:
    """Input | map (inferno colours, ``blend`` of them over the input) | ground truth, as one (S, 3S, 3) uint8 array.

    ``image`` is (S, S, 3) uint8 at any size (resized to the map's S), ``heat``
    (S, S) in [0, 1], ``mask`` (S, S), nonzero where defective. ``blend=1``
    shows the map alone.
    """
    from matplotlib import colormaps
    from PIL import Image

    side = heat.shape[-1]
    image = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR), np.float64)
    colours = colormaps["inferno"](heat)[..., :3] * 255
    overlay = (1 - blend) * image + blend * colours
    truth = np.repeat((np.asarray(mask) > 0)[..., None] * 255.0, 3, axis=2)
    return np.concatenate([image, overlay, truth], axis=1).round().clip(0, 255).astype(np.uint8)


def overlay_indices(labels: torch.Tensor, count: int) -> list[int]:
    """Up to ``count`` test images, evenly spread: three quarters defective, the rest good."""
    defective = torch.nonzero(labels == 1).flatten().tolist()
    good = torch.nonzero(labels == 0).flatten().tolist()
    n_defective = min(len(defective), max(count - min(len(good), count // 4), 0))
    n_good = min(len(good), count - n_defective)

    def spread(items, n):
        return [items[int(i)] for i in np.linspace(0, len(items) - 1, n)] if n else []

    return sorted(spread(defective, n_defective) + spread(good, n_good))


def save_overlays(dataset, result, folder: Path, count: int = 8) -> list[Path]:
    """Write a :func:`strip` PNG for a sample of test images (``result``: a ``srlib.run.evaluate.EvalResult``)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    low, high = colour_range(result.maps.numpy())
    written = []
    for index in overlay_indices(result.labels, count):
        item = dataset[index]
        pixels = strip(picture(item["image"]), scaled(result.maps[index, 0].numpy(), low, high),
                       result.masks[index, 0].numpy())
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        path = folder / f"{index:03d}_{item['defect']}.png"
        write_bytes(path, buffer.getvalue())
        written.append(path)
    return written
