"""SPR against the reconstruction baselines on one category, on the same budget (chapter 4).

:func:`compare_methods` evaluates a trained score model (SPR: Algorithm 1 on
the evaluation's path, :mod:`srlib.run.scoring`, once per perturbation seed)
beside an autoencoder trained for as many optimizer steps of the same batch
size and learning rate (once per training seed; the book ships them,
:mod:`srlib.run.autoencoder`) and PCA (:mod:`srlib.method.baselines`). Every method's map goes through the same
resizing to the masks' size, mean filter and maximum, and the same metrics.
:func:`projector_results` runs the exact projector onto the training patches
(:mod:`srlib.method.projector`), the exact score of the training patches
themselves, through the same steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from srlib.method.constants import PAPER_K
from srlib.run.config import EvalConfig

METHODS = ("SPR", "AE", "PCA")
METRICS = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC", "aupro": "AUPRO"}


@dataclass
class MethodComparison:
    """The three methods on one category.

    ``results`` {method: {metric: [value per seed]}}; ``per_defect`` {method:
    {defect: image AUROC of the good test images against that defect}} (first
    seed); ``seconds`` {method: training time, as a phrase}; ``budget`` the
    shared training budget in words; ``examples`` one test image of each
    defect with its mask and every method's map (first seed).
    """

    results: dict
    per_defect: dict
    seconds: dict
    budget: str
    examples: dict


def method_metrics(maps: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor) -> dict:
    """The paper's three metrics of one method's maps (image scores: each map's maximum)."""
    from srlib.method.metrics import aupro, image_auroc, pixel_auroc
    from srlib.method.restoration import image_scores

    return {"image_auroc": image_auroc(image_scores(maps), labels), "pixel_auroc": pixel_auroc(maps, masks),
            "aupro": aupro(maps, masks)}


def reconstruction_maps(reconstruct, images: torch.Tensor, out_size: int) -> torch.Tensor:
    """A reconstruction baseline's maps, resized and filtered as SPR's are (:func:`srlib.method.restoration.anomaly_map`)."""
    from srlib.method.baselines import reconstruction_error
    from srlib.method.restoration import anomaly_map

    return anomaly_map(reconstruction_error(reconstruct, images).cpu(), out_size=out_size)


def per_defect_auroc(scores: torch.Tensor, labels: torch.Tensor, found: list[str], defects) -> dict[str, float]:
    """Image AUROC of the good test images against each defect type alone (``found``: each image's defect or "good")."""
    from srlib.method.metrics import image_auroc

    good = [i for i, d in enumerate(found) if d == "good"]
    out = {}
    for defect in defects:
        subset = good + [i for i, d in enumerate(found) if d == defect]
        out[defect] = image_auroc(scores[subset], labels[subset])
    return out


@dataclass
class CategoryImages:
    """One category's images at one size: ``train`` and ``test`` (N, 3, S, S) on the device, the test ``masks``
    and ``labels`` on the CPU, and the test split itself (``test_set``: its defect names)."""

    train: torch.Tensor
    test: torch.Tensor
    masks: torch.Tensor
    labels: torch.Tensor
    test_set: object


def category_images(root: str | Path, category: str, size: int, device: str = "cpu") -> CategoryImages:
    """The good training images and the test split of a category of ``root`` (MVTec layout) at ``size`` px."""
    from srlib.data import folder_dataset

    train_set = folder_dataset("mvtec", root, category, "train", image_size=size)
    test_set = folder_dataset("mvtec", root, category, "test", image_size=size)
    return CategoryImages(torch.stack([train_set[i]["image"] for i in range(len(train_set))]).to(device),
                          torch.stack([test_set[i]["image"] for i in range(len(test_set))]).to(device),
                          torch.stack([test_set[i]["mask"] for i in range(len(test_set))]),
                          torch.tensor(test_set.labels), test_set)


def autoencoders(recipes, train_images: torch.Tensor, ae_dir: str | Path | None = None, device: str = "cpu"):
    """One trained autoencoder per recipe: shipped in ``ae_dir`` with that very recipe, else trained here.

    Returns the models and the training time in words (the shipped models'
    as measured when they were made, or the seconds here; a mean over recipes).
    """
    from srlib.run.autoencoder import load_ae, shipped_ae, train_ae

    models, seconds, where = [], [], set()
    for recipe in recipes:
        shipped = shipped_ae(ae_dir, recipe) if ae_dir is not None else None
        if shipped:
            models.append(load_ae(shipped[0]).to(device))
            seconds.append(shipped[1]["train_seconds"])
            where.add(f"of training steps on {shipped[1]['trained_on']}")
        else:
            model, took = train_ae(recipe, train_images, device)
            models.append(model)
            seconds.append(took)
            where.add("here")
    return models, f"{np.mean(seconds):.0f} s {' and '.join(sorted(where))}"


def compare_methods(model, config: dict, root: str | Path, category: str, spr_seeds, ae_seeds, k: float = PAPER_K,
                    n_draws: int = 3, ae_width: int = 16, latent_channels: int = 8, pca_variance: float = 0.9,
                    device: str = "cpu", spr_seconds: str = "", defects=None,
                    ae_dir: str | Path | None = None) -> MethodComparison:
    """SPR (``model``, trained with the TrainConfig dict ``config``), the AE and PCA on a category of ``root``.

    Images at the score model's training size; the AE's budget is the score
    model's (epochs, batch size, learning rate: :meth:`AERecipe.on_the_budget_of`),
    loaded from ``ae_dir`` when the book ships one trained with that recipe
    (:mod:`srlib.run.autoencoder`), trained here otherwise; SPR's maps are the
    evaluation's (``EvalConfig(k, n_draws, seed)``, 8 images a pass).
    ``defects`` are the defect types of the per-defect table (default: the
    bundled data's, :data:`srlib.data.defects.DEFECTS`).
    """
    from srlib.data.defects import DEFECTS
    from srlib.method.baselines import PCAReconstruction
    from srlib.method.restoration import image_scores
    from srlib.run.autoencoder import AERecipe
    from srlib.run.scoring import anomaly_maps

    defects = list(defects or DEFECTS)
    size = config["image_size"]
    images = category_images(root, category, size, device)
    out_size = images.masks.shape[-1]
    steps = config["epochs"] * -(-len(images.train) // config["batch_size"])
    budget = (f"{size} px; SPR U-Net width {config['width']} and AE width {ae_width}, each {config['epochs']} "
              f"epochs = {steps} steps of batch {config['batch_size']} (lr {config['lr']:g})")
    maps = {m: [] for m in METHODS}
    for seed in spr_seeds:  # Algorithm 1 as srlib evaluate runs it (8 images a pass, one generator per seed)
        evaluation = EvalConfig(k=k, n_draws=n_draws, seed=seed, batch_size=8)
        maps["SPR"].append(anomaly_maps(model, images.test, evaluation, out_size=out_size))
    recipes = [AERecipe.on_the_budget_of(config, category, seed, ae_width, latent_channels) for seed in ae_seeds]
    aes, ae_seconds = autoencoders(recipes, images.train, ae_dir, device)
    maps["AE"] = [reconstruction_maps(ae, images.test, out_size) for ae in aes]
    clock = time.perf_counter()
    pca = PCAReconstruction(pca_variance).fit(images.train)
    pca_seconds = time.perf_counter() - clock
    maps["PCA"].append(reconstruction_maps(pca, images.test, out_size))

    results = {m: {key: [] for key in METRICS} for m in METHODS}
    for method in METHODS:
        for one in maps[method]:
            for key, value in method_metrics(one, images.masks, images.labels).items():
                results[method][key].append(value)
    found = images.test_set.defects
    per_defect = {m: per_defect_auroc(image_scores(maps[m][0]), images.labels, found, defects) for m in METHODS}
    seconds = {"SPR": spr_seconds, "AE": ae_seconds, "PCA": f"{pca_seconds:.1f} s here"}
    shown = [found.index(d) for d in defects]
    examples = {"images": images.test[shown].cpu(), "masks": images.masks[shown],
                **{m: maps[m][0][shown] for m in METHODS}}
    return MethodComparison(results, per_defect, seconds, budget, examples)


def projector_results(root: str | Path, category: str, size: int, patch: int = 7, train_stride: int = 1,
                      query_stride: int = 1, defects=None) -> dict:
    """The exact projector onto the training patches (:mod:`srlib.method.projector`) on a category of ``root``.

    Its maps go through the same resizing, mean filter, maximum and metrics
    as every method of :func:`compare_methods`. Returns ``metrics`` (the
    paper's three), ``per_defect`` (image AUROC of the good test images
    against each defect type), ``scores`` (each test image's), ``examples``
    (the maps of the first image of each defect type) and ``seconds``.
    """
    from srlib.data.defects import DEFECTS
    from srlib.method.projector import nearest_patch_error
    from srlib.method.restoration import anomaly_map, image_scores

    defects = list(defects or DEFECTS)
    clock = time.perf_counter()
    images = category_images(root, category, size)
    raw = nearest_patch_error(images.train, images.test, patch, train_stride, query_stride)
    maps = anomaly_map(raw, out_size=images.masks.shape[-1])
    scores = image_scores(maps)
    found = images.test_set.defects
    return {"metrics": method_metrics(maps, images.masks, images.labels),
            "per_defect": per_defect_auroc(scores, images.labels, found, defects),
            "scores": scores.tolist(), "examples": maps[[found.index(d) for d in defects]],
            "seconds": time.perf_counter() - clock}
