"""One category of a reproduction, step by step: what chapter 5 runs (and ``srlib reproduce`` runs through it).

:func:`plan_runs` decides, per category, what to train or load and where the
results go (:class:`CategoryRun`); the training is
:func:`srlib.run.pretrained.train_weights`; :func:`sweep_category` evaluates
the model at every k of the grid (choosing k first when it is ``"auto"``) and
writes the k sweep and the gallery; :func:`n_ablation` evaluates N = 1, 3, 5
over perturbation seeds and writes the result files of Table 5;
:func:`write_category_result` writes the category's ``result.json`` from the
sweep's evaluation at k, without evaluating again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from srlib.errors import SrlibError
from srlib.run.config import K_GRID, EvalConfig, TrainConfig

N_DRAWS = (1, 3, 5)  # the paper's Table 5


@dataclass
class CategoryRun:
    """What chapter 5 does with one category.

    ``dataset`` is the folder layout and ``root`` the data folder; ``name``
    the dataset's name in result tables (``textures`` for the
    bundled data) and ``source`` where the images came from; ``weights`` the
    checkpoint to evaluate (None until trained); ``config`` its training
    configuration (None for a released checkpoint without one); ``size`` the
    evaluation's image size; ``budget`` the training budget in words;
    ``evaluation`` the evaluation at that size. ``k`` and ``choice`` (the
    :class:`srlib.run.kselect.KChoice` of ``k = "auto"``) are set by
    :func:`sweep_category`.
    """

    dataset: str
    root: Path
    category: str
    name: str
    source: str
    run_dir: Path
    weights: Path | None
    config: TrainConfig | None
    size: int
    budget: str
    evaluation: EvalConfig
    k: float | None = None
    choice: object | None = None


def read_chapter_config(path: str | Path) -> dict:
    """What ``srlib reproduce`` hands chapter 5 (:meth:`srlib.reproduce.plan.Job.chapter5_config`), as objects.

    ``dataset``, ``root``, ``category``, ``checkpoint`` and ``k_grid`` as
    written; ``evaluation`` an :class:`EvalConfig`; ``train`` a
    :class:`TrainConfig` or None (a released checkpoint).
    """
    from srlib.run.config import config_from

    try:
        given = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise SrlibError(f"cannot read the configuration file {path}: {err}") from None
    return {**given, "evaluation": EvalConfig.from_dict(given["evaluation"]),
            "train": config_from(given["train"], str(path)) if given.get("train") else None}


def chapter_data(root: str | Path, category: str, out_dir: str | Path) -> tuple[Path, list[str]]:
    """The data folder and its categories to run: ``root`` and ``[category]``, or the bundled data.

    With ``root`` empty, the bundled categories, written once into
    ``out_dir/bundled_textures`` (``srlib data textures``); with a ``root``, a
    category must be named (its folder's name, or a path to its folder).
    """
    from srlib.data import TEXTURE_CATEGORIES, make_textures
    from srlib.data.layouts import category_name

    if not root:
        root = Path(out_dir) / "bundled_textures"
        if not all((root / c / "readme.txt").is_file() for c in TEXTURE_CATEGORIES):
            make_textures(root)
        return root, [category] if category else list(TEXTURE_CATEGORIES)
    if not category:
        raise SrlibError(f"name the category of {root} to run (category = ...), or leave root empty for the bundled data")
    return Path(root), [category_name(root, category)]  # a path to the folder (tab completion's) names it too


def plan_runs(dataset: str, root: str | Path, categories: list[str], out_dir: str | Path, evaluation: EvalConfig,
              preset: str = "cpu", overrides: dict | None = None, device: str = "auto", checkpoint: str = "",
              train: TrainConfig | None = None, weights_dir: str | Path | None = None, resume: bool = False
              ) -> dict[str, CategoryRun]:
    """Per category: its run folder (emptied unless ``resume``), what to evaluate, the budget in words.

    A ``checkpoint`` is evaluated as it is. Otherwise the category trains
    ``train`` (a configuration ``srlib reproduce`` planned) or the ``preset``
    with ``overrides`` (``None`` values ignored) on ``device``; when
    ``weights_dir`` is given and holds the book's model trained with that
    configuration (:func:`srlib.run.pretrained.shipped_checkpoint`), that
    model is evaluated instead of training. A run folder inside ``root`` is
    refused (srlib never writes into a dataset).
    """
    from srlib.data.layouts import category_name, refuse_inside_root
    from srlib.reproduce.folders import clear_run_folder, run_folder
    from srlib.run.checkpoint import AUTHORS_IMAGE_SIZE, describe_checkpoint
    from srlib.run.evaluate import data_source
    from srlib.run.pretrained import shipped_checkpoint

    runs = {}
    for category in categories:
        category = category_name(root, category)  # a path to the folder (tab completion's) names it too
        name, source = data_source(dataset, root, category)  # "textures" for the bundled data, never "mvtec"
        run_dir = run_folder(out_dir, dataset, root, category)
        refuse_inside_root(root, run_dir, f"out_dir {out_dir}")  # as srlib evaluate refuses its --out there
        if not resume:
            clear_run_folder(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        weights, config = (Path(checkpoint), None) if checkpoint else (None, train)
        if checkpoint:
            kind, config = describe_checkpoint(checkpoint)
            size = evaluation.image_size or (config.image_size if config else AUTHORS_IMAGE_SIZE)
            budget = f"{kind} {Path(checkpoint).name}, evaluated at {size} px"
        else:
            config = config or TrainConfig.preset_for(preset, dataset, root, category, device=device,
                                                      **(overrides or {}))
            size = config.image_size
            budget = (f"preset {config.preset}: {config.epochs} epochs, {config.image_size} px, U-Net width "
                      f"{config.width}, batch {config.batch_size}, lr {config.lr:g}")
            shipped = shipped_checkpoint(weights_dir, config) if weights_dir is not None else None
            if shipped:
                weights = shipped[0]
                budget += f"; the book's trained model ({shipped[1]['train_seconds']})"
        runs[category] = CategoryRun(dataset, Path(root), category, name, source, run_dir, weights, config, size, budget,
                                     evaluation.replace(image_size=size))
    return runs


def sweep_category(run: CategoryRun, model, test, k, k_grid=(), progress: bool = False):
    """Evaluate ``model`` on ``test`` at every k of the grid (``k_grid`` or :data:`K_GRID`) and at ``k``.

    ``k = "auto"`` is chosen first from held-out good training images
    (:func:`srlib.run.kselect.select_k` over the grid), before any test image
    counts; ``run.k`` and ``run.choice`` record it. Writes ``k_sweep.csv`` and
    ``gallery.npz`` into the run folder (for chapter 6) and returns the sweep
    ``{k: EvalResult}``, its CSV rows and the gallery.
    """
    from srlib.data import folder_dataset
    from srlib.run import sweeps
    from srlib.run.config import AUTO_K
    from srlib.run.kselect import select_k

    grid = tuple(k_grid) or K_GRID
    if k == AUTO_K:
        train = folder_dataset(run.dataset, run.root, run.category, "train", image_size=run.size)
        run.choice = select_k(model, train, run.evaluation, ks=grid)
        run.k = run.choice.k
    else:
        run.choice, run.k = None, k
    sweep = sweeps.k_sweep(model, test, sorted(set(grid) | {run.k}), run.evaluation, progress=progress)
    rows = sweeps.sweep_rows(sweep, test.defects, test.labels, run.name, run.category, run.evaluation.n_draws)
    sweeps.write_k_sweep(run.run_dir / sweeps.K_SWEEP, rows)
    gallery = sweeps.make_gallery(sweep, test, run.name, run.category, count=4)
    sweeps.write_gallery(run.run_dir / sweeps.GALLERY, gallery)
    return sweep, rows, gallery


def write_category_result(run: CategoryRun, result, model, test, device, n_overlays: int = 8) -> dict:
    """The category's ``result.json`` (and overlays) from ``result``, the sweep's evaluation at ``run.k``."""
    from srlib.run.evaluate import write_result

    return write_result(run.run_dir, run.weights, run.dataset, run.root, run.category,
                        run.evaluation.replace(k=run.k), result, model, test, device, k_choice=run.choice,
                        n_overlays=n_overlays)


def n_ablation(run: CategoryRun, model, test, main, seeds, device, progress: bool = False) -> dict:
    """The paper's Table 5 for one category: N = 1, 3, 5 at ``run.k``, each with every perturbation seed.

    ``main`` is the sweep's evaluation at ``run.k`` (N and ``seed`` of
    ``run.evaluation``), used as it is. The evaluation of each other N with
    that seed is written as a result file (``n_draws_<N>/result.json``, without
    overlays), which chapter 6 puts in Table 5. Returns ``{N: {metric: [value
    per seed]}}``.
    """
    from srlib.run.evaluate import evaluate_model, write_result
    from srlib.run.files import n_draws_folder

    seed, by_n = run.evaluation.seed, {}
    for n in N_DRAWS:
        by_n[n] = {"image_auroc": [], "pixel_auroc": [], "aupro": []}
        for s in seeds:
            config = run.evaluation.replace(k=run.k, n_draws=n, seed=s)
            if n == run.evaluation.n_draws and s == seed:
                result = main
            else:
                result = evaluate_model(model, test, config, progress=progress and s == seed)
                if s == seed:
                    write_result(run.run_dir / n_draws_folder(n), run.weights, run.dataset, run.root, run.category,
                                 config, result, model, test, device, n_overlays=0)
            for key, values in by_n[n].items():
                values.append(result.metrics()[key])
    return by_n
