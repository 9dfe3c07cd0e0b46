"""Evaluate a score model on a test split: anomaly maps, scores, the paper's metrics.

``evaluate_model`` returns every map and score (for notebooks), through
the one scoring path (:mod:`srlib.run.scoring`); ``write_result`` writes the
files below for an evaluation already made (chapter 5 writes its k sweep's);
``evaluate_checkpoint`` is ``srlib evaluate``: it reads an srlib checkpoint
(training checkpoint or final weights: image size from the saved
configuration) or the authors' plain state dict (192 px), and writes into
its output folder

``result.json``
    Image AUROC, pixel AUROC, AUPRO, the evaluation settings (the fields of
    ``EvalConfig`` at the top level, the image size resolved), the schedule's
    sigma, the training configuration, timing, the srlib version and where
    the data came from: the format ``srlib.results.tables`` reads.
``overlays/``
    PNGs of a sample of test images: input | anomaly map over the input |
    ground truth. Map colours share one scale across the category.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from srlib import __version__
from srlib.atomic import output_folder, write_text
from srlib.errors import SrlibError
from srlib.run.checkpoint import AUTHORS_IMAGE_SIZE
from srlib.run.config import AUTO_K, EvalConfig
from srlib.run.files import OVERLAYS, RESULT
from srlib.run.kselect import KChoice, select_k_for_checkpoint
from srlib.run.scoring import PER_BATCH, Scorer


@dataclasses.dataclass
class EvalResult:
    """Per-image anomaly maps and scores of a test split, and their metrics.

    ``maps`` and ``masks`` are (N, 1, M, M) at the mask size, ``labels`` and
    ``scores`` (N,); all on the CPU.
    """

    maps: torch.Tensor
    masks: torch.Tensor
    labels: torch.Tensor
    scores: torch.Tensor
    image_auroc: float
    pixel_auroc: float
    aupro: float
    seconds: float

    def metrics(self) -> dict:
        return {"image_auroc": self.image_auroc, "pixel_auroc": self.pixel_auroc, "aupro": self.aupro}


def evaluate_model(model: torch.nn.Module, dataset, config: EvalConfig = EvalConfig(),
                   progress: bool = True) -> EvalResult:
    """Anomaly maps of every test image (Algorithm 1) and the paper's metrics.

    Parameters
    ----------
    model : torch.nn.Module
        Score model ``model(x, k)`` with its schedule in ``model.sde``, on the device to evaluate on.
    dataset : torch Dataset
        Items with ``image``, ``label`` and ``mask`` (as ``srlib.data.folder_dataset``).
    config : EvalConfig
        k, N, resizing, mean filter, seed (the perturbations get a generator of
        their own: the global RNG is left alone) and test images per pass.
        ``config.image_size`` is the dataset's business, not read here.
    """
    from srlib.method.metrics import aupro, image_auroc, pixel_auroc
    from srlib.method.restoration import image_scores

    scorer = Scorer(model, config, noise=PER_BATCH)  # refuses k = "auto"
    maps, masks, labels = [], [], []
    started = time.perf_counter()
    loader = DataLoader(dataset, batch_size=config.batch_size, pin_memory=scorer.device.type == "cuda")
    for batch in tqdm(loader, desc="evaluating", unit="batch", disable=not progress or None, leave=False):
        maps.append(scorer(batch["image"], out_size=batch["mask"].shape[-2:]))
        masks.append(batch["mask"])
        labels.append(torch.as_tensor(batch["label"]))
    seconds = time.perf_counter() - started
    maps, masks, labels = torch.cat(maps), torch.cat(masks), torch.cat(labels)
    scores = image_scores(maps)
    return EvalResult(
        maps=maps,
        masks=masks,
        labels=labels,
        scores=scores,
        image_auroc=float(image_auroc(scores, labels)),
        pixel_auroc=float(pixel_auroc(maps, masks)),
        aupro=float(aupro(maps, masks)),
        seconds=seconds,
    )


def data_source(dataset: str, root: str | Path, category: str) -> tuple[str, str]:
    """The dataset's name for result tables and a label of where the images came from.

    The bundled textures are in the MVTec AD layout but are not MVTec AD: they
    are named ``textures``, so tables never put them beside the paper's numbers.
    So is a category of one's own in a benchmark's layout (not one of its
    categories): it is named after its root folder (``widgets`` for
    ``/data/widgets``; ``mvtec_own`` where that folder is named like a benchmark).
    """
    from srlib.data.layouts import LAYOUTS
    from srlib.data.textures import MARK

    readme = Path(root) / category / "readme.txt"
    if readme.is_file():
        first = (readme.read_text(errors="replace").splitlines() or [""])[0]
        if first.startswith(MARK):
            return "textures", "bundled textures (srlib data textures): " + first
    folder = Path(root).expanduser().resolve()
    layout = LAYOUTS.get(dataset.lower())
    if layout is not None and category not in layout.categories:
        name = folder.name or "own"
        name = f"{name}_own" if name.lower() in (*LAYOUTS, "textures") else name
        return name, f"own images in the {layout.title} layout: {folder}"
    return dataset, f"{dataset} folder {folder}"


def evaluate_checkpoint(
    checkpoint: str | Path,
    dataset: str,
    root: str | Path,
    category: str,
    out: str | Path,
    config: EvalConfig = EvalConfig(),
    device: str = "auto",
    n_overlays: int = 8,
    progress: bool = True,
    k_choice: KChoice | None = None,
) -> dict:
    """Evaluate a checkpoint file on a category's test split; write ``result.json`` and overlays to ``out``.

    ``config.image_size`` None means the checkpoint's training size (192 for
    the authors' weights). ``config.k == "auto"``: k is chosen from held-out
    good training images before the test split is read (or taken from
    ``k_choice``, a choice already made for this checkpoint and config), and
    ``result.json`` holds the evidence under ``k_selection``. Returns the
    dictionary written to ``result.json``.
    """
    from srlib.data import folder_dataset
    from srlib.data.layouts import category_name, refuse_inside_root
    from srlib.run.checkpoint import describe_checkpoint, load_score_model
    from srlib.run.device import memory_format, pick_device, set_precision

    if n_overlays < 0:
        raise SrlibError(f"--overlays must be 0 (none) or more, got {n_overlays}")
    category = category_name(root, category)
    refuse_inside_root(root, out, f"--out {out}")
    out = output_folder(out)

    device = pick_device(device)
    set_precision(device, config.precision)
    model = load_score_model(checkpoint).to(device, memory_format=memory_format(device, None))
    kind, trained = describe_checkpoint(checkpoint)  # a readable ScoreUNet checkpoint, now
    config = config.replace(image_size=config.image_size or (trained.image_size if trained else AUTHORS_IMAGE_SIZE))
    if config.k == AUTO_K:  # before the test split is even listed
        k_choice = k_choice or select_k_for_checkpoint(model, dataset, root, category, config, progress=progress)
        config = config.replace(k=k_choice.k)
    else:
        k_choice = None
    test = folder_dataset(dataset, root, category, "test", image_size=config.image_size, progress=progress)
    result = evaluate_model(model, test, config, progress=progress)
    return write_result(out, checkpoint, dataset, root, category, config, result, model, test, device, k_choice,
                        n_overlays)


def write_result(out: str | Path, checkpoint: str | Path, dataset: str, root: str | Path, category: str,
                 config: EvalConfig, result: EvalResult, model, test, device, k_choice: KChoice | None = None,
                 n_overlays: int = 8) -> dict:
    """Write ``result.json`` and overlays of an evaluation already made into ``out``; returns the record.

    ``result`` is ``evaluate_model(model, test, config)`` of the checkpoint
    file ``checkpoint`` on the test split ``test`` of ``category`` (a k sweep
    has it at every k: no second evaluation is needed); ``config`` holds the
    number k it was made with, ``k_choice`` the evidence when that k was chosen.
    """
    from srlib.run.checkpoint import describe_checkpoint
    from srlib.run.pictures import save_overlays

    out = output_folder(out)
    kind, trained = describe_checkpoint(checkpoint)
    name, source = data_source(dataset, root, category)
    if trained is not None:
        settings = trained.to_dict()
    else:  # the authors' weights: what the result tables need to label them
        settings = {"checkpoint": str(Path(checkpoint).resolve()), "image_size": config.image_size,
                    "width": model.width}
    record = {
        "dataset": name,
        "layout": dataset,
        "root": str(Path(root).resolve()),
        "category": category,
        **result.metrics(),
        **config.to_dict(),
        **({"k_selection": k_choice.to_dict()} if k_choice else {}),
        "width": model.width,
        "sigma": model.sde.sigma,
        "checkpoint": str(Path(checkpoint).resolve()),
        "checkpoint_kind": kind,
        "config": settings,
        "images": len(test),
        "defective_images": int(result.labels.sum()),
        "data_source": source,
        "timing": {"seconds": result.seconds, "seconds_per_image": result.seconds / len(test), "device": str(device)},
        "srlib_version": __version__,
    }
    save_overlays(test, result, out / OVERLAYS, n_overlays)
    write_text(out / RESULT, json.dumps(record, indent=2) + "\n")
    return record
