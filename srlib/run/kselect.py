"""``--k auto``: choose k for a trained model from held-out good training images.

:func:`select_k` holds out a seeded part of the training images, makes one
pseudo anomaly of each (:func:`srlib.method.kselect.pseudo_anomalies`),
computes the anomaly maps of both sets at every k of the sweep's grid exactly
as the evaluation does (same N, resize, mean filter, mask size; the same
perturbations at every k) and scores every k with every criterion of
:mod:`srlib.method.kselect`. :func:`select_k_for_checkpoint` reads the good
training images only (:func:`srlib.data.good_training_images`): no test
image is listed or opened.

The held-out images are part of the model's training set unless the model
was trained without them: the pseudo criterion needs images that are normal,
not unseen, and the released and book models were trained on every image.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from srlib.method import kselect
from srlib.run.config import EvalConfig
from srlib.run.sweeps import K_GRID

DEFAULT_CRITERION = "pseudo"


@dataclasses.dataclass
class KChoice:
    """The chosen k and the evidence: every candidate's scores and the images used."""

    k: float
    criterion: str
    candidates: dict  # {k: {"image_auroc", "pixel_auroc", "pseudo", "nonuniformity", "uniformity"}}
    images: list  # file names of the held-out training images
    kinds: list  # the pseudo anomaly made of each
    seed: int
    holdout: float
    n_draws: int

    def chosen_by(self, criterion: str) -> float:
        """The k another criterion would have chosen from the same evidence."""
        return kselect.choose(self.candidates, criterion)

    def to_dict(self) -> dict:
        """JSON-able, for ``result.json``: candidates as a list in k order."""
        return {"k": self.k, "criterion": self.criterion, "seed": self.seed, "holdout": self.holdout,
                "n_draws": self.n_draws, "split": "train", "images": self.images, "pseudo_kinds": self.kinds,
                "chosen_by": {c: self.chosen_by(c) for c in kselect.CRITERIA},
                "candidates": [{"k": k, **scores} for k, scores in sorted(self.candidates.items())]}


def _maps(model, images: torch.Tensor, k: float, config: EvalConfig, mask_size: int) -> np.ndarray:
    """Anomaly maps (N, M, M) of ``images`` at one k, as :func:`srlib.run.evaluate.evaluate_model` makes them."""
    from srlib.method.restoration import anomaly_map, restoration_error

    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    maps = []
    for start in range(0, len(images), config.batch_size):
        batch = images[start:start + config.batch_size].to(device)
        raw = restoration_error(model, batch, k=k, n_draws=config.n_draws, generator=generator)
        maps.append(anomaly_map(raw, out_size=mask_size, resize=config.resize, kernel=config.kernel).cpu())
    return torch.cat(maps)[:, 0].double().numpy()


def select_k(model, train, config: EvalConfig = EvalConfig(), ks=K_GRID, criterion: str = DEFAULT_CRITERION,
             holdout: float = kselect.HOLDOUT_FRACTION, mask_size: int = 256, progress: bool = False,
             what: str = "the category") -> KChoice:
    """Choose k for ``model`` from the good images of ``train`` (a FolderDataset of training images).

    ``config`` is the evaluation the k is for: N, resize, mean filter and
    seed are used as it will use them (its k is ignored). The seed also picks
    the held-out images and makes the pseudo anomalies, so the same seed
    gives the same k. The pixel AUROC of the pseudo set counts every
    (kernel // 8)-th pixel of each row and column.
    """
    seed, kernel = config.seed, config.kernel
    if criterion not in kselect.CRITERIA:
        kselect.choose({}, criterion)  # raises the one-line error
    held = kselect.holdout_indices(len(train), holdout, seed, what=what)
    normal = train.images[held].float().div(255).mul(2).sub(1)  # the dataset's own arithmetic
    pseudo, masks, kinds = kselect.pseudo_anomalies(normal.numpy(), seed=seed)
    masks = F.interpolate(torch.from_numpy(masks)[:, None].float(), size=(mask_size, mask_size), mode="nearest")
    both = torch.cat([normal, torch.from_numpy(pseudo)])
    model.eval()
    candidates = {}
    for k in tqdm(sorted(float(k) for k in ks), desc="choosing k", disable=not progress or None, leave=False):
        maps = _maps(model, both, k, config, mask_size)
        candidates[k] = kselect.criterion_scores(maps[:len(held)], maps[len(held):], masks[:, 0].numpy(),
                                                 pixel_stride=max(1, kernel // 8))
    return KChoice(kselect.choose(candidates, criterion), criterion, candidates,
                   [Path(train.paths[i]).name for i in held], kinds, seed, holdout, config.n_draws)


def select_k_for_checkpoint(model, dataset: str, root, category: str, config: EvalConfig, **options) -> KChoice:
    """:func:`select_k` on the good training images of a category folder at ``config.image_size`` (nothing else is read)."""
    from srlib.data import good_training_images

    train = good_training_images(dataset, root, category, image_size=config.image_size)
    return select_k(model, train, config, what=f"{dataset} category {category!r} ({root})", **options)



def compare_with_test(model, train, test, config: EvalConfig = EvalConfig(), ks=K_GRID, seeds=(0, 1, 2),
                      fixed_k: float = kselect.PAPER_K, progress: bool = False) -> dict:
    """The label-free choices of k against the fixed k and the best k on the test labels (an upper bound).

    Evaluates ``model`` on ``test`` at every k (the labels score the choices,
    they never make them) and chooses k from ``train`` with every seed.
    Returns ``{"sweep": {k: metrics}, "choices": [KChoice.to_dict() per seed],
    "rows": srlib.method.kselect.comparison_rows(...)}``.
    """
    from srlib.run.sweeps import k_sweep

    ks = sorted(set(float(k) for k in ks) | {fixed_k})
    sweep = {k: result.metrics() for k, result in k_sweep(model, test, ks, config, progress=progress).items()}
    choices = [select_k(model, train, config.replace(seed=seed), ks=ks, progress=progress) for seed in seeds]
    chosen = {criterion: [choice.chosen_by(criterion) for choice in choices] for criterion in kselect.CRITERIA}
    return {"sweep": sweep, "choices": [choice.to_dict() for choice in choices],
            "rows": kselect.comparison_rows(sweep, chosen, fixed_k)}
