"""Choosing the perturbation time k from normal images alone (no defect, no label).

The paper fixes k = 1e-3 and leaves finding each category's effective region
of k open. Chapter 3 explains that region: with too little noise the score
of the training images pulls a new normal image towards the nearest training
image instead of onto the manifold, with too much it pulls towards a blurred
manifold; in between it projects normal images onto the manifold and leaves
only what is off it. Three label-free criteria follow, all computed on
*held-out good training images* at every k of a grid, the first two from
their restoration-error maps (the run layer, :mod:`srlib.run.kselect`,
computes the maps), the third from the loss the model was trained with:

``pseudo``
    Make anomalies whose masks are known from the held-out images themselves
    (a patch of another image pasted in, a local blur, a local change of
    intensity, a blob of noise: :func:`pseudo_anomalies`) and measure how
    well each k separates them from the untouched images: the mean of the
    image AUROC and the pixel AUROC on that pseudo set
    (:func:`pseudo_separation`). It asks the detector's own question with
    defects we made.
``uniformity``
    Only the normal images' errors: in the effective region the restoration
    is a projection, so a normal image's error is the leftover of the noise,
    alike everywhere in the image; outside it the error follows the image's
    own structure (edges, fine texture), which is exactly what the image
    score (the maximum of the map) mistakes for a defect. The criterion is
    minus the mean spatial coefficient of variation (std / mean) of the
    normal maps (:func:`spatial_nonuniformity`): scale-free, so the orders of
    magnitude the error changes with k do not matter.
``dsm``
    The denoising score-matching loss per noise level. At time k the
    model's DSM loss on a normal image (Eq. 4, :func:`srlib.method.sde.dsm_loss`
    at that k alone) is the share of the noise its restoration fails to
    remove, and the restoration error of Algorithm 1 is sigma_k^2 times it,
    pixel by pixel: it is the normal images' side of the anomaly map. Its
    size alone says little (it falls as k grows, for any model), so it is
    held against a reference that knows the normal images' mean and power
    spectrum and nothing else: the exact score of the stationary Gaussian
    fitted to the other training images
    (:class:`srlib.method.gaussian.StationaryGaussianScore`, the Wiener
    filter), on the same held-out images and the same noise
    (:func:`heldout_dsm_losses`). Such a Gaussian restores a defect as it
    restores normal texture of the same spectrum; what the network knows
    beyond it, the structure of the normal images, is what tells them apart.
    The criterion is minus the ratio of the two losses
    (:func:`dsm_scores`): the k where the network beats the Gaussian by the
    most is where it knows the normal images best at the noise it restores
    from; a ratio above 1 says it knows less there than their spectrum (a k
    it was seldom or never trained at, or one it never learned).

:func:`choose` takes the best k of a criterion; exact ties go to the k
nearest (in log) to the paper's 1e-3.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from srlib.errors import SrlibError
from srlib.method.constants import PAPER_K
from srlib.method.metrics import image_auroc, pixel_auroc

CRITERIA = ("pseudo", "uniformity", "dsm")
PSEUDO_KINDS = ("cutpaste", "blur", "intensity", "noise")
# Every pseudo-anomalous pixel moves by at least this much (in [-1, 1] units,
# i.e. 8 grey levels); pixels that would move less are left untouched, so a
# mask is exactly the set of changed pixels.
MIN_CHANGE = 16 / 255
HOLDOUT_FRACTION = 0.2
MIN_HOLDOUT = 4


def holdout_indices(n: int, fraction: float = HOLDOUT_FRACTION, seed: int = 0, minimum: int = MIN_HOLDOUT,
                    what: str = "the category") -> list[int]:
    """A seeded choice of ``max(minimum, round(fraction * n))`` of ``n`` training images, sorted.

    At most half the images are held out, so a category needs ``2 * minimum``.
    """
    if not 0 < fraction < 1:
        raise SrlibError(f"holdout fraction {fraction} must be in (0, 1), e.g. {HOLDOUT_FRACTION}")
    count = max(minimum, round(fraction * n))
    if count > n // 2:
        raise SrlibError(f"{what} has {n} training image(s); choosing k holds out {count} of them and needs at "
                         f"least {2 * count}: add good training images or pass a fixed k (e.g. --k 1e-3)")
    return sorted(np.random.default_rng(seed).choice(n, size=count, replace=False).tolist())


def _ellipse(rng, size: int) -> np.ndarray:
    """A random filled ellipse, semi-axes between size/16 and size/6, as a (size, size) bool mask."""
    a, b = rng.uniform(size / 16, size / 6, 2)
    cy, cx = rng.uniform(size * 0.2, size * 0.8, 2)
    angle = rng.uniform(0, math.pi)
    y, x = np.mgrid[:size, :size].astype(float)
    u = (x - cx) * math.cos(angle) + (y - cy) * math.sin(angle)
    v = -(x - cx) * math.sin(angle) + (y - cy) * math.cos(angle)
    return (u / a) ** 2 + (v / b) ** 2 <= 1


def _altered(kind: str, image: np.ndarray, other: np.ndarray, region: np.ndarray, rng) -> np.ndarray:
    """The image with ``kind`` applied everywhere (the caller keeps only the region)."""
    if kind == "cutpaste":  # the same shape from elsewhere in another image
        shift = rng.integers(image.shape[-1] // 8, image.shape[-1] // 2, 2) * rng.choice([-1, 1], 2)
        return np.roll(other, tuple(shift), axis=(-2, -1))
    if kind == "blur":
        return np.stack([ndimage.gaussian_filter(c, rng.uniform(1.5, 4.0)) for c in image])
    if kind == "intensity":  # brighter or darker, towards the side with room to move
        sign = -1.0 if image[:, region].mean() > 0 else 1.0
        return image + sign * rng.uniform(0.2, 0.5)
    if kind == "noise":
        return image + rng.normal(0, rng.uniform(0.2, 0.4), image.shape)
    raise SrlibError(f"unknown pseudo-anomaly {kind!r}: choose from {', '.join(PSEUDO_KINDS)}")


def pseudo_anomalies(images: np.ndarray, seed: int = 0, kinds: tuple[str, ...] = PSEUDO_KINDS):
    """One pseudo-anomalous copy of each image, with its exact mask.

    Parameters
    ----------
    images : numpy.ndarray
        Normal images (N, C, S, S) in [-1, 1], N >= 2 (cut-paste takes its
        patch from another image).
    seed : int
        Seeds every choice; the same seed gives the same arrays.
    kinds : tuple of str
        Defect kinds, used in turn: image i gets ``kinds[i % len(kinds)]``,
        or, where that kind changes too little of any region tried (a blur
        or a pasted patch on a flat region, a patch from an identical image),
        the next kind in the list that does. With the default kinds every
        image gets one (a change of intensity moves any region).

    Returns
    -------
    pseudo : numpy.ndarray
        (N, C, S, S) float32 in [-1, 1]: equal to ``images`` outside the mask.
    masks : numpy.ndarray
        (N, S, S) bool: the pixels that changed (each by at least ``MIN_CHANGE``
        in some channel). Never empty.
    kinds : list of str
        The kind made of each copy (not always the one planned: see ``kinds``).
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[0] < 2 or images.shape[-1] != images.shape[-2]:
        raise SrlibError(f"pseudo anomalies need at least 2 square images (N, C, S, S); got shape {images.shape}")
    rng = np.random.default_rng(seed)
    n, size = images.shape[0], images.shape[-1]
    pseudo, masks, used = images.copy(), np.zeros((n, size, size), bool), []
    if not kinds:
        raise SrlibError(f"no pseudo-anomaly kind given: choose from {', '.join(PSEUDO_KINDS)}")
    for i in range(n):
        start = i % len(kinds)
        for kind in kinds[start:] + kinds[:start]:  # the planned kind first, then the others in turn
            for _ in range(20):  # a flat region may not change enough: draw another
                region = _ellipse(rng, size)
                other = images[(i + 1 + rng.integers(n - 1)) % n]
                altered = np.clip(_altered(kind, images[i], other, region, rng), -1, 1)
                changed = region & (np.abs(altered - images[i]).max(axis=0) >= MIN_CHANGE)
                if changed.sum() >= 0.25 * region.sum():
                    break
            else:
                continue
            break
        else:
            raise SrlibError(f"no pseudo anomaly of kind {', '.join(kinds)} changes image {i} by {MIN_CHANGE:.3f} "
                             f"in a quarter of a region; add 'intensity' to the kinds")
        pseudo[i][:, changed] = altered[:, changed]
        masks[i] = changed
        used.append(kind)
    return pseudo, masks, used


def pseudo_separation(normal_maps, pseudo_maps, pseudo_masks, pixel_stride: int = 1) -> dict:
    """How well one k's maps separate pseudo anomalies from the normal images they were made from.

    Maps are (N, H, W), masks of the pseudo maps' shape. Image scores are the
    maps' maxima (as in Algorithm 1). The pixel AUROC counts the pixels on a
    grid of step ``pixel_stride`` (the maps are mean-filtered over many
    pixels, so neighbours say the same; a step of 4 costs 1/16). Returns
    ``image_auroc``, ``pixel_auroc`` and ``pseudo``, their mean.
    """
    normal, pseudo = np.asarray(normal_maps, np.float64), np.asarray(pseudo_maps, np.float64)
    masks = np.asarray(pseudo_masks).reshape(pseudo.shape) != 0
    scores = np.concatenate([normal.reshape(len(normal), -1).max(1), pseudo.reshape(len(pseudo), -1).max(1)])
    labels = np.r_[np.zeros(len(normal)), np.ones(len(pseudo))]
    image = image_auroc(scores, labels)
    grid = (slice(None), slice(None, None, pixel_stride), slice(None, None, pixel_stride))
    pixel = pixel_auroc(np.concatenate([normal[grid], pseudo[grid]]),
                        np.concatenate([np.zeros_like(normal[grid], bool), masks[grid]]))
    return {"image_auroc": image, "pixel_auroc": pixel, "pseudo": (image + pixel) / 2}


def spatial_nonuniformity(normal_maps) -> float:
    """Mean over images of the spatial coefficient of variation (std / mean) of each normal map."""
    maps = np.asarray(normal_maps, np.float64)
    maps = maps.reshape(len(maps), -1)
    means = maps.mean(1)
    if not (means > 0).all():
        raise SrlibError("restoration-error maps must be positive to measure their uniformity; got a zero map")
    return float((maps.std(1) / means).mean())


def heldout_dsm_losses(model, images, ks, n_draws: int = 1, seed: int = 0, batch_size: int = 8) -> dict:
    """The DSM loss of ``model`` on ``images`` at each time of ``ks``, per dimension: ``{k: loss}``.

    :func:`srlib.method.sde.dsm_loss` at that k alone (Eq. 4), averaged over
    the images and ``n_draws`` draws of the noise and divided by the
    dimension C * H * W: 0 when the model removes all the noise, 1 for a
    model that removes none (score 0), more for one that adds error. Every
    k and every model draws the same unit noise (a generator seeded with
    ``seed``), so two models' losses differ by the models alone. ``images``
    (N, C, H, W) in [-1, 1] go to the model's device ``batch_size`` at a time.
    """
    import torch

    from srlib.method.sde import dsm_loss

    parameters = list(model.parameters()) + list(model.buffers())
    device = parameters[0].device if parameters else torch.device("cpu")
    images = torch.as_tensor(images, dtype=torch.float32)
    losses = {}
    with torch.inference_mode():
        for k in ks:
            generator = torch.Generator(device=device).manual_seed(seed)
            total = 0.0
            for batch in images.split(batch_size):
                batch = batch.to(device)
                for _ in range(n_draws):
                    total += float(dsm_loss(model, batch, model.sde, generator=generator, k=float(k),
                                            per_image=True).double().sum())
            losses[float(k)] = total / (len(images) * n_draws * images[0].numel())
    return losses


def dsm_scores(losses: dict, reference: dict) -> dict:
    """The ``dsm`` criterion from per-k held-out DSM losses of the model and of the Gaussian reference.

    Returns ``{k: {"dsm_loss", "gaussian_dsm_loss", "dsm_ratio", "dsm"}}``:
    the two losses, their ratio (model / reference; below 1 where the model
    beats the Gaussian) and the criterion, minus the ratio. Where the
    reference's loss is 0 (images that do not vary at all: it removes every
    bit of the noise) the ratio says nothing: ratio and criterion are None,
    and :func:`choose` ranks that k last.
    """
    if set(losses) != set(reference):
        raise SrlibError("the model's and the reference's DSM losses must be measured at the same k")
    scores = {}
    for k, loss in losses.items():
        ratio = loss / reference[k] if reference[k] > 0 else None
        scores[k] = {"dsm_loss": loss, "gaussian_dsm_loss": reference[k], "dsm_ratio": ratio,
                     "dsm": None if ratio is None else -ratio}
    return scores


def criterion_scores(normal_maps, pseudo_maps, pseudo_masks, pixel_stride: int = 1, dsm: dict | None = None) -> dict:
    """Every criterion's value (higher is better) and its parts, for one k (``dsm``: that k's :func:`dsm_scores`)."""
    scores = pseudo_separation(normal_maps, pseudo_maps, pseudo_masks, pixel_stride)
    scores["nonuniformity"] = spatial_nonuniformity(normal_maps)
    scores["uniformity"] = -scores["nonuniformity"]
    scores.update(dsm or {})
    return scores


def choose(candidates: dict, criterion: str) -> float:
    """The k of ``candidates`` (``{k: criterion_scores(...)}``) with the highest ``criterion``.

    Exact ties go to the k nearest to the paper's 1e-3 on a log scale, then to
    the smaller k; a value None (a criterion with nothing to say at that k)
    ranks below every number.
    """
    if criterion not in CRITERIA:
        raise SrlibError(f"unknown k criterion {criterion!r}: choose one of {', '.join(CRITERIA)}")
    if not candidates:
        raise SrlibError("no candidate k to choose from: pass a non-empty grid")

    def rank(k):
        value = candidates[k][criterion]
        return (math.inf if value is None else -value, abs(math.log(k / PAPER_K)), k)

    return min(candidates, key=rank)


# Gains of the oracle below this are rounding, not gains (AUROCs are ratios of counts: ties differ by ~1e-16).
SHARE_TOLERANCE = 1e-9


def oracle_share(fixed: float, chosen: float, oracle: float) -> float | None:
    """The share of the oracle's gain over the fixed k that the chosen k recovers: (chosen - fixed) / (oracle - fixed).

    1: as good as the best k on the test labels; 0: no better than the fixed
    k; negative: worse. None when the oracle gains nothing (nothing to recover),
    or only rounding: an AUROC tied between two k can differ in its last bits
    (0.90125 and 0.9012500000000001), and dividing by that would print 1e13.
    """
    gain = oracle - fixed
    return (chosen - fixed) / gain if gain > SHARE_TOLERANCE else None


METRICS = ("image_auroc", "pixel_auroc", "aupro")


def comparison_rows(sweep: dict, chosen: dict, fixed_k: float = PAPER_K) -> list[dict]:
    """The table of chapter 7 for one category: the fixed k, each criterion's choices, the oracle.

    Parameters
    ----------
    sweep : dict
        ``{k: {"image_auroc", "pixel_auroc", "aupro"}}``, the test metrics at every k of the grid.
    chosen : dict
        ``{criterion: [k chosen with each seed]}``.

    Returns
    -------
    list of dict
        ``method``, ``ks`` and the metrics: at ``fixed_k``; at each criterion's
        choices (the mean over seeds) with ``<metric>_share``, the
        :func:`oracle_share` of each; and the oracle, each metric's maximum over
        the grid (an upper bound: it is chosen on the test labels, per metric;
        its ``ks`` are the image AUROC's best k).
    """
    fixed = {m: sweep[fixed_k][m] for m in METRICS}
    oracle = {m: max(values[m] for values in sweep.values()) for m in METRICS}
    rows = [{"method": f"k = {fixed_k:g}", "ks": [fixed_k], **fixed}]
    for criterion, ks in chosen.items():
        means = {m: float(np.mean([sweep[k][m] for k in ks])) for m in METRICS}
        rows.append({"method": f"auto ({criterion})", "ks": list(ks), **means,
                     **{f"{m}_share": oracle_share(fixed[m], means[m], oracle[m]) for m in METRICS}})
    best = max(sweep, key=lambda k: (sweep[k]["image_auroc"], -abs(math.log(k / PAPER_K))))
    rows.append({"method": "best k on test labels (upper bound)", "ks": [best], **oracle})
    return rows
