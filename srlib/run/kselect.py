"""``--k auto``: choose k for a trained model from held-out good training images.

:func:`select_k` holds out a seeded part of the training images, makes one
pseudo anomaly of each (:func:`srlib.method.kselect.pseudo_anomalies`),
computes the anomaly maps of both sets at every k of the sweep's grid by the
evaluation's own path (:mod:`srlib.run.scoring`: same N, resize, mean
filter, precision, mask size; the same perturbations at every k), takes
the model's denoising score-matching loss on the held-out images at every k
beside that of a Gaussian fitted to the other training images, and scores
every k with every criterion of :mod:`srlib.method.kselect`. :func:`select_k_for_checkpoint` reads the good
training images only (:func:`srlib.data.good_training_images`): no test
image is listed or opened. :func:`compare_with_test` holds the choices
against the test metrics at every k (chapter 7).

The held-out images are part of the model's training set unless the model
was trained without them: the criteria need images that are normal, not
unseen, and the released and book models were trained on every image.

The default criterion, :data:`DEFAULT_CRITERION`, is chosen by one rule
(:func:`srlib.results.kchoice.choose`) on a *validation* draw of the bundled
data (``srlib data textures --seed 1``: other crops, other defects), never on
the book's test split: with the book's shipped models, each criterion chooses
k from that draw's held-out good training images, and the criterion whose
choices have the highest mean image AUROC on that draw's test split, over the
five categories and two seeds, wins (within 0.01 of the best: the best worst
category). ``benchmarks/k_choice_validation.py`` measures it; its rows are
``notebooks/weights/k_choice.csv`` and a test holds this constant to them.
With the shipped models of commit 6ee526f (cpu preset, k ~ U(1e-5, 0.03),
batches of 4) on the validation draw: ``pseudo`` 0.870, ``dsm`` 0.831,
``uniformity`` 0.810, against 0.872 at k = 1e-3 and 0.887 at each category's
best k on that draw's labels: these models detect well at the paper's k, and
no criterion beats it there. On the book's test split, reported and not used
to choose, with the same two seeds (each seed also draws the sweep's
perturbations): ``pseudo`` 0.891, ``dsm`` 0.864, ``uniformity`` 0.825, fixed
0.878, best k 0.926. With the batch-16 models of commit 6d12d61 the
validation draw gave ``pseudo`` 0.860, ``dsm`` 0.796, ``uniformity`` 0.693
against 0.819 fixed. With the
earlier models (commit 52f7fd1, k ~ U(1e-5, 1)) ``dsm`` measured best on the
test split (0.712; ``pseudo`` 0.661, fixed 0.680), which was then used to
choose: the rule is re-applied, on the validation draw, when the models change.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from srlib.errors import SrlibError
from srlib.method import kselect
from srlib.method.constants import PAPER_K
from srlib.run.config import K_GRID, EvalConfig
from srlib.run.scoring import PER_BATCH, anomaly_maps

DEFAULT_CRITERION = "pseudo"


@dataclasses.dataclass
class KChoice:
    """The chosen k and the evidence: every candidate's scores and the images used."""

    k: float
    criterion: str
    candidates: dict  # {k: {"image_auroc", "pixel_auroc", "pseudo", "nonuniformity", "uniformity",
    #                        "dsm_loss", "gaussian_dsm_loss", "dsm_ratio", "dsm"}}
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


def select_k(model, train, config: EvalConfig = EvalConfig(), ks=K_GRID, criterion: str = DEFAULT_CRITERION,
             holdout: float = kselect.HOLDOUT_FRACTION, mask_size: int = 256, progress: bool = False,
             what: str = "the category") -> KChoice:
    """Choose k for ``model`` from the good images of ``train`` (a FolderDataset of training images).

    ``config`` is the evaluation the k is for: N, resize, mean filter and
    seed are used as it will use them (its k is ignored). The seed also picks
    the held-out images and makes the pseudo anomalies, so the same seed
    gives the same k. The pixel AUROC of the pseudo set counts every
    (kernel // 8)-th pixel of each row and column. The ``dsm`` criterion's
    Gaussian reference is fitted to the training images not held out, and
    both DSM losses are taken over N draws of the noise seeded as the maps'
    (:func:`_dsm_scores`).
    """
    seed, kernel = config.seed, config.kernel
    if criterion not in kselect.CRITERIA:
        kselect.choose({}, criterion)  # raises the one-line error
    held = kselect.holdout_indices(len(train), holdout, seed, what=what)
    normal = train.images[held].float().div(255).mul(2).sub(1)  # the dataset's own arithmetic
    pseudo, masks, kinds = kselect.pseudo_anomalies(normal.numpy(), seed=seed)
    masks = F.interpolate(torch.from_numpy(masks)[:, None].float(), size=(mask_size, mask_size), mode="nearest")
    both = torch.cat([normal, torch.from_numpy(pseudo)])
    ks = sorted(float(k) for k in ks)
    dsm = _dsm_scores(model, train, held, normal, ks, config)
    candidates = {}
    for k in tqdm(ks, desc="choosing k", disable=not progress or None, leave=False):
        maps = anomaly_maps(model, both, config.replace(k=k), out_size=mask_size, noise=PER_BATCH)[:, 0].double().numpy()
        candidates[k] = kselect.criterion_scores(maps[:len(held)], maps[len(held):], masks[:, 0].numpy(),
                                                 pixel_stride=max(1, kernel // 8), dsm=dsm[k])
    return KChoice(kselect.choose(candidates, criterion), criterion, candidates,
                   [Path(train.paths[i]).name for i in held], kinds, seed, holdout, config.n_draws)


def _dsm_scores(model, train, held: list, normal: torch.Tensor, ks: list, config: EvalConfig) -> dict:
    """The ``dsm`` criterion at every k: the model's held-out DSM loss against the Gaussian of the other training images."""
    from srlib.method.gaussian import StationaryGaussianScore
    from srlib.run.device import set_precision

    rest = sorted(set(range(len(train))) - set(held))
    reference = StationaryGaussianScore(train.images[rest].float().div(255).mul(2).sub(1), model.sde)
    draws = dict(n_draws=config.n_draws, seed=config.seed, batch_size=config.batch_size)
    model.eval()
    with set_precision(next(model.parameters()).device, config.precision):  # the network as the maps run it
        losses = kselect.heldout_dsm_losses(model, normal, ks, **draws)
    return kselect.dsm_scores(losses, kselect.heldout_dsm_losses(reference, normal, ks, **draws))


def select_k_for_checkpoint(model, dataset: str, root, category: str, config: EvalConfig, **options) -> KChoice:
    """:func:`select_k` on the good training images of a category folder at ``config.image_size`` (nothing else is read)."""
    from srlib.data import good_training_images

    train = good_training_images(dataset, root, category, image_size=config.image_size)
    return select_k(model, train, config, what=f"{dataset} category {category!r} ({root})", **options)



def compare_with_test(model, train, sweep: dict, config: EvalConfig = EvalConfig(), seeds=(0, 1, 2),
                      fixed_k: float = PAPER_K, progress: bool = False, **options) -> dict:
    """The label-free choices of k against the fixed k and the best k on the test labels (an upper bound).

    ``sweep`` holds the test split's metrics at every k of the grid,
    ``{k: {"image_auroc", "pixel_auroc", "aupro", ...}}`` (the rows of
    subset ``all`` of a ``k_sweep.csv``, or the ``metrics()`` of
    :func:`srlib.run.sweeps.k_sweep`'s results); it must hold ``fixed_k``.
    The labels score the choices, they never make them: k is chosen from
    ``train`` over the sweep's grid with every seed of ``seeds``
    (``config`` with that seed; ``options`` go to :func:`select_k`). Returns ``{"sweep": sweep, "choices":
    [KChoice per seed], "rows": srlib.method.kselect.comparison_rows(...)}``.
    """
    if fixed_k not in sweep:
        raise SrlibError(f"the sweep has no k = {fixed_k:g} to compare with: its grid is "
                         f"{', '.join(f'{k:g}' for k in sorted(sweep))}")
    ks = sorted(sweep)
    choices = [select_k(model, train, config.replace(seed=seed), ks=ks, progress=progress, **options) for seed in seeds]
    chosen = {criterion: [choice.chosen_by(criterion) for choice in choices] for criterion in kselect.CRITERIA}
    return {"sweep": sweep, "choices": choices, "rows": kselect.comparison_rows(sweep, chosen, fixed_k)}
