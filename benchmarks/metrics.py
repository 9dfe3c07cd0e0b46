"""The pixel metrics, srlib's against a reference, in one process: AUPRO and pixel AUROC.

AUPRO's reference below is the MVTec AD evaluation's method: label each
mask's 8-connected regions, give every pixel its increment of FPR (normal
pixels) or of PRO (region pixels), sort all pixels by score, cumulate, keep
the last pixel of each run of equal scores, integrate up to the FPR limit
and divide by it. srlib's ``aupro`` sorts only the pixels above the limit's
threshold. Pixel AUROC's reference is ``sklearn.metrics.roc_auc_score`` (the
ROC curve over every distinct score, then the trapezoid rule); srlib's
``pixel_auroc`` counts correctly ordered (anomalous, normal) pairs with one
sort of the normal pixels.

Each pair runs on the same maps (100 maps of 256x256, the size of MVTec AD's
masks, float32 like evaluated maps, with ties) in alternating rounds; the
ratio of the medians is what to read (other processes on the machine change
the seconds, about equally for both). Usage:
``python benchmarks/metrics.py [--maps 100] [--side 256] [--rounds 9]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy import ndimage

from sklearn.metrics import roc_auc_score

from srlib.method.metrics import aupro, pixel_auroc


def reference_aupro(maps: np.ndarray, masks: np.ndarray, limit: float = 0.3) -> float:
    """The official evaluation's algorithm, written plainly (maps, masks: (N, H, W))."""
    masks = masks != 0
    regions = np.zeros(masks.shape, np.int64)
    n_regions = 0
    for image, mask in enumerate(masks):  # numbered across images, so no two images share a region
        labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
        regions[image] = np.where(labels > 0, labels + n_regions, 0)
        n_regions += count
    sizes = np.bincount(regions.ravel())
    fpr_step = (regions == 0) / (~masks).sum()
    pro_step = np.where(regions > 0, 1.0 / (n_regions * sizes[regions]), 0.0)
    order = np.argsort(maps, axis=None)[::-1]
    scores = maps.ravel()[order]
    fprs = np.cumsum(fpr_step.ravel()[order])
    pros = np.cumsum(pro_step.ravel()[order])
    last = np.append(np.diff(scores) != 0, True)
    fprs, pros = np.concatenate([[0.0], fprs[last]]), np.concatenate([[0.0], pros[last]])
    inside = fprs <= limit
    end = np.argmax(~inside) if not inside.all() else None
    xs, ys = fprs[inside], pros[inside]
    if end is not None:
        x0, x1, y0, y1 = fprs[end - 1], fprs[end], pros[end - 1], pros[end]
        xs, ys = np.append(xs, limit), np.append(ys, y0 + (y1 - y0) * (limit - x0) / (x1 - x0))
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2) / limit)


def test_maps(n: int, side: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Maps that are higher on blob-shaped defects (a quarter of the images defect-free), rounded: ties."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((n, side, side)).astype(np.float32), sigma=(0, 6, 6))
    masks = field > np.quantile(field, 0.95)
    masks[: n // 4] = False
    maps = ndimage.gaussian_filter(rng.random((n, side, side), dtype=np.float32), sigma=(0, 2, 2)) + 0.05 * masks
    return np.round(maps, 4).astype(np.float32), masks


def reference_pixel_auroc(maps: np.ndarray, masks: np.ndarray) -> float:
    """scikit-learn's ROC curve over all pixels, integrated by the trapezoid rule."""
    return float(roc_auc_score(masks.ravel() != 0, maps.ravel()))


def compare(name: str, ours, reference, maps: np.ndarray, masks: np.ndarray, rounds: int) -> None:
    """Both values and the median time of each over ``rounds`` alternating rounds, printed."""
    mine, theirs = ours(maps, masks), reference(maps, masks)
    print(f"{name}: srlib {mine:.12f}, reference {theirs:.12f} (difference {abs(mine - theirs):.1e})")
    times = {"srlib": [], "reference": []}
    for turn in range(rounds):
        pair = (("srlib", ours), ("reference", reference))
        for side, function in pair if turn % 2 == 0 else pair[::-1]:
            started = time.perf_counter()
            function(maps, masks)
            times[side].append(time.perf_counter() - started)
    median = {side: statistics.median(values) for side, values in times.items()}
    ratios = [r / s for s, r in zip(times["srlib"], times["reference"])]
    print(f"  median of {rounds} rounds: srlib {median['srlib']:.3f} s, reference {median['reference']:.3f} s; "
          f"reference / srlib = {median['reference'] / median['srlib']:.2f} "
          f"(per round {min(ratios):.2f} to {max(ratios):.2f})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=100)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    maps, masks = test_maps(args.maps, args.side)
    print(f"{args.maps} maps of {args.side}x{args.side}, {len(np.unique(maps))} distinct scores, "
          f"{masks.mean():.1%} of the pixels anomalous")
    compare("AUPRO", aupro, reference_aupro, maps, masks, args.rounds)
    compare("pixel AUROC", pixel_auroc, reference_pixel_auroc, maps, masks, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
