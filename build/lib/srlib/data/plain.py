"""A plain folder of images, not a benchmark layout: what a practitioner has.

The folder is searched recursively (sub-folders are kept in the output names,
so two files named alike in different folders never collide), following
linked folders (a link back to a folder already searched is skipped). Names
starting with a dot are left alone, and so are folders an srlib command
wrote (a prediction's overlays are not new images, nor good ones): the
caller says how to recognise them (``skip``). Each kind of thing left alone
is said in one line. A file counts as an image by its extension (any that
Pillow can open: .png, .jpg, .tif, .bmp, .webp...); other files are left
alone and counted once. Images are decoded like the benchmarks' (any mode,
grey repeated over three channels, Lanczos-resized to a square), so a model
trained on a plain folder sees what one trained on MVTec AD sees.

A file that cannot be used (empty, unreadable, truncated, not an image)
yields one line naming it and the fix, and the others are still used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from srlib.data.images import decode_all, image_pixels
from srlib.errors import SrlibError


def image_suffixes() -> frozenset[str]:
    """Lower-case extensions Pillow can open (``.png``, ``.jpg``...; not those it can only write, such as ``.pdf``)."""
    Image.init()
    return frozenset(suffix.lower() for suffix, kind in Image.registered_extensions().items() if kind in Image.OPEN)


@dataclass
class ImageFolder:
    """The image files under a folder: paths, names relative to it, other files, and what was left alone.

    ``skipped`` holds one line per kind of thing left alone (hidden names,
    folders an srlib command wrote, links back to a folder already searched).
    """

    root: Path
    paths: list[Path]
    others: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        """Each path relative to ``root``, with ``/`` separators (the output names; see :func:`printable`)."""
        return [printable(path.relative_to(self.root).as_posix()) for path in self.paths]


def printable(text: str) -> str:
    """``text`` (a file name) with the bytes that are not UTF-8 written as ``\\xNN``: valid text for a CSV or a name."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _some(items: list[str], limit: int = 3) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def list_images(folder: str | os.PathLike, skip: Callable[[Path], str | None] | None = None,
                what: str = "--images") -> ImageFolder:
    """Every image file under ``folder``, recursively, sorted by relative path.

    ``skip(path)`` names the srlib command that wrote a folder (its outputs
    are left alone, with one line), or returns None.

    Raises
    ------
    SrlibError
        If ``folder`` is not a readable folder or holds no image file.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        what_is = "is a file" if root.exists() else "does not exist"
        raise SrlibError(f"{what} {root} {what_is}: give the folder that holds the images")
    suffixes = image_suffixes()
    paths, others, hidden, written, looped = [], [], [], [], []
    searched = set()

    def refuse(err: OSError):
        raise SrlibError(f"cannot list {err.filename} ({err.strerror}): make it readable (chmod a+rx)")

    for here, folders, files in os.walk(root, onerror=refuse, followlinks=True):
        here = Path(here)
        identity = (here.stat().st_dev, here.stat().st_ino)
        writer = skip(here) if skip else None
        if identity in searched or writer:
            if identity in searched:
                looped.append(f"{here.relative_to(root).as_posix()}/")
            else:
                written.append(f"{here.relative_to(root).as_posix() if here != root else here}/ ({writer}'s output)")
            folders[:] = []
            continue
        searched.add(identity)
        hidden += [f"{name}/" for name in folders if name.startswith(".")]
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(files):
            path = here / name
            if name.startswith("."):
                hidden.append(path.relative_to(root).as_posix())
            else:
                (paths if path.suffix.lower() in suffixes else others).append(path)
    skipped = []
    if written:
        skipped.append(f"left alone what srlib wrote under {root}, not images to use: {_some(written)}")
    if hidden:
        skipped.append(f"left alone {len(hidden)} hidden name(s) under {root} (starting with a dot: {_some(hidden)}); "
                       "rename them to use them")
    if looped:
        skipped.append(f"left alone {len(looped)} linked folder(s) under {root} already searched by another path: "
                       f"{_some(looped)}")
    if not paths:
        found = f" (only {len(others)} other files, e.g. {others[0].name})" if others else ""
        also = f"; {'; '.join(skipped)}" if skipped else ""
        raise SrlibError(f"no image files under {root}{found}: give a folder of .png, .jpg, .tif... images{also}")
    key = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    return ImageFolder(root, sorted(paths, key=key), sorted(others, key=key), skipped)


def checked_pixels(path: Path, size: int) -> np.ndarray:
    """(3, size, size) uint8 as for a benchmark image, or ``SrlibError`` naming the file and the fix."""
    try:
        empty = path.stat().st_size == 0
    except OSError as err:
        raise SrlibError(f"{path} cannot be read ({err.strerror}); check the file") from None
    if empty:
        raise SrlibError(f"{path} is empty (0 bytes); replace it with an intact copy or remove it")
    return image_pixels(path, size)


def decode_images(paths: list[Path], size: int, desc: str = "reading",
                  progress: bool = True) -> list[tuple[np.ndarray | None, str | None]]:
    """Decode every path: ``(pixels, None)``, or ``(None, the one-line problem)`` for a file that failed."""

    def attempt(path):
        try:
            return checked_pixels(path, size), None
        except SrlibError as err:
            return None, str(err)

    return decode_all(attempt, paths, desc, progress)


def read_folder(folder: str | os.PathLike, size: int, skip: Callable[[Path], str | None] | None = None,
                progress: bool = True) -> tuple[np.ndarray, list[Path], list[str]]:
    """Every readable image under ``folder``: uint8 (N, 3, size, size), their paths, one line per thing left out.

    The lines: what :func:`list_images` left alone, then one per file that could not be read.
    """
    found = list_images(folder, skip)
    decoded = decode_images(found.paths, size, f"reading {found.root.name or found.root}", progress)
    kept = [(path, pixels) for path, (pixels, _) in zip(found.paths, decoded) if pixels is not None]
    problems = [problem for _, problem in decoded if problem]
    if not kept:
        raise SrlibError(f"none of the {len(found.paths)} image files under {found.root} can be read "
                         f"(the first: {problems[0]})")
    return np.stack([pixels for _, pixels in kept]), [path for path, _ in kept], found.skipped + problems
