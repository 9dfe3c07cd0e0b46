"""Where the files of MVTec AD, MPDD and BTAD live, and what is wrong with a folder.

The three benchmarks share one shape, with different names:

- MVTec AD and MPDD: ``<root>/<category>/train/good``, ``test/good``,
  ``test/<defect>`` and ``ground_truth/<defect>/<stem>_mask.png``.
- BTAD: ``<root>/<product>/train/ok``, ``test/ok``, ``test/ko`` and
  ``ground_truth/ko/<stem>.png`` (images and masks may be .bmp or .png).

:func:`find_category` resolves a category folder (one error when it cannot);
:func:`scan_category` lists its samples and every structural problem, one
line each, naming the path and the fix. Decoding is left to the readers.
Names starting with a dot (``.DS_Store``...) are ignored everywhere; loose
files in the root or a category folder (``license.txt``) too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from srlib.errors import SrlibError

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Layout:
    """Folder names of one benchmark."""

    name: str  # as passed to folder_dataset / --dataset
    title: str
    categories: tuple[str, ...]
    good: str  # folder of defect-free images in train/ and test/
    mask_tail: str  # mask file stem = image stem + mask_tail

    def mask_stem(self, mask: Path) -> str | None:
        """The image stem a mask file belongs to (None if misnamed)."""
        stem = mask.stem
        if not stem.endswith(self.mask_tail):
            return None
        return stem[: len(stem) - len(self.mask_tail)] if self.mask_tail else stem

    def expected_mask(self, gt_dir: Path, image: Path) -> Path:
        return gt_dir / f"{image.stem}{self.mask_tail}.png"


LAYOUTS = {
    "mvtec": Layout(
        "mvtec",
        "MVTec AD",
        (
            "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
            "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
        ),
        "good",
        "_mask",
    ),
    "mpdd": Layout(
        "mpdd",
        "MPDD",
        ("bracket_black", "bracket_brown", "bracket_white", "connector", "metal_plate", "tubes"),
        "good",
        "_mask",
    ),
    "btad": Layout("btad", "BTAD", ("01", "02", "03"), "ok", ""),
}


# Good training images per MVTec AD category, as the dataset ships them (3,629
# in all): what the paper's 3000-epoch schedule costs scales with these.
MVTEC_TRAIN_IMAGES = {
    "bottle": 209, "cable": 224, "capsule": 219, "carpet": 280, "grid": 264, "hazelnut": 391, "leather": 245,
    "metal_nut": 220, "pill": 267, "screw": 320, "tile": 230, "toothbrush": 60, "transistor": 213, "wood": 247,
    "zipper": 240,
}


@dataclass(frozen=True)
class Sample:
    """One image of a split: its file, defect folder, label and mask file."""

    path: Path
    defect: str
    label: int  # 0 good, 1 defective
    mask: Path | None  # None for good images


@dataclass
class Scan:
    """What :func:`scan_category` found in one category folder."""

    folder: Path
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {s: [] for s in SPLITS})
    problems: list[str] = field(default_factory=list)


def get_layout(dataset: str) -> Layout:
    try:
        return LAYOUTS[dataset]
    except KeyError:
        raise SrlibError(f"unknown dataset {dataset!r}; choose one of {', '.join(LAYOUTS)}") from None


def _visible(names) -> list[str]:
    return sorted(n for n in names if not n.startswith("."))


def category_folders(root: Path) -> list[str]:
    """Names of the (visible) folders in a dataset root."""
    return [n for n in _visible(os.listdir(root)) if (root / n).is_dir()]


def check_root(layout: Layout, root: str | os.PathLike) -> Path:
    """The root as a Path, or one error saying why it is not a dataset root."""
    root = Path(root).expanduser()
    hint = f"the folder that holds the {layout.title} category folders ({', '.join(layout.categories[:2])}, ...)"
    if not root.exists():
        raise SrlibError(f"dataset root {root} does not exist; pass {hint}")
    if not root.is_dir():
        raise SrlibError(f"dataset root {root} is a file, not a folder; pass {hint}")
    try:
        os.listdir(root)
    except PermissionError:
        raise SrlibError(f"dataset root {root} cannot be listed (permission denied); make it readable: chmod a+rx '{root}'") from None
    if (root / "train").is_dir() and (root / "test").is_dir():
        raise SrlibError(f"{root} is itself a category folder (it holds train/ and test/); pass its parent {root.parent} as the root")
    return root


def find_category(layout: Layout, root: str | os.PathLike, category: str) -> Path:
    """The category folder, or one error naming what is there instead.

    Names outside the benchmark's list are accepted when their folder exists:
    other data in the same layout (e.g. ``srlib data textures``) loads the same way.
    """
    root = check_root(layout, root)
    folder = root / category
    found = category_folders(root)
    there = f"the root holds: {', '.join(found)}" if found else "the root holds no category folders"
    if folder.is_dir():
        return folder
    if folder.exists():
        raise SrlibError(f"{folder} is a file where the category folder should be; {there}")
    if category not in layout.categories:
        raise SrlibError(
            f"unknown {layout.title} category {category!r} (and no folder {folder}); "
            f"valid: {', '.join(layout.categories)}; {there}"
        )
    raise SrlibError(f"category folder {folder} does not exist; {there}; pass one of those or point the root at the {layout.title} folder")


def _looks_like(folder: Path) -> Layout | None:
    """The layout whose good/defect folder names a category folder uses."""
    for layout in (LAYOUTS["btad"], LAYOUTS["mvtec"]):
        if (folder / "train" / layout.good).is_dir() or (layout is LAYOUTS["btad"] and (folder / "test" / "ko").is_dir()):
            return layout
    return None


def _list(folder: Path, problems: list[str], what: str = "") -> list[str] | None:
    """Visible entries of a folder that must exist; None (and a problem) if it cannot be listed."""
    if not folder.exists():
        problems.append(f"{folder} is missing; {what}")
        return None
    if not folder.is_dir():
        problems.append(f"{folder} is a file where a folder should be; {what}")
        return None
    try:
        return _visible(os.listdir(folder))
    except PermissionError:
        problems.append(f"{folder} cannot be listed (permission denied); make it readable: chmod a+rx '{folder}'")
        return None


def _images(folder: Path, names: list[str], problems: list[str]) -> list[Path]:
    """Image files among ``names``; anything else in an image folder is a problem."""
    images = []
    for name in names:
        path = folder / name
        if path.is_dir():
            problems.append(f"{path} is a folder inside an image folder; move it out of {folder}")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
        else:
            problems.append(f"{path} is not an image (only {', '.join(IMAGE_SUFFIXES)} are read); move it out of {folder}")
    return images


def scan_category(layout: Layout, folder: Path) -> Scan:
    """List the samples of a category folder and every structural problem."""
    scan = Scan(folder)
    problems = scan.problems
    other = _looks_like(folder)
    if other is not None and other.good != layout.good:
        title = "MVTec AD / MPDD" if other.name == "mvtec" else other.title
        problems.append(
            f"{folder} looks like the {title} layout (train/{other.good}), not {layout.title}; "
            f"pass dataset={other.name!r} (--dataset {other.name})"
        )
        return scan
    shape = (
        f"the {layout.title} layout needs train/{layout.good}, test/{layout.good}, "
        f"test/<defect> and ground_truth/<defect>"
    )
    gt_root = folder / "ground_truth"
    if gt_root.exists() and not gt_root.is_dir():
        problems.append(f"{gt_root} is a file where a folder should be; it holds one folder of masks per defect type")
    for split in SPLITS:
        names = _list(folder / split, problems, shape)
        if names is None:
            continue
        for name in names:
            if not (folder / split / name).is_dir():
                problems.append(f"{folder / split / name} is a file where a folder should be; {split}/ holds only folders of images ({shape})")
        if layout.good not in names:
            problems.append(f"{folder / split / layout.good} is missing; {shape}")
        defects = [layout.good] if split == "train" else [n for n in names if (folder / split / n).is_dir()]
        for defect in defects:
            image_dir = folder / split / defect
            entries = _list(image_dir, problems, shape) if image_dir.is_dir() else None
            if entries is None:
                continue
            images = _images(image_dir, entries, problems)
            if split == "train" and not images:
                problems.append(f"{image_dir} holds no images; put the defect-free training images there")
            if defect == layout.good:
                scan.samples[split] += [Sample(p, defect, 0, None) for p in images]
            else:
                scan.samples[split] += _pair_masks(layout, folder, defect, images, problems)
    _orphan_masks(layout, folder, scan, problems)
    return scan


def _masks(layout: Layout, gt_dir: Path, problems: list[str]) -> dict[str, Path]:
    """Mask files of one ground-truth folder, keyed by the image stem they belong to."""
    if not gt_dir.is_dir():
        return {}
    names = _list(gt_dir, problems)
    if names is None:
        return {}
    masks = {}
    for path in _images(gt_dir, names, problems):
        stem = layout.mask_stem(path)
        # A misnamed mask keys to its own name, so it is reported as having no image.
        masks[path.name if stem is None else stem] = path
    return masks


def _pair_masks(layout: Layout, folder: Path, defect: str, images: list[Path], problems: list[str]) -> list[Sample]:
    gt_dir = folder / "ground_truth" / defect
    masks = _masks(layout, gt_dir, [])  # problems inside are reported by _orphan_masks
    samples = []
    for image in images:
        mask = masks.get(image.stem)
        if mask is None:
            problems.append(
                f"defective image {image} has no mask; expected {layout.expected_mask(gt_dir, image)}: add the mask or move the image out"
            )
        samples.append(Sample(image, defect, 1, mask))
    return samples


def _orphan_masks(layout: Layout, folder: Path, scan: Scan, problems: list[str]) -> None:
    gt_root = folder / "ground_truth"
    if not gt_root.is_dir():
        return
    paired = {s.mask for s in scan.samples["test"] if s.mask is not None}
    for defect in _list(gt_root, problems) or []:
        gt_dir = gt_root / defect
        if not gt_dir.is_dir():
            problems.append(f"{gt_dir} is a file where a folder should be; ground_truth/ holds one folder of masks per defect type")
            continue
        for stem, mask in _masks(layout, gt_dir, problems).items():
            if mask not in paired:
                image = folder / "test" / defect / f"{stem}.png"
                problems.append(f"mask {mask} has no image (expected one like {image}); remove the mask or restore its image")
