"""Decoding image files: one clear error per bad file, Lanczos for images, nearest for masks.

Every file is read to 8-bit grey levels on its own scale: 16-bit greyscale
(Pillow modes ``I;16*``) is scaled by 255/65535 (Pillow's own conversion
would clip it to white), palette, 1-bit, LA, CMYK... are converted by
Pillow; 32-bit integer or float images (modes ``I`` and ``F``) carry no
black and white points, so they are refused. Images Pillow's
decompression-bomb guard flags are refused too, naming the file. Masks are
binarised at mid-grey in their brightest channel (a lossy mask's noise is
not a defect; a red annotation is), except label masks whose only values are
0 and 1. Pixels are read as stored: an EXIF orientation is not applied (the
authors' loader does not either); ``srlib data check`` warns about one.

No torch here, so ``srlib data check`` starts fast.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from srlib.errors import SrlibError

# Build caches of more images than this behind a progress bar.
PROGRESS_FROM = 100
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
# Warning filters are process-wide: one opener at a time turns Pillow's bomb warning into an error.
_OPENING = threading.Lock()


def _open(path) -> Image.Image:
    with _OPENING, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def _bomb(path, err: Exception) -> SrlibError:
    pixels = re.search(r"\((\d+) pixels\)", str(err))
    size = f" ({int(pixels[1]):,} pixels)" if pixels else ""
    return SrlibError(
        f"{path} is too large{size} for Pillow's decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS = "
        f"{Image.MAX_IMAGE_PIXELS:,}); shrink it (srlib resizes images to a few hundred pixels anyway), "
        f"or, if you trust it, raise PIL.Image.MAX_IMAGE_PIXELS in Python before reading it"
    )


def convert_levels(image: Image.Image, path, mode: str) -> Image.Image:
    """``image`` in ``mode`` with its grey levels kept (a new image)."""
    if image.mode in SIXTEEN_BIT:
        wide = np.asarray(image).astype(np.uint32)
        image = Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), "L")  # rounded
    elif image.mode in ("I", "F"):
        kind = "integer" if image.mode == "I" else "floating-point"
        raise SrlibError(f"{path} holds 32-bit {kind} grey levels (Pillow mode {image.mode}), which have no fixed black "
                         f"and white; save it as an 8- or 16-bit PNG")
    try:
        return image.convert(mode)
    except ValueError:
        raise SrlibError(f"{path} is in Pillow mode {image.mode}, which Pillow cannot convert to {mode}; "
                         f"save it as an 8-bit RGB or greyscale PNG") from None


def read_image(path: str | os.PathLike, mode: str | None = None, labels: bool = False) -> Image.Image:
    """Decode a whole image file (into ``mode``, grey levels kept, if given); one clear error if it cannot be.

    With ``labels``, an 8- or 16-bit greyscale file whose values are only 0
    and 1 is returned as 0 and 255 (a label mask).
    """
    try:
        with _open(path) as image:
            image.load()
            if labels and image.mode in ("L", *SIXTEEN_BIT) and np.asarray(image).max() == 1:
                image = Image.fromarray(np.asarray(image).astype(np.uint8) * 255, "L")
            return convert_levels(image, path, mode) if mode else image.copy()
    except PermissionError:
        raise SrlibError(f"{path} cannot be read (permission denied); make it readable: chmod a+r '{path}'") from None
    except UnidentifiedImageError:
        raise SrlibError(f"{path} is not an image Pillow can read (corrupt or not an image); replace it with an intact copy") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise _bomb(path, err) from None
    except (OSError, ValueError, SyntaxError) as err:  # Pillow's truncated/corrupt-data errors
        raise SrlibError(f"{path} cannot be decoded ({err}); replace it with an intact copy") from None


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """(H, W) bool: the defect pixels of a mask file: brightest channel at mid-grey or above (or label 1).

    The brightest channel, not the luminance: a mask drawn in pure red is a mask.
    """
    return np.asarray(read_image(path, "RGB", labels=True)).max(axis=-1) >= 128


def image_pixels(path: str | os.PathLike, size: int) -> np.ndarray:
    """(3, size, size) uint8: RGB, Lanczos-resized to a square."""
    image = read_image(path, "RGB").resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(image).transpose(2, 0, 1).copy()


def mask_pixels(path: str | os.PathLike, size: int) -> np.ndarray:
    """(1, size, size) uint8 of 0/1: binarised, then nearest-neighbour resized."""
    mask = Image.fromarray(read_mask(path)).resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(mask).astype(np.uint8)[None]


def decode_all(function, items: list, desc: str, progress: bool = True) -> list:
    """``[function(item) for item in items]`` on threads (Pillow releases the GIL), with a bar (``progress``, many items)."""
    workers = min(8, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(workers)
    try:
        results = pool.map(function, items)
        return list(tqdm(results, total=len(items), desc=desc, disable=not progress or len(items) < PROGRESS_FROM,
                         leave=False))
    finally:
        pool.shutdown(cancel_futures=True)
