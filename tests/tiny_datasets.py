"""Tiny benchmark folders in the real layouts, written by the tests themselves.

Every image is a flat colour chosen from its place, so a test can predict each
pixel after any resize; every mask is a known rectangle.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
from PIL import Image


def colour(split: str, defect: str, index: int) -> tuple[int, int, int]:
    """The flat RGB colour of one tiny image (distinct per image)."""
    base = {"train": 20, "test": 120}[split] + 30 * (defect not in ("good", "ok")) + 7 * index
    return (base, 255 - base, (3 * base) % 256)


def rectangle_mask(size: tuple[int, int]) -> np.ndarray:
    """Mask with the top-left quarter set (0/255), for an image of (width, height)."""
    w, h = size
    mask = np.zeros((h, w), np.uint8)
    mask[: h // 2, : w // 2] = 255
    return mask


def write_image(path: Path, rgb, size, grayscale: bool = False) -> None:
    image = Image.new("RGB", size, tuple(rgb))
    (image.convert("L") if grayscale else image).save(path)


def write_category(
    root: Path,
    category: str,
    layout: str = "mvtec",
    size: tuple[int, int] = (8, 8),
    grayscale: bool = False,
    suffix: str = ".png",
    defects: tuple[str, ...] | None = None,
    n_train: int = 3,
    n_test_good: int = 2,
    n_defect: int = 2,
) -> Path:
    """Write one category in the MVTec AD/MPDD (``layout="mvtec"``) or BTAD layout."""
    good = "ok" if layout == "btad" else "good"
    defects = defects or (("ko",) if layout == "btad" else ("crack", "scratch"))
    folder = Path(root) / category
    plan = [("train", good, n_train), ("test", good, n_test_good)] + [("test", d, n_defect) for d in defects]
    for split, defect, count in plan:
        (folder / split / defect).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            write_image(folder / split / defect / f"{i:03d}{suffix}", colour(split, defect, i), size, grayscale)
            if defect != good:
                gt = folder / "ground_truth" / defect
                gt.mkdir(parents=True, exist_ok=True)
                name = f"{i:03d}.png" if layout == "btad" else f"{i:03d}_mask.png"
                Image.fromarray(rectangle_mask(size)).save(gt / name)
    return folder


def snapshot(root: Path) -> dict:
    """Every path under ``root`` with its size and modification time."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.join(dirpath, name)] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


@contextlib.contextmanager
def unprivileged():
    """Run the body as user 'nobody' when the tests run as root (root reads any file)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
