"""The default that needs no download: real photographs, synthetic defects, MVTec AD layout.

:func:`make_textures` cuts crops from photographs that ship inside
scikit-image's package folder (``skimage/data``, read from disk, never
downloaded), paints defects on some of them and writes each category in the
exact MVTec AD layout, so the MVTec loader and every later step run unchanged.

Categories (:data:`TEXTURE_CATEGORIES`), 128x128 PNGs:

- textures, crops of one photograph; training crops come from its top 320
  rows and test crops from its bottom 160 rows, so no test pixel was seen in
  training: ``brick`` (grey), ``grass`` (grey) and ``tissue`` (colour: a
  stained section of colonic glands, ``ihc.png``);
- objects, one item centred in every image, turned by a few degrees, shifted
  by a few source pixels and lit with a gain of 0.92-1.08, like a product
  photographed on a line: ``coin`` (grey, one coin of ``coins.png``) and
  ``cup`` (colour, the espresso cup of ``coffee.png``).

Each category has 80 ``train/good`` images, 20 ``test/good`` and 10 test
images of each defect type of :mod:`srlib.data.defects` (``hole``,
``scratch``, ``stain``, ``texture``: from a small dark pit to a patch of
another photograph with the same mean and spread), with masks in
``ground_truth/<defect>``. A mask is exactly the set of pixels that differ
from the clean crop. Everything is drawn from ``numpy.random.default_rng``
seeded with the seed and the sample's place, so a seed gives byte-identical
files.

Photographs (scikit-image's ``skimage/data/_fetchers.py`` documents each):

- ``brick.png``: Bricks25 from CC0Textures (cc0textures.com), CC0.
- ``grass.png``: "Grass 01" by linolafett on DeviantArt, CC0.
- ``gravel.png``: Gravel04 from CC0Textures, CC0.
- ``ihc.png``: immunohistochemical staining of colonic glands, Center for
  Microscopy And Molecular Imaging (CMMI); no known copyright restrictions.
- ``coins.png``: Greek coins from Pompeii, Brooklyn Museum Collection, no
  known copyright restrictions.
- ``coffee.png``: courtesy of Pikolo Espresso Bar, CC0 by the photographer
  (Rachel Michetti).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from srlib.data.defects import DEFECTS, MIN_CHANGE, PAINTERS, paint
from srlib.errors import SrlibError

SIZE = 128  # stored image size
COUNTS = {"train/good": 80, "test/good": 20}
PER_DEFECT = 10
MARK = "Written by `srlib data textures`"
README = "readme.txt"  # written last in each category folder; starts with MARK
_ROWS = {"train": (0, 320), "test": (352, 512)}  # rows of a texture photograph each split crops from


@dataclass(frozen=True)
class _Recipe:
    photo: str  # file in skimage/data
    foreign: str  # photograph the texture defects are cut from
    colour: bool
    # Objects only: the item's centre (x, y) in the photograph, the source window
    # (px) that becomes the image, the largest turn (degrees), the largest shift
    # (source px) and how far from the centre defects go (output px).
    centre: tuple[float, float] | None = None
    window: float = 0.0
    turn: float = 0.0
    shift: float = 0.0
    reach: float = 0.0

    @property
    def kind(self) -> str:
        return "object" if self.centre else "texture"


_RECIPES = {
    "brick": _Recipe("brick.png", "gravel.png", colour=False),
    "grass": _Recipe("grass.png", "brick.png", colour=False),
    "tissue": _Recipe("ihc.png", "gravel.png", colour=True),
    # A 60 px window turned by 20 degrees and shifted by 2 px stays clear of the
    # neighbouring coins (the nearest is 45 px from the centre); defects stay
    # on the coin, inside 55 % of its radius (26 source px).
    "coin": _Recipe("coins.png", "grass.png", colour=False, centre=(271.0, 119.0), window=60.0, turn=20.0,
                    shift=2.0, reach=0.55 * 26 * SIZE / 60),
    # The cup, its coffee and the spoon's root; a 240 px window turned by 10
    # degrees stays inside the 600x400 photograph.
    "cup": _Recipe("coffee.png", "gravel.png", colour=True, centre=(290.0, 180.0), window=240.0, turn=10.0,
                   shift=4.0, reach=40.0),
}
TEXTURE_CATEGORIES = tuple(_RECIPES)


@functools.lru_cache(maxsize=None)
def photograph(name: str, colour: bool = False) -> np.ndarray:
    """A photograph shipped in scikit-image's package folder: uint8, (H, W) grey or (H, W, 3) colour."""
    path = resources.files("skimage") / "data" / name
    if not path.is_file():
        raise SrlibError(f"scikit-image's bundled photograph {path} is missing; reinstall scikit-image (pip install --force-reinstall scikit-image)")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB" if colour else "L"))


def _rng(seed: int, category: str, split: str, defect: str, index: int) -> np.random.Generator:
    # Seeded by the sample's place, so every file is independent of the others.
    keys = [TEXTURE_CATEGORIES.index(category), ("train", "test").index(split), (("good",) + DEFECTS).index(defect), index]
    return np.random.default_rng([seed, *keys])


def clean_crop(category: str, split: str, rng: np.random.Generator) -> np.ndarray:
    """A defect-free uint8 image of ``category`` for ``split``: (SIZE, SIZE) grey or (SIZE, SIZE, 3) colour."""
    recipe = _RECIPES[category]
    photo = photograph(recipe.photo, recipe.colour)
    if recipe.kind == "texture":
        top, bottom = _ROWS[split]
        y = rng.integers(top, bottom - SIZE + 1)
        x = rng.integers(0, photo.shape[1] - SIZE + 1)
        return photo[y : y + SIZE, x : x + SIZE].copy()
    turn = np.radians(recipe.turn)
    angle = rng.uniform(-turn, turn)
    shift = rng.uniform(-recipe.shift, recipe.shift, size=2)
    gain = rng.uniform(0.92, 1.08)
    # Affine map from output pixels to source pixels: scale, turn, centre.
    scale = recipe.window / SIZE
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    cx, cy = np.array(recipe.centre) + shift
    half = SIZE / 2
    coeffs = (cos, -sin, cx - cos * half + sin * half, sin, cos, cy - sin * half - cos * half)
    turned = Image.fromarray(photo).transform((SIZE, SIZE), Image.Transform.AFFINE, coeffs, Image.Resampling.BICUBIC)
    return np.clip(np.asarray(turned, dtype=np.float64) * gain, 0, 255).round().astype(np.uint8)


def _defect_centre(recipe: _Recipe, rng: np.random.Generator) -> np.ndarray:
    if recipe.kind == "object":  # on the item, uniformly over a disc
        r, t = recipe.reach * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        return np.array([SIZE / 2 + r * np.cos(t), SIZE / 2 + r * np.sin(t)])
    return rng.uniform(20, SIZE - 20, size=2)


def texture_sample(category: str, split: str, defect: str, index: int, seed: int = 0):
    """One image of the bundled data, before it is written.

    Returns
    -------
    clean, image, mask : numpy.ndarray
        The defect-free crop and the image as written (uint8, (SIZE, SIZE) grey
        or (SIZE, SIZE, 3) colour), and the boolean (SIZE, SIZE) mask of the
        changed pixels (all False for good images).
    """
    rng = _rng(seed, category, split, defect, index)
    clean = clean_crop(category, split, rng)
    if defect == "good":
        return clean, clean, np.zeros(clean.shape[:2], bool)
    recipe = _RECIPES[category]
    pixels = clean.reshape(SIZE, SIZE, -1)
    centre = _defect_centre(recipe, rng)
    foreign = photograph(recipe.foreign, False)[..., None]
    region, painted = PAINTERS[defect](pixels.astype(np.float64), centre, rng, foreign)
    image = paint(pixels, region, painted, MIN_CHANGE[defect]).reshape(clean.shape)
    return clean, image, region


def _plan():
    """(split, defect, index) of every image of a category, in writing order."""
    for folder, count in COUNTS.items():
        split, defect = folder.split("/")
        yield from ((split, defect, i) for i in range(count))
    for defect in DEFECTS:
        yield from (("test", defect, i) for i in range(PER_DEFECT))


def _readme(category: str, seed: int) -> str:
    recipe = _RECIPES[category]
    return (
        f"{MARK} (seed {seed}): {recipe.kind} category {category!r} ({'colour' if recipe.colour else 'grey'}), "
        f"crops of scikit-image's {recipe.photo} with synthetic defects ({', '.join(DEFECTS)}; "
        f"the texture patches from {recipe.foreign}).\n"
        "Photograph sources and licences: see the srlib.data.textures docstring.\n"
    )


def _write_category(folder: Path, category: str, seed: int) -> None:
    (folder / "train" / "good").mkdir(parents=True)
    for split, defect, index in _plan():
        _, image, mask = texture_sample(category, split, defect, index, seed)
        target = folder / split / defect
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(target / f"{index:03d}.png")
        if defect != "good":
            gt = folder / "ground_truth" / defect
            gt.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask.astype(np.uint8) * 255).save(gt / f"{index:03d}_mask.png")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    sums = "".join(f"{_sha256(p)}  {p.relative_to(folder).as_posix()}\n" for p in files)
    (folder / README).write_text(_readme(category, seed) + f"\nsha256 of every file written:\n{sums}")


def _ours(folder: Path) -> bool:
    readme = folder / README
    return readme.is_file() and readme.read_text(errors="replace").startswith(MARK)


def _written() -> set[str]:
    """Every path (relative, ``/``-separated) that :func:`_write_category` writes, folders included."""
    files = {README}
    for split, defect, index in _plan():
        files.add(f"{split}/{defect}/{index:03d}.png")
        if defect != "good":
            files.add(f"ground_truth/{defect}/{index:03d}_mask.png")
    return files | {parent.as_posix() for name in files for parent in Path(name).parents if parent != Path(".")}


def _recorded(folder: Path) -> dict[str, str]:
    """The sha256 of every file the readme lists (``HASH  path`` lines, as sha256sum writes them)."""
    lines = (folder / README).read_text(errors="replace").splitlines()
    pairs = (line.split("  ", 1) for line in lines if len(line) > 66 and line[64:66] == "  ")
    return {name: digest for digest, name in pairs}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def not_ours(folder: Path) -> list[Path]:
    """What a category folder written by :func:`make_textures` holds that it did not write, or that changed since.

    Anything with a name it does not write (a file, a folder, a link), and any
    file it wrote whose sha256 is no longer the one its ``readme.txt`` records.
    """
    written, recorded, found = _written(), _recorded(folder), []
    for here, folders, files in os.walk(folder):
        for name in sorted(folders) + sorted(files):
            path = Path(here) / name
            relative = path.relative_to(folder).as_posix()
            if relative not in written or path.is_symlink():
                found.append(path)
            elif relative in recorded and recorded[relative] != _sha256(path):
                found.append(path)
        folders[:] = [name for name in folders if (Path(here) / name).relative_to(folder).as_posix() in written
                      and not (Path(here) / name).is_symlink()]
    return found


def make_textures(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write every texture category into ``out_dir`` in the MVTec AD layout.

    A category folder written earlier by this function is replaced, as long as
    it holds nothing else: a file someone added there or changed since, or any
    other folder in the way, is an error naming it, and nothing is written.
    Each category is built in a temporary folder beside it and renamed into place.

    Returns
    -------
    pathlib.Path
        ``out_dir``, to pass as ``root`` with ``dataset="mvtec"``.
    """
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise SrlibError(f"{out_dir} is a file; pass a folder (new or existing) for the texture categories")
    others = []
    for category in TEXTURE_CATEGORIES:
        folder = out_dir / category
        if folder.is_symlink() or (folder.exists() and not _ours(folder)):
            raise SrlibError(f"{folder} exists and was not written by srlib data textures; move it away or choose another folder")
        others += not_ours(folder) if folder.exists() else []
    if others:
        shown = ", ".join(str(p) for p in others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
        folders = sorted({p.relative_to(out_dir).parts[0] for p in others}, key=TEXTURE_CATEGORIES.index)
        raise SrlibError(f"{', '.join(folders)} in {out_dir} hold what srlib data textures did not write, or "
                         f"changed since it wrote it ({shown}); writing them again would remove it: move it out, "
                         "or choose another folder; nothing was written")
    out_dir.mkdir(parents=True, exist_ok=True)
    for category in TEXTURE_CATEGORIES:
        folder = out_dir / category
        staging = Path(tempfile.mkdtemp(prefix=f".{category}-", dir=out_dir))
        try:
            _write_category(staging / category, category, int(seed))
            if folder.exists():
                folder.rename(staging / "old")
            (staging / category).rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return out_dir
