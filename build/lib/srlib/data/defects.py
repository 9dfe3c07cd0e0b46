"""Synthetic defects of graded difficulty, painted on (SIZE, SIZE, C) uint8 crops.

Each painter takes the clean crop (as float64, channels last), the defect's
centre and a generator, and returns the boolean region it changes and the
values it paints there. :func:`paint` then guarantees that every pixel of the
region moves by at least the defect's ``min_change`` grey levels in some
channel, so a defect's mask is exactly the set of pixels that differ from the
clean crop.

From easiest to hardest, as a score model sees them:

- ``hole``: a small dark pit (radius 3-6 px) with a darker centre;
- ``scratch``: a thin curved line (2-3 px) brighter or darker than its ground
  by 35-70 levels;
- ``stain``: overlapping ellipses that shift the colour by 14-24 levels: a
  darkening in grey images, a change of hue that keeps the luminance in
  colour ones;
- ``texture``: a patch cut from another photograph whose mean and standard
  deviation (per channel) are matched to the pixels it replaces, so only
  the texture changes, not the intensity.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

DEFECTS = ("hole", "scratch", "stain", "texture")
# Grey levels every pixel of a defect moves at least (in its largest channel).
MIN_CHANGE = {"hole": 24, "scratch": 24, "stain": 12, "texture": 6}
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601, as Pillow's convert("L")


def _polygon_mask(points: np.ndarray, size: int) -> np.ndarray:
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in points], fill=255)
    return np.asarray(canvas) > 0


def _ellipse(centre, rx: float, ry: float, angle: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)


def hole(clean, centre, rng, foreign=None):
    size = clean.shape[0]
    rx, ry, angle = rng.uniform(3, 6), rng.uniform(3, 6), rng.uniform(0, np.pi)
    region = _polygon_mask(_ellipse(centre, rx, ry, angle), size)
    yy, xx = np.mgrid[:size, :size]
    depth = np.clip(np.hypot(xx - centre[0], yy - centre[1]) / max(rx, ry), 0, 1)  # 0 at the centre
    floor = clean[region].mean(axis=0) * 0.35  # keeps the ground's colour, much darker
    return region, floor * (0.4 + 0.6 * depth[..., None])


def scratch(clean, centre, rng, foreign=None):
    size = clean.shape[0]
    length, angle, bend = rng.uniform(30, 60), rng.uniform(0, np.pi), rng.uniform(-8, 8)
    along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    ends = centre - along * length / 2, centre + along * length / 2
    control = centre + across * bend
    t = np.linspace(0, 1, 24)[:, None]
    curve = (1 - t) ** 2 * ends[0] + 2 * t * (1 - t) * control + t**2 * ends[1]  # quadratic Bezier
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).line([tuple(p) for p in curve], fill=255, width=int(rng.integers(2, 4)), joint="curve")
    region = np.asarray(canvas) > 0
    sign = 1.0 if clean[region].mean() < 128 else -1.0  # lighter on dark ground, darker on light
    return region, clean + sign * rng.uniform(35, 70)


def stain(clean, centre, rng, foreign=None):
    size, channels = clean.shape[0], clean.shape[2]
    region = np.zeros((size, size), bool)
    for _ in range(int(rng.integers(2, 4))):
        offset = rng.uniform(-6, 6, size=2)
        region |= _polygon_mask(_ellipse(centre + offset, rng.uniform(5, 11), rng.uniform(4, 8), rng.uniform(0, np.pi)), size)
    amount = rng.uniform(14, 24)
    if channels == 1:
        return region, clean - amount
    # A colour shift orthogonal to the luminance weights: the hue changes, the brightness does not.
    direction = rng.normal(size=3)
    direction -= _LUMA * (direction @ _LUMA) / (_LUMA @ _LUMA)
    return region, clean + amount * direction / np.abs(direction).max()


def texture(clean, centre, rng, foreign):
    size = clean.shape[0]
    n = int(rng.integers(6, 10))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = rng.uniform(10, 18) * rng.uniform(0.6, 1.0, n)
    region = _polygon_mask(centre + np.stack([r * np.cos(t), r * np.sin(t)], axis=1), size)
    y, x = rng.integers(0, foreign.shape[0] - size + 1), rng.integers(0, foreign.shape[1] - size + 1)
    patch = foreign[y : y + size, x : x + size].astype(np.float64)
    if patch.shape[2] != clean.shape[2]:
        patch = np.repeat(patch[..., :1], clean.shape[2], axis=2)
    # Per channel, the patch takes the mean and spread of the pixels it replaces.
    inside, theirs = clean[region], patch[region]
    scale = inside.std(axis=0) / np.maximum(theirs.std(axis=0), 1e-6)
    return region, (patch - theirs.mean(axis=0)) * scale + inside.mean(axis=0)


PAINTERS = {"hole": hole, "scratch": scratch, "stain": stain, "texture": texture}


def paint(clean: np.ndarray, region: np.ndarray, painted: np.ndarray, min_change: int) -> np.ndarray:
    """``painted`` inside ``region``, ``clean`` outside; every region pixel moved >= ``min_change`` in some channel.

    A pixel whose painted value lies closer than that to the clean one is moved
    by exactly ``min_change`` in every channel, away from mid-grey (so no clip
    can undo it): the mask stays the exact set of changed pixels.
    """
    out = clean.astype(np.int16)
    new = np.clip(np.round(painted), 0, 255).astype(np.int16)
    pushed = np.where(out < 128, out + min_change, out - min_change)
    small = (np.abs(new - out).max(axis=2, keepdims=True) < min_change)
    new = np.where(small, pushed, new)
    return np.where(region[..., None], new, out).astype(np.uint8)
