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
    unlisted: set[Path] = field(default_factory=set)  # folders that exist but could not be listed (reported once)


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


def category_name(root: str | os.PathLike, category: str) -> str:
    """The folder name a category names; a path to it (as tab completion gives: ``/data/mvtec/bottle/``) too.

    A path is taken relative to the working folder, like any path on a command
    line, and must lead to a folder directly inside ``root``.
    """
    if not any(sep and sep in category for sep in (os.sep, os.altsep)) and category not in (".", "..", "~"):
        return category
    folder = Path(category).expanduser().resolve()
    root = Path(root).expanduser().resolve()
    if folder.parent != root:
        raise SrlibError(f"category {category!r} is a path to {folder}, which is not a folder directly inside the root "
                         f"{root}; pass the category's folder name (e.g. bottle), or make its parent the root")
    return folder.name


def refuse_inside_root(root: str | os.PathLike, path: str | os.PathLike, what: str) -> None:
    """Refuse to write ``path`` (``what``, e.g. "--out runs") inside the dataset ``root``: srlib never writes there."""
    root, target = Path(root).expanduser().resolve(), Path(path).expanduser().resolve()
    if target == root or root in target.parents:
        raise SrlibError(f"{what} would write into the dataset root {root} ({target}); srlib never writes into a dataset: "
                         f"choose an output folder outside it")


def find_category(layout: Layout, root: str | os.PathLike, category: str) -> Path:
    """The category folder, or one error naming what is there instead.

    Names outside the benchmark's list are accepted when their folder exists:
    other data in the same layout (e.g. ``srlib data textures``) loads the same way.
    """
    root = check_root(layout, root)
    folder = root / category_name(root, category)
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
        try:
            if (folder / "train" / layout.good).is_dir() or (layout is LAYOUTS["btad"] and (folder / "test" / "ko").is_dir()):
                return layout
        except OSError:  # an unreadable train/ or test/ is reported when it is listed
            pass
    return None


def _list(folder: Path, scan: Scan, what: str = "") -> list[str] | None:
    """Visible entries of a folder that must exist; None (and one problem, once) if it cannot be listed."""
    if folder in scan.unlisted:
        return None
    try:
        if not folder.exists():
            scan.problems.append(f"{folder} is missing; {what}")
            return None
        if not folder.is_dir():
            scan.problems.append(f"{folder} is a file where a folder should be; {what}")
            return None
        names = _visible(os.listdir(folder))
        if names:  # a folder that is readable but not searchable lists names it cannot open
            os.stat(folder / names[0])
        return names
    except OSError as err:
        scan.unlisted.add(folder)
        if isinstance(err, PermissionError):
            scan.problems.append(f"{folder} cannot be listed (permission denied); make it readable: chmod a+rx '{folder}'")
        else:
            scan.problems.append(f"{folder} cannot be listed ({err.strerror or err}); check the disk or network share it is on")
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
    """List the samples of a category folder and every structural problem.

    A folder that cannot be listed is one problem; what cannot be known
    without it (which images or masks are missing) is not guessed at.
    """
    scan = Scan(folder)
    problems = scan.problems
    if _list(folder, scan) is None:
        return scan
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
    defect_folders = _list(gt_root, scan) if gt_root.is_dir() else None
    for split in SPLITS:
        names = _list(folder / split, scan, shape)
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
            entries = _list(image_dir, scan, shape) if image_dir.is_dir() else None
            if entries is None:
                continue
            images = _images(image_dir, entries, problems)
            if split == "train" and not images:
                problems.append(f"{image_dir} holds no images; put the defect-free training images there")
            if defect == layout.good:
                scan.samples[split] += [Sample(p, defect, 0, None) for p in images]
            else:
                scan.samples[split] += _pair_masks(layout, scan, defect, images)
    _orphan_masks(layout, scan, defect_folders or [])
    return scan


def _masks(layout: Layout, gt_dir: Path, scan: Scan, problems: list[str]) -> dict[str, Path] | None:
    """Mask files of one ground-truth folder, keyed by the image stem they belong to (None: unlistable)."""
    if gt_dir.parent in scan.unlisted:
        return None
    if not gt_dir.is_dir():
        return {}
    names = _list(gt_dir, scan)
    if names is None:
        return None
    masks = {}
    for path in _images(gt_dir, names, problems):
        stem = layout.mask_stem(path)
        # A misnamed mask keys to its own name, so it is reported as having no image.
        masks[path.name if stem is None else stem] = path
    return masks


def _pair_masks(layout: Layout, scan: Scan, defect: str, images: list[Path]) -> list[Sample]:
    gt_dir = scan.folder / "ground_truth" / defect
    masks = _masks(layout, gt_dir, scan, [])  # stray files in it are reported by _orphan_masks
    if masks is None:  # the listing problem is the one report
        return [Sample(image, defect, 1, None) for image in images]
    samples = []
    for image in images:
        mask = masks.get(image.stem)
        if mask is None:
            scan.problems.append(
                f"defective image {image} has no mask; expected {layout.expected_mask(gt_dir, image)}: add the mask or move the image out"
            )
        samples.append(Sample(image, defect, 1, mask))
    return samples


def _orphan_masks(layout: Layout, scan: Scan, defects: list[str]) -> None:
    gt_root = scan.folder / "ground_truth"
    paired = {s.mask for s in scan.samples["test"] if s.mask is not None}
    for defect in defects:
        gt_dir = gt_root / defect
        if not gt_dir.is_dir():
            scan.problems.append(f"{gt_dir} is a file where a folder should be; ground_truth/ holds one folder of masks per defect type")
            continue
        masks = _masks(layout, gt_dir, scan, scan.problems)
        image_dir = scan.folder / "test" / defect
        if masks is None or {image_dir, image_dir.parent} & scan.unlisted:  # which images exist is unknown
            continue
        for stem, mask in masks.items():
            if mask not in paired:
                scan.problems.append(f"mask {mask} has no image (expected one like {image_dir / stem}.png); remove the mask or restore its image")


def unscorable_test_split(layout: Layout, scan: Scan) -> str | None:
    """Why the test split of a scanned category cannot be scored, or None.

    Image AUROC needs good and defective test images; pixel AUROC and AUPRO
    need masks (their content is checked when they are decoded).
    """
    test = scan.folder / "test"
    labels = {s.label for s in scan.samples["test"]}
    if not labels:
        return (f"{test} holds no test images; the metrics need defect-free images in {test / layout.good} "
                f"and defective ones in {test}/<defect> with masks in {scan.folder / 'ground_truth'}/<defect>")
    if 0 not in labels:
        return f"{test / layout.good} holds no images; image AUROC needs defect-free test images: add some there"
    if 1 not in labels:
        return (f"{test} holds only good images; the metrics need defective ones: add {test}/<defect> "
                f"folders of images with masks in {scan.folder / 'ground_truth'}/<defect>")
    return None


def checked_scan(dataset: str, root: str | os.PathLike, category: str, scored: bool = False) -> Scan:
    """A category's scan, or one error: its first problem (and the command that lists them all).

    ``scored``: the test split must also be one the metrics are defined on.
    """
    layout = get_layout(dataset)
    scan = scan_category(layout, find_category(layout, root, category))
    problems = scan.problems or ([unscorable_test_split(layout, scan)] if scored else [])
    problems = [p for p in problems if p]
    if problems:
        more = len(problems) - 1
        tail = f" ({more} more: srlib data check --dataset {dataset} --root {root} --category {category})" if more else ""
        raise SrlibError(problems[0] + tail)
    return scan


def every_mask_empty(folder: Path) -> str:
    """The problem of a category whose masks mark no pixel at all."""
    return (f"every mask in {folder / 'ground_truth'} is empty (no pixel at mid-grey or above), so pixel AUROC and "
            f"AUPRO are undefined; draw each defect in its mask, white on black")
