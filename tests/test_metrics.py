"""AUROC and AUPRO against brute-force computations on hand-made maps and masks."""

import itertools

import numpy as np
import pytest
import torch

from srlib.errors import SrlibError
from srlib.method.metrics import aupro, image_auroc, pixel_auroc


def pairwise_auroc(labels, scores):
    """P(anomalous scores above normal) + half the ties, over all pairs."""
    pos, neg = scores[labels != 0], scores[labels == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_image_auroc_counts_ordered_pairs():
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.2, 0.9])
    labels = np.array([0, 0, 1, 1, 1, 0, 0])
    assert image_auroc(torch.tensor(scores), labels) == pytest.approx(pairwise_auroc(labels, scores))


def test_pixel_auroc_pools_all_pixels():
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 5, size=(3, 1, 4, 4)).astype(np.float32)  # many ties
    masks = np.zeros((3, 1, 4, 4))
    masks[1, 0, 1:3, 1:3] = 1
    masks[2, 0, 0, :] = 1
    maps[masks == 1] += 1.5
    expected = pairwise_auroc(masks.ravel(), maps.ravel())
    assert pixel_auroc(maps, torch.tensor(masks)) == pytest.approx(expected)


def test_auroc_needs_both_classes():
    with pytest.raises(SrlibError, match="all 3 are normal"):
        image_auroc([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.raises(SrlibError, match="do not match"):
        pixel_auroc(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))


# Hand-made ground truth: regions listed pixel by pixel, so membership is known without labelling.
SHAPE = (3, 6, 6)
REGIONS = [
    (1, [(0, 0), (0, 1), (1, 0)]),                   # an L in the corner
    (1, [(3, 3), (4, 4), (5, 5)]),                   # a diagonal line: one region under 8-connectivity
    (2, [(2, 1), (2, 2), (2, 3), (3, 2), (1, 2)]),   # a plus sign
    (2, [(5, 0)]),                                   # a single pixel
]                                                    # image 0 is defect-free


def masks_from_regions():
    masks = np.zeros(SHAPE)
    for image, pixels in REGIONS:
        for row, col in pixels:
            masks[image, row, col] = 1
    return masks


def brute_force_aupro(maps, limit):
    """Binarise at every distinct value, measure FPR and mean region overlap, integrate the curve."""
    masks = masks_from_regions().astype(bool)
    points = [(0.0, 0.0)]
    for threshold in np.unique(maps)[::-1]:
        predicted = maps >= threshold
        fpr = (predicted & ~masks).sum() / (~masks).sum()
        overlaps = [np.mean([predicted[image, r, c] for r, c in pixels]) for image, pixels in REGIONS]
        points.append((fpr, np.mean(overlaps)))
    fprs, pros = np.array(points).T
    pro_at_limit = np.interp(limit, fprs, pros) if limit < fprs.max() else pros[-1]
    keep = fprs <= limit
    xs, ys = np.append(fprs[keep], limit), np.append(pros[keep], pro_at_limit)
    return np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2) / limit


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("limit", [0.05, 0.3, 1.0])
def test_aupro_against_brute_force(seed, limit):
    rng = np.random.default_rng(seed)
    maps = np.round(rng.random(SHAPE) + 0.6 * masks_from_regions(), 1)  # rounding makes ties
    assert aupro(maps[:, None], masks_from_regions()[:, None], fpr_limit=limit) == pytest.approx(
        brute_force_aupro(maps, limit), abs=1e-12)


def test_aupro_hand_worked():
    # One region (top-left pixel), three normal pixels. Thresholds 0.6, 0.5, 0.2, 0.1 give the curve
    # (0, 0) -> (1/3, 0) -> (1/3, 1) -> (2/3, 1) -> (1, 1).
    maps = np.array([[[0.5, 0.6], [0.1, 0.2]]])
    masks = np.array([[[1, 0], [0, 0]]])
    assert aupro(maps, masks, fpr_limit=0.3) == pytest.approx(0.0)
    assert aupro(maps, masks, fpr_limit=0.5) == pytest.approx((0.5 - 1 / 3) / 0.5)
    assert aupro(maps, masks, fpr_limit=1.0) == pytest.approx(2 / 3)


def test_a_perfect_map_scores_one():
    masks = masks_from_regions()
    assert aupro(masks, masks) == 1.0
    rng = np.random.default_rng(0)
    separated = np.where(masks == 1, 1 + rng.random(SHAPE), rng.random(SHAPE))
    assert aupro(torch.tensor(separated), torch.tensor(masks)) == pytest.approx(1.0)


def test_aupro_refuses_masks_without_regions_and_bad_limits():
    with pytest.raises(SrlibError, match="0 regions"):
        aupro(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))
    with pytest.raises(SrlibError, match="fpr_limit 0"):
        aupro(np.zeros((2, 4, 4)), np.ones((2, 4, 4)), fpr_limit=0)
