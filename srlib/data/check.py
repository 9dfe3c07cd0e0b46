"""``srlib data check``: validate a dataset folder, decoding every file once.

Structure comes from :mod:`srlib.data.layouts`; this adds what only reading
the files shows (corrupt, truncated or unreadable images, masks whose size
differs from their image) and the counts per split and defect type.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from srlib.data.images import decode_all, read_image
from srlib.data.layouts import SPLITS, Sample, category_folders, check_root, find_category, get_layout, scan_category
from srlib.errors import SrlibError


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


def _read_sample(sample: Sample) -> tuple[list[str], list[str]]:
    """(problems, warnings) from decoding one image and its mask."""
    problems, warnings, sizes = [], [], []
    for path in (sample.path, sample.mask):
        if path is None:
            continue
        try:
            sizes.append(read_image(path).size)
        except SrlibError as err:
            problems.append(str(err))
    if len(sizes) == 2 and sizes[0] != sizes[1]:
        (w, h), (mw, mh) = sizes
        warnings.append(f"mask {sample.mask} is {mw}x{mh} but its image is {w}x{h}; it is resized with the image (fine if it is the right mask)")
    return problems, warnings


def check_category(layout, folder: Path) -> CategoryCheck:
    scan = scan_category(layout, folder)
    result = CategoryCheck(folder, problems=list(scan.problems))
    for split in SPLITS:
        samples = scan.samples[split]
        result.counts[split] = Counter(s.defect for s in samples)
        result.masks += sum(s.mask is not None for s in samples)
        for problems, warnings in decode_all(_read_sample, samples, f"{folder.name}/{split}"):
            result.problems += problems
            result.warnings += warnings
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
