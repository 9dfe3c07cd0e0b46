"""``srlib data check``: validate a dataset folder, decoding every file once.

Structure comes from :mod:`srlib.data.layouts`; this adds what only reading
the files shows, decoded exactly as training and evaluation decode them
(:mod:`srlib.data.images`): corrupt, truncated, unreadable or undecodable
images, masks whose size differs from their image, lossy (JPEG) masks,
empty masks of defective images, images with an EXIF orientation, a test
split the metrics are undefined on; and the counts per split and defect type.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from srlib.data.images import convert_levels, decode_all, read_image, read_mask
from srlib.data.layouts import (
    SPLITS, Sample, category_folders, check_root, every_mask_empty, find_category, get_layout, scan_category,
    unscorable_test_split,
)
from srlib.errors import SrlibError

LOSSY = (".jpg", ".jpeg")
ORIENTATION = 0x0112  # the EXIF tag


@dataclass
class CategoryCheck:
    """What checking one category folder found."""

    folder: Path
    counts: dict[str, Counter] = field(default_factory=dict)  # split -> defect -> images
    masks: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{split}: " + ", ".join(f"{d} {n}" for d, n in sorted(self.counts[split].items())) for split in SPLITS]
        return f"{self.folder.name}: " + " | ".join(parts) + f" | masks {self.masks}"


def _read_sample(sample: Sample) -> tuple[list[str], list[str], bool]:
    """(problems, warnings, whether its mask marks any defect pixel) from decoding one image and its mask."""
    problems, warnings, size, marked = [], [], None, False
    try:
        image = read_image(sample.path)
        size = convert_levels(image, sample.path, "RGB").size
    except SrlibError as err:
        problems.append(str(err))
    else:
        turned = image.getexif().get(ORIENTATION, 1)
        if turned != 1:
            warnings.append(f"{sample.path} carries an EXIF orientation ({turned}: viewers show it turned or mirrored); "
                            f"srlib reads its pixels as stored, so a mask drawn on the turned view will not fit: "
                            f"save the image as it is shown (e.g. PIL.ImageOps.exif_transpose)")
    if sample.mask is None:
        return problems, warnings, marked
    if sample.mask.suffix.lower() in LOSSY:
        warnings.append(f"mask {sample.mask} is a JPEG, whose lossy compression turns its edges grey (srlib binarises "
                        f"masks at mid-grey); save masks as PNG")
    try:
        mask = read_mask(sample.mask)
    except SrlibError as err:
        problems.append(str(err))
        return problems, warnings, marked
    marked = bool(mask.any())
    if not marked:
        warnings.append(f"mask {sample.mask} is empty (no pixel at mid-grey or above) although its image is in "
                        f"test/{sample.defect}; draw the defect in it, or move {sample.path.name} to the good test images")
    if size is not None and mask.shape[::-1] != size:
        (w, h), (mh, mw) = size, mask.shape
        warnings.append(f"mask {sample.mask} is {mw}x{mh} but its image is {w}x{h}; it is resized with the image (fine if it is the right mask)")
    return problems, warnings, marked


def check_category(layout, folder: Path) -> CategoryCheck:
    scan = scan_category(layout, folder)
    result = CategoryCheck(folder, problems=list(scan.problems))
    marked = 0
    for split in SPLITS:
        samples = scan.samples[split]
        result.counts[split] = Counter(s.defect for s in samples)
        result.masks += sum(s.mask is not None for s in samples)
        for problems, warnings, has_defect in decode_all(_read_sample, samples, f"{folder.name}/{split}"):
            result.problems += problems
            result.warnings += warnings
            marked += has_defect
    if not scan.problems:
        unscorable = unscorable_test_split(layout, scan)
        if unscorable:
            result.problems.append(unscorable)
        elif result.masks and not marked:
            result.problems.append(every_mask_empty(folder))
    return result


def check_folder(dataset: str, root: str | os.PathLike, category: str | None = None) -> list[CategoryCheck]:
    """Check one category, or every category folder under ``root``.

    Raises
    ------
    SrlibError
        When there is nothing to check (no root, no such category).
    """
    layout = get_layout(dataset)
    if category is not None:
        return [check_category(layout, find_category(layout, root, category))]
    root = check_root(layout, root)
    names = category_folders(root)
    if not names:
        raise SrlibError(f"dataset root {root} holds no category folders; pass the folder that holds {', '.join(layout.categories[:2])}, ...")
    return [check_category(layout, root / name) for name in names]
