"""The default that needs no download: real photographs, synthetic defects, MVTec AD layout.

:func:`make_textures` cuts crops from photographs that ship inside
scikit-image's package folder (``skimage/data``, read from disk, never
downloaded), paints defects on some of them and writes each category in the
exact MVTec AD layout, so the MVTec loader and every later step run unchanged.

Categories (:data:`TEXTURE_CATEGORIES`), grayscale 128x128 PNGs:

- ``brick`` (a texture): crops of ``brick.png``. Training crops come from
  the top 320 rows, test crops from the bottom 160 rows, so no test pixel was
  seen in training.
- ``coin`` (an object): one coin of ``coins.png`` (centre (271, 119), about
  52 px across), centred in every image, turned by up to 20 degrees, shifted by
  up to 2 source pixels and lit with a gain of 0.92-1.08: like a product
  photographed on a line, every image a different pose of the same part.

Each category has 80 ``train/good`` images, 20 ``test/good`` and 10 test
images of each defect type, with masks in ``ground_truth/<defect>``:

- ``scratch``: a bright (or, on bright ground, dark) curved line, 4-6 px wide;
- ``stain``: overlapping ellipses darkened towards a dark grey;
- ``hole``: a dark pit, darkest at its centre;
- ``foreign_texture``: a polygon cut from another photograph (gravel into
  brick, grass into coin) and pasted in.

Defects have hard edges and change every pixel they cover by at least
``MIN_CHANGE`` grey levels, so a mask is exactly the set of changed pixels.
Everything is drawn from ``numpy.random.default_rng`` seeded with the seed
and the sample's place, so a seed gives byte-identical files.

Photographs (scikit-image's ``skimage/data/_fetchers.py`` documents each):

- ``brick.png``: Bricks25 from CC0Textures (cc0textures.com), CC0;
  perspective-corrected, rotated, scaled, grayscale, 512x512.
- ``coins.png``: Greek coins from Pompeii, Brooklyn Museum Collection, no
  known copyright restrictions; 384x303 grayscale.
- ``gravel.png``: Gravel04 from CC0Textures, CC0; 512x512 grayscale.
- ``grass.png``: "Grass 01" by linolafett on DeviantArt, CC0; 512x512 grayscale.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from srlib.errors import SrlibError

SIZE = 128  # stored image size (the CPU preset trains at 64)
COUNTS = {"train/good": 80, "test/good": 20}
DEFECTS = ("scratch", "stain", "hole", "foreign_texture")
PER_DEFECT = 10
MIN_CHANGE = 24  # grey levels every defect pixel moves, at least
MARK = "Written by `srlib data textures`"


@dataclass(frozen=True)
class _Recipe:
    photo: str  # file in skimage/data
    foreign: str  # photograph pasted by foreign_texture defects
    kind: str  # "texture" or "object"


_RECIPES = {
    "brick": _Recipe("brick.png", "gravel.png", "texture"),
    "coin": _Recipe("coins.png", "grass.png", "object"),
}
TEXTURE_CATEGORIES = tuple(_RECIPES)

# brick: rows of the photograph each split crops from (a 32-row gap between).
_BRICK_ROWS = {"train": (0, 320), "test": (352, 512)}
# coin: centre (x, y) and the source window (px) that becomes the image;
# a 60 px window turned by any angle and shifted by 2 px stays clear of the
# neighbouring coins (the nearest is 45 px from the centre).
_COIN_CENTRE, _COIN_WINDOW = (271.0, 119.0), 60.0
_COIN_RADIUS = 26 * SIZE / _COIN_WINDOW  # in output pixels
# Poses vary by +-20 degrees, as on a line with a loose fixture; any angle is
# harder to learn in a CPU budget (image AUROC 0.66 against 0.73 after 110 steps).
_COIN_TURN = np.radians(20)


@functools.lru_cache(maxsize=None)
def photograph(name: str) -> np.ndarray:
    """A grayscale photograph shipped in scikit-image's package folder, as uint8."""
    path = resources.files("skimage") / "data" / name
    if not path.is_file():
        raise SrlibError(f"scikit-image's bundled photograph {path} is missing; reinstall scikit-image (pip install --force-reinstall scikit-image)")
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def _rng(seed: int, category: str, split: str, defect: str, index: int) -> np.random.Generator:
    # Seeded by the sample's place, so every file is independent of the others.
    keys = [TEXTURE_CATEGORIES.index(category), ("train", "test").index(split), (("good",) + DEFECTS).index(defect), index]
    return np.random.default_rng([seed, *keys])


def clean_crop(category: str, split: str, rng: np.random.Generator) -> np.ndarray:
    """A defect-free (SIZE, SIZE) uint8 image of ``category`` for ``split``."""
    photo = photograph(_RECIPES[category].photo)
    if category == "brick":
        top, bottom = _BRICK_ROWS[split]
        y = rng.integers(top, bottom - SIZE + 1)
        x = rng.integers(0, photo.shape[1] - SIZE + 1)
        return photo[y : y + SIZE, x : x + SIZE].copy()
    angle = rng.uniform(-_COIN_TURN, _COIN_TURN)
    shift = rng.uniform(-2, 2, size=2)
    gain = rng.uniform(0.92, 1.08)
    # Affine map from output pixels to source pixels: scale, turn, centre.
    scale = _COIN_WINDOW / SIZE
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    cx, cy = np.array(_COIN_CENTRE) + shift
    half = SIZE / 2
    coeffs = (cos, -sin, cx - cos * half + sin * half, sin, cos, cy - sin * half - cos * half)
    turned = Image.fromarray(photo).transform((SIZE, SIZE), Image.Transform.AFFINE, coeffs, Image.Resampling.BICUBIC)
    return np.clip(np.asarray(turned, dtype=np.float64) * gain, 0, 255).round().astype(np.uint8)


def _polygon_mask(points: np.ndarray) -> np.ndarray:
    canvas = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in points], fill=255)
    return np.asarray(canvas) > 0


def _ellipse(centre, rx: float, ry: float, angle: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)


def _defect_centre(category: str, rng: np.random.Generator) -> np.ndarray:
    if _RECIPES[category].kind == "object":  # on the coin, away from its rim
        r, t = _COIN_RADIUS * 0.55 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        return np.array([SIZE / 2 + r * np.cos(t), SIZE / 2 + r * np.sin(t)])
    return rng.uniform(20, SIZE - 20, size=2)


def _scratch(clean, centre, rng):
    length, angle, bend = rng.uniform(45, 85), rng.uniform(0, np.pi), rng.uniform(-12, 12)
    along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    ends = centre - along * length / 2, centre + along * length / 2
    control = centre + across * bend
    t = np.linspace(0, 1, 24)[:, None]
    curve = (1 - t) ** 2 * ends[0] + 2 * t * (1 - t) * control + t**2 * ends[1]  # quadratic Bezier
    canvas = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(canvas).line([tuple(p) for p in curve], fill=255, width=int(rng.integers(4, 7)), joint="curve")
    region = np.asarray(canvas) > 0
    light = clean[region].mean() < 140
    painted = 0.3 * clean + (180 if light else 10)
    return region, painted


def _stain(clean, centre, rng):
    region = np.zeros((SIZE, SIZE), bool)
    for _ in range(int(rng.integers(2, 5))):
        offset = rng.uniform(-9, 9, size=2)
        region |= _polygon_mask(_ellipse(centre + offset, rng.uniform(7, 15), rng.uniform(5, 11), rng.uniform(0, np.pi)))
    return region, 0.45 * clean + 0.55 * rng.uniform(20, 50)


def _hole(clean, centre, rng):
    rx, ry, angle = rng.uniform(7, 12), rng.uniform(6, 10), rng.uniform(0, np.pi)
    region = _polygon_mask(_ellipse(centre, rx, ry, angle))
    yy, xx = np.mgrid[:SIZE, :SIZE]
    depth = np.hypot(xx - centre[0], yy - centre[1]) / max(rx, ry)  # 0 at the centre
    return region, 10 + 30 * np.clip(depth, 0, 1)


def _foreign_texture(clean, centre, rng, foreign):
    n = int(rng.integers(6, 10))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = rng.uniform(14, 22) * rng.uniform(0.6, 1.0, n)
    region = _polygon_mask(centre + np.stack([r * np.cos(t), r * np.sin(t)], axis=1))
    y, x = rng.integers(0, foreign.shape[0] - SIZE + 1), rng.integers(0, foreign.shape[1] - SIZE + 1)
    return region, foreign[y : y + SIZE, x : x + SIZE].astype(np.float64)


def _paint(clean: np.ndarray, region: np.ndarray, painted: np.ndarray) -> np.ndarray:
    """``painted`` inside ``region``, ``clean`` outside; every region pixel moved >= MIN_CHANGE."""
    out = clean.astype(np.int16)
    new = np.clip(np.round(painted), 0, 255).astype(np.int16)
    # Too-small changes are pushed away from the clean value, so the mask is exact.
    pushed = np.where(clean < 128, out + MIN_CHANGE, out - MIN_CHANGE)
    new = np.where(np.abs(new - out) < MIN_CHANGE, pushed, new)
    return np.where(region, new, out).astype(np.uint8)


def texture_sample(category: str, split: str, defect: str, index: int, seed: int = 0):
    """One image of the texture data, before it is written.

    Returns
    -------
    clean, image, mask : numpy.ndarray
        (SIZE, SIZE) uint8: the defect-free crop, the image as written, and
        the boolean mask of painted pixels (all False for good images).
    """
    rng = _rng(seed, category, split, defect, index)
    clean = clean_crop(category, split, rng)
    if defect == "good":
        return clean, clean, np.zeros_like(clean, bool)
    centre = _defect_centre(category, rng)
    if defect == "foreign_texture":
        region, painted = _foreign_texture(clean, centre, rng, photograph(_RECIPES[category].foreign))
    else:
        region, painted = {"scratch": _scratch, "stain": _stain, "hole": _hole}[defect](clean, centre, rng)
    return clean, _paint(clean, region, painted), region


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
        f"{MARK} (seed {seed}): {recipe.kind} category {category!r}, crops of scikit-image's {recipe.photo} "
        f"with synthetic defects ({', '.join(DEFECTS)}; foreign texture from {recipe.foreign}).\n"
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
    (folder / "readme.txt").write_text(_readme(category, seed))


def _ours(folder: Path) -> bool:
    readme = folder / "readme.txt"
    return readme.is_file() and readme.read_text(errors="replace").startswith(MARK)


def make_textures(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write every texture category into ``out_dir`` in the MVTec AD layout.

    A category folder written earlier by this function is replaced; any other
    folder in the way is an error and nothing is written. Each category is
    built in a temporary folder beside it and renamed into place.

    Returns
    -------
    pathlib.Path
        ``out_dir``, to pass as ``root`` with ``dataset="mvtec"``.
    """
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise SrlibError(f"{out_dir} is a file; pass a folder (new or existing) for the texture categories")
    for category in TEXTURE_CATEGORIES:
        folder = out_dir / category
        if folder.exists() and not _ours(folder):
            raise SrlibError(f"{folder} exists and was not written by srlib data textures; move it away or choose another folder")
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
