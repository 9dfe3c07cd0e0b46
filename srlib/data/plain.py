"""A plain folder of images, not a benchmark layout: what a practitioner has.

The folder is searched recursively (sub-folders are kept in the output names,
so two files named alike in different folders never collide); names starting
with a dot are skipped. A file counts as an image by its extension (any that
Pillow registers: .png, .jpg, .tif, .bmp, .webp...); other files are left
alone and counted once. Images are decoded like the benchmarks' (any mode,
grey repeated over three channels, Lanczos-resized to a square), so a model
trained on a plain folder sees what one trained on MVTec AD sees.

A file that cannot be used (empty, unreadable, truncated, not an image)
yields one line naming it and the fix, and the others are still used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from srlib.data.images import decode_all, image_pixels
from srlib.errors import SrlibError


def image_suffixes() -> frozenset[str]:
    """Lower-case extensions Pillow can open (``.png``, ``.jpg``...)."""
    Image.init()
    return frozenset(suffix.lower() for suffix in Image.registered_extensions())


@dataclass
class ImageFolder:
    """The image files under a folder: paths, names relative to it, other files skipped."""

    root: Path
    paths: list[Path]
    others: list[Path] = field(default_factory=list)

    def names(self) -> list[str]:
        """Each path relative to ``root``, with ``/`` separators (the output names)."""
        return [path.relative_to(self.root).as_posix() for path in self.paths]


def list_images(folder: str | os.PathLike) -> ImageFolder:
    """Every image file under ``folder``, recursively, sorted by relative path.

    Raises
    ------
    SrlibError
        If ``folder`` is not a readable folder or holds no image file.
    """
    root = Path(folder)
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise SrlibError(f"--images {root} {what}: give the folder that holds the images")
    suffixes = image_suffixes()
    paths, others = [], []

    def refuse(err: OSError):
        raise SrlibError(f"cannot list {err.filename} ({err.strerror}): make it readable (chmod a+rx)")

    for here, folders, files in os.walk(root, onerror=refuse):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in files:
            if name.startswith("."):
                continue
            path = Path(here) / name
            (paths if path.suffix.lower() in suffixes else others).append(path)
    if not paths:
        found = f" (only {len(others)} other files, e.g. {others[0].name})" if others else ""
        raise SrlibError(f"no image files under {root}{found}: give a folder of .png, .jpg, .tif... images")
    key = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    return ImageFolder(root, sorted(paths, key=key), sorted(others, key=key))


def checked_pixels(path: Path, size: int) -> np.ndarray:
    """(3, size, size) uint8 as for a benchmark image, or ``SrlibError`` naming the file and the fix."""
    try:
        empty = path.stat().st_size == 0
    except OSError as err:
        raise SrlibError(f"{path} cannot be read ({err.strerror}); check the file") from None
    if empty:
        raise SrlibError(f"{path} is empty (0 bytes); replace it with an intact copy or remove it")
    return image_pixels(path, size)


def decode_images(paths: list[Path], size: int, desc: str = "reading") -> list[tuple[np.ndarray | None, str | None]]:
    """Decode every path: ``(pixels, None)``, or ``(None, the one-line problem)`` for a file that failed."""

    def attempt(path):
        try:
            return checked_pixels(path, size), None
        except SrlibError as err:
            return None, str(err)

    return decode_all(attempt, paths, desc)


def read_folder(folder: str | os.PathLike, size: int) -> tuple[np.ndarray, list[Path], list[str]]:
    """Every readable image under ``folder``: uint8 (N, 3, size, size), their paths, one problem line per other file."""
    found = list_images(folder)
    decoded = decode_images(found.paths, size, f"reading {found.root.name or found.root}")
    kept = [(path, pixels) for path, (pixels, _) in zip(found.paths, decoded) if pixels is not None]
    problems = [problem for _, problem in decoded if problem]
    if not kept:
        raise SrlibError(f"none of the {len(found.paths)} image files under {found.root} can be read "
                         f"(the first: {problems[0]})")
    return np.stack([pixels for _, pixels in kept]), [path for path, _ in kept], problems
