"""Decoding image files: one clear error per bad file, Lanczos for images, nearest for masks.

No torch here, so ``srlib data check`` starts fast.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from srlib.errors import SrlibError

# Build caches of more images than this behind a progress bar.
PROGRESS_FROM = 100


def read_image(path: str | os.PathLike, mode: str | None = None) -> Image.Image:
    """Decode a whole image file (into ``mode`` if given); one clear error if it cannot be."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert(mode) if mode else image.copy()
    except PermissionError:
        raise SrlibError(f"{path} cannot be read (permission denied); make it readable: chmod a+r '{path}'") from None
    except UnidentifiedImageError:
        raise SrlibError(f"{path} is not an image Pillow can read (corrupt or not an image); replace it with an intact copy") from None
    except (OSError, ValueError, SyntaxError) as err:  # Pillow's truncated/corrupt-data errors
        raise SrlibError(f"{path} cannot be decoded ({err}); replace it with an intact copy") from None


def image_pixels(path: str | os.PathLike, size: int) -> np.ndarray:
    """(3, size, size) uint8: RGB, Lanczos-resized to a square."""
    image = read_image(path, "RGB").resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(image).transpose(2, 0, 1).copy()


def mask_pixels(path: str | os.PathLike, size: int) -> np.ndarray:
    """(1, size, size) uint8 of 0/1: nearest-neighbour resized, binarised (> 0)."""
    mask = read_image(path, "L").resize((size, size), Image.Resampling.NEAREST)
    return (np.asarray(mask) > 0).astype(np.uint8)[None]


def decode_all(function, items: list, desc: str) -> list:
    """``[function(item) for item in items]`` on threads (Pillow releases the GIL), with a bar."""
    workers = min(8, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(workers)
    try:
        results = pool.map(function, items)
        return list(tqdm(results, total=len(items), desc=desc, disable=len(items) < PROGRESS_FROM, leave=False))
    finally:
        pool.shutdown(cancel_futures=True)


