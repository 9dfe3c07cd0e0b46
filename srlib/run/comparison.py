"""SPR against the reconstruction baselines on one category, on the same budget (chapter 4).

:func:`compare_methods` evaluates a trained score model (SPR: Algorithm 1 on
the evaluation's path, :mod:`srlib.run.scoring`, once per perturbation seed)
beside an autoencoder trained for as many optimizer steps of the same batch
size and learning rate (once per training seed) and PCA
(:mod:`srlib.method.baselines`). Every method's map goes through the same
resizing to the masks' size, mean filter and maximum, and the same metrics.
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


def _metrics(maps: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor) -> dict:
    from srlib.method.metrics import aupro, image_auroc, pixel_auroc
    from srlib.method.restoration import image_scores

    return {"image_auroc": image_auroc(image_scores(maps), labels), "pixel_auroc": pixel_auroc(maps, masks),
            "aupro": aupro(maps, masks)}


def compare_methods(model, config: dict, root: str | Path, category: str, spr_seeds, ae_seeds, k: float = PAPER_K,
                    n_draws: int = 3, ae_width: int = 16, latent_channels: int = 8, pca_variance: float = 0.9,
                    device: str = "cpu", spr_seconds: str = "", defects=None) -> MethodComparison:
    """SPR (``model``, trained with the TrainConfig dict ``config``), the AE and PCA on a category of ``root``.

    Images at the score model's training size; the AE's budget is the score
    model's (epochs, batch size, learning rate); SPR's maps are the
    evaluation's (``EvalConfig(k, n_draws, seed)``, 8 images a pass).
    ``defects`` are the defect types of the per-defect table (default: the
    bundled data's, :data:`srlib.data.defects.DEFECTS`).
    """
    from srlib.data import folder_dataset
    from srlib.data.defects import DEFECTS
    from srlib.method.baselines import ConvAutoencoder, PCAReconstruction, reconstruction_error, train_autoencoder
    from srlib.method.metrics import image_auroc
    from srlib.method.restoration import anomaly_map, image_scores
    from srlib.run.scoring import anomaly_maps

    defects = list(defects or DEFECTS)
    size = config["image_size"]
    train_set = folder_dataset("mvtec", root, category, "train", image_size=size)
    test_set = folder_dataset("mvtec", root, category, "test", image_size=size)
    train_images = torch.stack([train_set[i]["image"] for i in range(len(train_set))]).to(device)
    test_images = torch.stack([test_set[i]["image"] for i in range(len(test_set))]).to(device)
    masks = torch.stack([test_set[i]["mask"] for i in range(len(test_set))])
    labels = torch.tensor(test_set.labels)
    steps = config["epochs"] * -(-len(train_set) // config["batch_size"])
    budget = (f"{size} px; SPR U-Net width {config['width']} and AE width {ae_width}, each {config['epochs']} "
              f"epochs = {steps} steps of batch {config['batch_size']} (lr {config['lr']:g})")
    maps = {m: [] for m in METHODS}
    for seed in spr_seeds:  # Algorithm 1 as srlib evaluate runs it (8 images a pass, one generator per seed)
        evaluation = EvalConfig(k=k, n_draws=n_draws, seed=seed, batch_size=8)
        maps["SPR"].append(anomaly_maps(model, test_images, evaluation, out_size=masks.shape[-1]))
    ae_seconds = []
    for seed in ae_seeds:
        torch.manual_seed(seed)
        ae = ConvAutoencoder(width=ae_width, levels=3, latent_channels=latent_channels).to(device)
        history = train_autoencoder(ae, train_images, epochs=config["epochs"], batch_size=config["batch_size"],
                                    lr=config["lr"], seed=seed, progress=False)
        ae_seconds.append(history["seconds"])
        maps["AE"].append(anomaly_map(reconstruction_error(ae, test_images).cpu(), out_size=masks.shape[-1]))
    clock = time.perf_counter()
    pca = PCAReconstruction(pca_variance).fit(train_images)
    pca_seconds = time.perf_counter() - clock
    maps["PCA"].append(anomaly_map(reconstruction_error(pca, test_images).cpu(), out_size=masks.shape[-1]))

    results = {m: {key: [] for key in METRICS} for m in METHODS}
    for method in METHODS:
        for one in maps[method]:
            for key, value in _metrics(one, masks, labels).items():
                results[method][key].append(value)
    good = [i for i, d in enumerate(test_set.defects) if d == "good"]
    per_defect = {}
    for method in METHODS:
        scores = image_scores(maps[method][0])
        per_defect[method] = {}
        for defect in defects:
            subset = good + [i for i, d in enumerate(test_set.defects) if d == defect]
            per_defect[method][defect] = image_auroc(scores[subset], labels[subset])
    seconds = {"SPR": spr_seconds, "AE": f"{np.mean(ae_seconds):.0f} s here", "PCA": f"{pca_seconds:.1f} s here"}
    shown = [test_set.defects.index(d) for d in defects]
    examples = {"images": test_images[shown].cpu(), "masks": masks[shown], **{m: maps[m][0][shown] for m in METHODS}}
    return MethodComparison(results, per_defect, seconds, budget, examples)
