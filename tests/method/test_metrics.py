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


def test_pixel_auroc_equals_sklearns_curve_on_many_tied_pixels():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    masks = rng.random((4, 1, 64, 64)) < 0.07
    maps = (rng.random(masks.shape) + 0.2 * masks).astype(np.float32)
    maps[:, :, ::3] = np.round(maps[:, :, ::3], 2)  # a third of the pixels in ties
    assert pixel_auroc(maps, masks) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-12)


def test_auroc_refuses_scores_that_are_not_numbers():
    with pytest.raises(SrlibError, match="image AUROC: 1 of 4 scores are NaN or infinite"):
        image_auroc([0.1, np.nan, 0.3, 0.2], [0, 1, 0, 1])


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
    assert aupro(masks, masks) == pytest.approx(1.0, abs=1e-12)  # summed in sort order: to rounding
    rng = np.random.default_rng(0)
    separated = np.where(masks == 1, 1 + rng.random(SHAPE), rng.random(SHAPE))
    assert aupro(torch.tensor(separated), torch.tensor(masks)) == pytest.approx(1.0)


def test_aupro_refuses_masks_without_regions_and_bad_limits():
    with pytest.raises(SrlibError, match="0 regions"):
        aupro(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))
    with pytest.raises(SrlibError, match="fpr_limit 0"):
        aupro(np.zeros((2, 4, 4)), np.ones((2, 4, 4)), fpr_limit=0)


def official_definition_aupro(maps, masks, limit):
    """AUPRO as the MVTec AD evaluation defines it, one threshold at a time.

    Regions are the 8-connected components of each image's mask. At every
    distinct map value t (and above the maximum, the point (0, 0)), pixels
    >= t are anomalous: FPR over all normal pixels, PRO the mean over regions
    of the fraction of the region covered. The curve is integrated from 0 to
    ``limit`` (interpolated there) and divided by ``limit``.
    """
    from scipy import ndimage

    regions = []
    for image, mask in enumerate(masks):
        labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
        regions += [(image, labels == label) for label in range(1, count + 1)]
    normal = ~masks
    xs, ys = [0.0], [0.0]
    for t in sorted(set(maps.ravel().tolist()), reverse=True):
        predicted = maps >= t
        xs.append(predicted[normal].sum() / normal.sum())
        ys.append(np.mean([predicted[image][region].mean() for image, region in regions]))
    xs, ys = np.array(xs), np.array(ys)
    inside = xs <= limit
    if not inside.all():  # interpolate the first point beyond the limit back to it
        i = np.argmax(~inside)
        y = ys[i - 1] + (ys[i] - ys[i - 1]) * (limit - xs[i - 1]) / (xs[i] - xs[i - 1])
        xs, ys = np.append(xs[inside], limit), np.append(ys[inside], y)
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2) / limit)


def random_blobs(rng, shape):
    """Masks of smoothed noise above a level: several irregular regions per image, some images without."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=(0, 2.5, 2.5))
    masks = field > np.quantile(field, 0.9)
    masks[0] = False
    return masks


@pytest.mark.parametrize("seed", range(3))
def test_aupro_equals_the_official_definition_on_random_maps_with_ties(seed):
    rng = np.random.default_rng(seed)
    masks = random_blobs(rng, (6, 24, 24))
    maps = np.round(rng.random(masks.shape) + 0.5 * masks, 2).astype(np.float32)  # ~150 distinct values: ties
    n_normal = int((~masks).sum())
    # The limit exactly at a point's FPR, just beside one, the paper's 0.3, the whole curve.
    for limit in (7 / n_normal, 7.5 / n_normal, 0.3, 1.0):
        assert aupro(maps, masks, fpr_limit=limit) == pytest.approx(
            official_definition_aupro(maps, masks, limit), abs=1e-10)
