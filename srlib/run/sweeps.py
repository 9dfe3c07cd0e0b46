"""The k sweep (the paper's Fig. 6) and the anomaly-map gallery (Fig. 4), on disk.

Chapter 5 evaluates one model at every k of a log grid and writes, beside
the category's ``result.json``:

``k_sweep.csv``
    One row per k and test subset: image AUROC, pixel AUROC and AUPRO over
    the whole test split (subset ``all``), and image AUROC over the good
    images plus one defect type (subset = the defect's name; pixel AUROC and
    AUPRO left empty: over millions of pixels they would cost as much as the
    sweep).
``gallery.npz``
    A few defective test images, their ground truth and their anomaly maps
    at every k of the sweep, each k's maps scaled to its colour range and
    stored as 8-bit, for the figures of chapter 6.

Neither file is named ``*.json``, so :func:`srlib.results.tables.load_results` never
mistakes them for results. Chapter 6 reads every such file under a results
folder with :func:`read_k_sweeps` and :func:`read_galleries`, and draws them with
:mod:`srlib.results.charts`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srlib.atomic import atomic_write, write_text
from srlib.errors import SrlibError
from srlib.run.config import K_GRID, EvalConfig
from srlib.run.files import GALLERY, K_SWEEP
from srlib.run.pictures import colour_range, scaled

SWEEP_COLUMNS = ("dataset", "category", "subset", "k", "n_draws", "image_auroc", "pixel_auroc", "aupro")
ALL = "all"


def k_sweep(model, test, ks=K_GRID, config: EvalConfig = EvalConfig(), progress: bool = False) -> dict:
    """Evaluate ``model`` on the test split at every k: ``{k: srlib.run.evaluate.EvalResult}``.

    ``config`` gives every setting but k. Every k draws the same perturbations
    (the same seed), so the curves over k differ by k alone.
    """
    from srlib.run.evaluate import evaluate_model

    return {float(k): evaluate_model(model, test, config.replace(k=float(k)), progress=progress) for k in ks}


def sweep_rows(sweep: dict, defects: list[str], labels: list[int], dataset: str, category: str,
               n_draws: int) -> list[dict]:
    """The rows of ``k_sweep.csv`` for one category's sweep."""
    from srlib.method.metrics import image_auroc

    kinds = sorted({d for d, label in zip(defects, labels) if label == 1})
    labels, defects = np.asarray(labels), np.asarray(defects)
    rows = []
    for k, result in sorted(sweep.items()):
        common = dict(dataset=dataset, category=category, k=k, n_draws=n_draws)
        rows.append(dict(common, subset=ALL, image_auroc=result.image_auroc, pixel_auroc=result.pixel_auroc,
                         aupro=result.aupro))
        for kind in kinds:
            keep = (labels == 0) | (defects == kind)
            rows.append(dict(common, subset=kind, pixel_auroc=None, aupro=None,
                             image_auroc=image_auroc(result.scores.numpy()[keep], labels[keep])))
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
                             "image_auroc": float(row["image_auroc"]),
                             **{m: float(row[m]) if row[m] else None for m in ("pixel_auroc", "aupro")}})
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
        lo, hi = colour_range(result.maps.numpy())
        resized = F.interpolate(result.maps[indices], size=(size, size), mode="bilinear", align_corners=False)
        maps.append(scaled(resized[:, 0].numpy(), lo, hi))
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

