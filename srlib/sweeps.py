"""The k sweep (the paper's Fig. 6) and the anomaly-map gallery (Fig. 4), on disk.

Chapter 5 evaluates one model at every k of a log grid and writes, beside
the category's ``result.json``:

``k_sweep.csv``
    One row per k and test subset: image AUROC and pixel AUROC over the
    whole test split (subset ``all``) and over the good images plus one
    defect type (subset = the defect's name).
``gallery.npz``
    A few defective test images, their ground truth and their anomaly maps
    at every k of the sweep, each k's maps scaled to its colour range and
    stored as 8-bit, for the figures of chapter 6.

Neither file is named ``*.json``, so :func:`srlib.tables.load_results` never
mistakes them for results. Chapter 6 reads every such file under a results
folder with :func:`read_k_sweeps` and :func:`read_galleries`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srlib.atomic import atomic_write, write_text
from srlib.errors import SrlibError

# The log grid of k: the paper's k = 1e-3 in the middle, two decades either side.
K_GRID = (1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 1e-1)
K_SWEEP = "k_sweep.csv"
GALLERY = "gallery.npz"
SWEEP_COLUMNS = ("dataset", "category", "subset", "k", "n_draws", "image_auroc", "pixel_auroc")
ALL = "all"


def k_sweep(model, test, ks=K_GRID, n_draws: int = 3, seed: int = 0, batch_size: int = 8, progress: bool = False) -> dict:
    """Evaluate ``model`` on the test split at every k: ``{k: srlib.evaluate.EvalResult}``.

    Every k draws the same perturbations (the same ``seed``), so the curves
    over k differ by k alone.
    """
    from srlib.evaluate import evaluate_model

    return {float(k): evaluate_model(model, test, k=k, n_draws=n_draws, batch_size=batch_size, seed=seed,
                                     progress=progress) for k in ks}


def _subset_scores(result, defects: list[str], defect: str | None) -> tuple[float, float]:
    """Image and pixel AUROC over the good images plus one defect type (all images if None)."""
    from srlib.metrics import image_auroc, pixel_auroc

    labels = result.labels.numpy()
    keep = np.ones(len(labels), bool) if defect is None else (labels == 0) | (np.asarray(defects) == defect)
    return (image_auroc(result.scores.numpy()[keep], labels[keep]),
            pixel_auroc(result.maps.numpy()[keep], result.masks.numpy()[keep]))


def sweep_rows(sweep: dict, defects: list[str], labels: list[int], dataset: str, category: str,
               n_draws: int) -> list[dict]:
    """The rows of ``k_sweep.csv`` for one category's sweep."""
    kinds = sorted({d for d, label in zip(defects, labels) if label == 1})
    rows = []
    for k, result in sorted(sweep.items()):
        for subset in [ALL, *kinds]:
            image, pixel = _subset_scores(result, defects, None if subset == ALL else subset)
            rows.append(dict(dataset=dataset, category=category, subset=subset, k=k, n_draws=n_draws,
                             image_auroc=image, pixel_auroc=pixel))
    return rows


def write_k_sweep(path: str | Path, rows: list[dict]) -> None:
    """Write sweep rows as CSV, atomically."""
    out = io.StringIO()
    writer = csv.DictWriter(out, SWEEP_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "k": repr(float(row["k"]))} for row in rows)
    write_text(path, out.getvalue())


def read_k_sweeps(folder: str | Path) -> list[dict]:
    """Every row of every ``k_sweep.csv`` under ``folder``, numbers as numbers."""
    rows = []
    for path in sorted(Path(folder).rglob(K_SWEEP)):
        with open(path, newline="") as file:
            reader = csv.DictReader(file)
            if tuple(reader.fieldnames or ()) != SWEEP_COLUMNS:
                raise SrlibError(f"{path}: columns {reader.fieldnames}, expected {list(SWEEP_COLUMNS)}; "
                                 "not a k sweep written by srlib (delete it or re-run chapter 5)")
            for row in reader:
                rows.append({**row, "k": float(row["k"]), "n_draws": int(row["n_draws"]),
                             "image_auroc": float(row["image_auroc"]), "pixel_auroc": float(row["pixel_auroc"])})
    return rows


@dataclass
class Gallery:
    """Defective test images of one category with their maps at every k.

    ``images`` uint8 (G, S, S, 3); ``masks`` bool (G, S, S); ``maps`` float32
    (len(ks), G, S, S) in [0, 1]: each k's maps mapped linearly from that k's
    colour range [``low``, ``high``] (the 1st and 99th percentiles of its maps
    over the whole test split; the scale of the error changes with k by
    orders of magnitude) and clipped.
    """

    dataset: str
    category: str
    ks: np.ndarray
    defects: list[str]
    images: np.ndarray
    masks: np.ndarray
    maps: np.ndarray
    low: np.ndarray
    high: np.ndarray


def gallery_indices(labels: list[int], defects: list[str], count: int) -> list[int]:
    """Up to ``count`` defective images: one of each defect type in turn, first ones first."""
    by_type: dict[str, list[int]] = {}
    for i, (label, defect) in enumerate(zip(labels, defects)):
        if label == 1:
            by_type.setdefault(defect, []).append(i)
    chosen, round_ = [], 0
    while len(chosen) < count and any(round_ < len(v) for v in by_type.values()):
        chosen += [v[round_] for _, v in sorted(by_type.items()) if round_ < len(v)][: count - len(chosen)]
        round_ += 1
    return sorted(chosen)


def make_gallery(sweep: dict, test, dataset: str, category: str, count: int = 4, size: int = 128) -> Gallery:
    """Pick ``count`` defective images of ``test`` (a FolderDataset) and collect their maps at every k."""
    import torch.nn.functional as F
    from PIL import Image

    from srlib.data.images import read_image

    ks = sorted(sweep)
    indices = gallery_indices(test.labels, test.defects, count)
    images = np.stack([np.asarray(read_image(test.paths[i], "RGB").resize((size, size), Image.Resampling.LANCZOS))
                       for i in indices]) if indices else np.zeros((0, size, size, 3), np.uint8)
    masks = F.interpolate(sweep[ks[0]].masks[indices].float(), size=(size, size), mode="nearest")[:, 0] > 0.5
    maps, low, high = [], [], []
    for k in ks:
        result = sweep[k]
        lo, hi = np.quantile(result.maps.numpy(), [0.01, 0.99])
        resized = F.interpolate(result.maps[indices], size=(size, size), mode="bilinear", align_corners=False)
        maps.append(np.clip((resized[:, 0].numpy() - lo) / max(hi - lo, 1e-30), 0, 1))
        low.append(lo)
        high.append(hi)
    return Gallery(dataset, category, np.asarray(ks, float), [test.defects[i] for i in indices], images,
                   masks.numpy(), np.asarray(maps, np.float32), np.asarray(low), np.asarray(high))


def write_gallery(path: str | Path, gallery: Gallery) -> None:
    """Save a gallery as ``.npz`` (the scaled maps as 8-bit), atomically."""
    arrays = dict(dataset=np.array(gallery.dataset), category=np.array(gallery.category), ks=gallery.ks,
                  defects=np.array(gallery.defects, dtype=str), images=gallery.images, masks=gallery.masks,
                  maps=np.round(gallery.maps * 255).astype(np.uint8), low=gallery.low, high=gallery.high)
    atomic_write(path, lambda file: np.savez_compressed(file, **arrays))


def read_galleries(folder: str | Path) -> list[Gallery]:
    """Every ``gallery.npz`` under ``folder``, in path order."""
    galleries = []
    for path in sorted(Path(folder).rglob(GALLERY)):
        try:
            with np.load(path, allow_pickle=False) as data:
                galleries.append(Gallery(
                    str(data["dataset"]), str(data["category"]), data["ks"], [str(d) for d in data["defects"]],
                    data["images"], data["masks"], data["maps"] / np.float32(255), data["low"], data["high"]))
        except (OSError, ValueError, KeyError) as err:
            raise SrlibError(f"{path}: not a gallery written by srlib ({err}); delete it or re-run chapter 5") from None
    return galleries
