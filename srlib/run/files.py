"""Every file name of a run folder, in one place.

A training run (``srlib train --out DIR``, chapter 5's ``train/``) holds
``CHECKPOINT``, ``WEIGHTS``, ``CONFIG``, ``LOG`` and, with held-out images,
``HOLDOUT``; an evaluation (``srlib evaluate --out DIR``) ``RESULT`` and
``OVERLAYS``; a prediction (``srlib predict --out DIR``) ``SCORES``, ``MAPS``,
``OVERLAYS``, ``PREDICTION`` and a README.txt. A category folder
of chapter 5 / ``srlib reproduce`` holds its training run in ``TRAIN``, the
evaluation at (k, N), the N ablation in ``n_draws_folder(n)``, the k sweep
``K_SWEEP`` and the gallery ``GALLERY``, the executed chapter (named after
``CHAPTER5``), and ``FAILED`` after a failure, ``LOCK`` while it runs.
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINT = "checkpoint.pt"  # resumable training state, format TRAIN_FORMAT
WEIGHTS = "model.pt"  # final EMA weights: a plain state dict, the authors' format
CONFIG = "config.json"  # the TrainConfig, beside CHECKPOINT and WEIGHTS
LOG = "log.jsonl"  # one JSON line per training epoch
TRAINING = ".srlib-train.lock"  # held by the srlib train writing into the folder
HOLDOUT = "holdout.json"  # held-out good images and their scores (srlib train --holdout), for predict's threshold
TRAIN_FORMAT = "srlib-train-v1"  # the "format" tag inside CHECKPOINT

RESULT = "result.json"  # metrics and settings of one evaluation: what the tables read
OVERLAYS = "overlays"  # PNG strips: input | map | ground truth
K_SWEEP = "k_sweep.csv"  # chapter 5's k sweep (Fig. 6)
GALLERY = "gallery.npz"  # chapter 5's maps at every k (Fig. 4)

SCORES = "scores.csv"  # srlib predict: image, score, anomalous, error
MAPS = "maps"  # srlib predict: <image>.npy anomaly maps (OVERLAYS holds <image>.png)
PREDICTION = "prediction.json"  # srlib predict: threshold, rule, settings, counts (README.txt in words); written last
PREDICT_README = "README.txt"  # srlib predict: the same in words
PREDICTING = ".srlib-predict.lock"  # held by the srlib predict writing into the folder
PREDICT_PARTIAL = ".srlib-predict.partial"  # the prediction being written, swapped in when complete
PREDICT_OLD = ".srlib-predict.old"  # the earlier prediction while the new one replaces it

TRAIN = "train"  # a category folder's training run
CHAPTER5 = "05_training_on_mvtec.ipynb"  # the executed chapter kept in a category folder (and its .log, .parameters.json)
CHAPTER5_CONFIG = "05_training_on_mvtec.config.json"  # the configurations srlib reproduce hands chapter 5
FAILED = "failed.txt"  # a category that failed: the error and where its log is
LOCK = ".lock"  # held by the srlib reproduce worker running the category
TABLES = "tables"  # srlib reproduce's tables, beside the dataset folders


def n_draws_folder(n: int) -> str:
    """The subfolder of a category's evaluation with N = ``n`` draws (Table 5)."""
    return f"n_draws_{n}"


def written_by(folder: Path) -> str | None:
    """The srlib command whose output ``folder`` is, recognised by its files; None for any other folder.

    ``srlib train --images`` and ``srlib predict --images`` leave such folders
    alone: a prediction's overlays are neither good images nor new ones.
    """
    def has(*names: str) -> bool:
        return all((folder / name).exists() for name in names)

    if has(PREDICTION) or has(SCORES, OVERLAYS) or has(MAPS, OVERLAYS) or has(PREDICTING):
        return "srlib predict"
    if has(CHECKPOINT) or has(WEIGHTS, CONFIG) or has(LOG, CONFIG) or has(TRAINING):
        return "srlib train"
    if has(RESULT) or has(CHAPTER5):
        return "srlib evaluate"
    return None


def refuse_predict_outputs(images: Path, what: str = "--images") -> None:
    """Refuse ``images`` when it is (inside) the maps or overlays of an srlib prediction: not images to use."""
    from srlib.errors import SrlibError

    images = Path(images).expanduser()
    resolved = images.resolve()
    for folder in (resolved, *resolved.parents):
        if folder.name in (MAPS, OVERLAYS, PREDICT_PARTIAL) and written_by(folder.parent) == "srlib predict":
            raise SrlibError(f"{what} {images} is {'' if folder == resolved else 'inside '}the {folder.name} of "
                             f"srlib predict's output {folder.parent}, not images to use: give the folder of your "
                             "own images")
