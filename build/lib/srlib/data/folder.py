"""MVTec AD, MPDD and BTAD categories as torch Datasets, decoded once.

Every image is decoded and resized when the dataset is built and kept in
memory as uint8 (a 3000-epoch run must not decode its PNGs 3000 times); an
item is converted to float on access. Images are converted to RGB (grayscale
categories are repeated over the three channels) and resized with Lanczos to
a square ``image_size``: images that are not square, such as BTAD product 03
(800x600), are squashed to a square rather than cropped. Masks are resized
with nearest-neighbour to ``mask_size`` after binarising (:mod:`srlib.data.images`).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from srlib.data.images import decode_all, image_pixels, mask_pixels
from srlib.data.layouts import SPLITS, Sample, Scan, _images, _list, checked_scan, every_mask_empty, find_category, get_layout
from srlib.errors import SrlibError


class FolderDataset(Dataset):
    """Images of one split of one category, decoded and resized once.

    Items are dicts: ``image`` float (3, S, S) in [-1, 1], ``label`` (0 good,
    1 defective), ``mask`` float (1, M, M) of 0/1 (zeros for good images),
    ``defect`` (the folder name) and ``path``.

    Attributes
    ----------
    images : torch.Tensor
        uint8 (N, 3, S, S), the cache itself.
    labels, defects, paths : list
        Per item, in order.
    """

    def __init__(self, samples: list[Sample], image_size: int = 192, mask_size: int = 256, desc: str = "decoding",
                 progress: bool = True):
        self.image_size, self.mask_size = int(image_size), int(mask_size)
        self.labels = [s.label for s in samples]
        self.defects = [s.defect for s in samples]
        self.paths = [str(s.path) for s in samples]
        pixels = decode_all(lambda s: image_pixels(s.path, self.image_size), samples, desc, progress)
        self.images = torch.from_numpy(np.stack(pixels)) if pixels else torch.empty(0, 3, image_size, image_size, dtype=torch.uint8)
        # Masks of defective images only; good images get zeros on access.
        masked = [i for i, s in enumerate(samples) if s.mask is not None]
        masks = decode_all(lambda i: mask_pixels(samples[i].mask, self.mask_size), masked, f"{desc} masks", progress)
        self._masks = [None] * len(samples)
        for i, mask in zip(masked, masks):
            self._masks[i] = torch.from_numpy(mask)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        mask = self._masks[index]
        return {
            # Same arithmetic as ToTensor then 2x - 1.
            "image": self.images[index].float().div(255).mul(2).sub(1),
            "label": self.labels[index],
            "mask": mask.float() if mask is not None else torch.zeros(1, self.mask_size, self.mask_size),
            "defect": self.defects[index],
            "path": self.paths[index],
        }

    def __repr__(self) -> str:
        good = self.labels.count(0)
        return f"{type(self).__name__}({len(self)} images: {good} good, {len(self) - good} defective; {self.image_size}px)"


def folder_dataset(
    dataset: str,
    root: str | os.PathLike,
    category: str,
    split: str,
    image_size: int = 192,
    mask_size: int = 256,
    progress: bool = True,
) -> FolderDataset:
    """One split of one category of MVTec AD, MPDD or BTAD, decoded once into memory.

    Parameters
    ----------
    dataset : {"mvtec", "mpdd", "btad"}
        The folder layout. ``srlib data textures`` output uses "mvtec".
    root : path
        The folder that holds the category folders.
    category : str
        A category folder name (e.g. "bottle", "01", "brick").
    split : {"train", "test"}
        train holds only good images; test holds good and defective ones.
    image_size, mask_size : int
        Square sizes after resizing (non-square images are squashed).
    progress : bool
        A bar while many images are decoded.

    Raises
    ------
    SrlibError
        The first problem with the folder (``srlib data check`` lists them all); for
        the test split also when the metrics would be undefined (no good or no
        defective images, every mask empty), before any image is decoded where it can be.
    """
    if split not in SPLITS:
        raise SrlibError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    scan = checked_scan(dataset, root, category, scored=split == "test")
    data = FolderDataset(scan.samples[split], image_size, mask_size, desc=f"{scan.folder.name}/{split}", progress=progress)
    if split == "test" and not any(mask is not None and mask.any() for mask in data._masks):
        raise SrlibError(every_mask_empty(scan.folder))
    return data


def good_training_images(dataset: str, root: str | os.PathLike, category: str, image_size: int = 192) -> FolderDataset:
    """The good training images of a category, read without looking at any other folder.

    For what may only ever see normal images (choosing k, :mod:`srlib.run.kselect`): the
    test split and the masks are neither listed nor required.
    """
    layout = get_layout(dataset)
    folder = find_category(layout, root, category) / "train" / layout.good
    scan = Scan(folder)
    problems = scan.problems
    names = _list(folder, scan, "it holds the category's defect-free training images")
    paths = _images(folder, names, problems) if names is not None else []
    if not problems and not paths:
        problems.append(f"{folder} holds no images; put the defect-free training images there")
    if problems:
        raise SrlibError(problems[0])
    return FolderDataset([Sample(p, layout.good, 0, None) for p in paths], image_size, desc=f"{category}/train")
