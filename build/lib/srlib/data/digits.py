"""One-class digits: scikit-learn's bundled 8x8 digits as a tiny anomaly-detection task.

One digit is normal; training images are that digit only, the test split
holds held-out images of it (label 0) and of every other digit (label 1).
Each class is split by its own seeded permutation, so the split is the same
on every machine. Images are upsampled with Pillow's bilinear filter (the
U-Net needs at least 16x16), scaled to [-1, 1] and repeated over three
channels, like the RGB images the U-Net takes.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits
from torch.utils.data import Dataset

from srlib.errors import SrlibError


class DigitsDataset(Dataset):
    """Items are dicts: ``image`` float (3, S, S) in [-1, 1], ``label`` (0 normal,
    1 anomaly), ``digit`` (0-9) and ``index`` (the row of ``load_digits()``)."""

    def __init__(self, images: torch.Tensor, labels: list[int], digits: list[int], indices: list[int]):
        self.images, self.labels, self.digits, self.indices = images, labels, digits, indices

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": self.labels[i], "digit": self.digits[i], "index": self.indices[i]}


def upsample_digit(pixels: np.ndarray, size: int) -> np.ndarray:
    """An 8x8 digit (values 0-16) as a (size, size) float array in [0, 1], bilinear."""
    image = Image.fromarray((pixels / 16.0).astype(np.float32))  # mode "F"
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR))


def split_indices(targets: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class seeded split of row indices into (train, test), both sorted."""
    train, test = [], []
    for digit in range(10):
        rows = np.random.default_rng([seed, digit]).permutation(np.flatnonzero(targets == digit))
        n_test = int(round(test_fraction * len(rows)))
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def one_class_digits(
    normal: int = 0,
    split: str = "train",
    image_size: int = 16,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> DigitsDataset:
    """The one-class digits task.

    Parameters
    ----------
    normal : int
        The normal digit, 0-9.
    split : {"train", "test"}
        train: the normal digit only; test: held-out images of all digits.
    image_size : int
        Side after upsampling, at least 16.
    test_fraction : float
        Share of each digit's images held out for the test split.
    seed : int
        Seeds the per-digit split.
    """
    if normal not in range(10):
        raise SrlibError(f"normal digit {normal!r} is not one of 0-9")
    if split not in ("train", "test"):
        raise SrlibError(f"unknown split {split!r}; choose train or test")
    if image_size < 16:
        raise SrlibError(f"image_size {image_size} is too small for the U-Net; use 16 or more")
    if not 0 < test_fraction < 1:
        raise SrlibError(f"test_fraction {test_fraction} must lie strictly between 0 and 1")
    digits = load_digits()
    train, test = split_indices(digits.target, test_fraction, seed)
    rows = train[digits.target[train] == normal] if split == "train" else test
    pixels = np.stack([upsample_digit(digits.images[r], image_size) for r in rows])
    images = torch.from_numpy(pixels * 2 - 1).float()[:, None].repeat(1, 3, 1, 1)
    targets = [int(digits.target[r]) for r in rows]
    return DigitsDataset(images, [int(t != normal) for t in targets], targets, [int(r) for r in rows])
