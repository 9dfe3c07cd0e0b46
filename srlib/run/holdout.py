"""Held-out good images and the decision threshold they give.

The paper scores images but never says where to cut: on a production line
someone must. ``srlib train --holdout SHARE`` keeps a share of the good
training images out of training (which ones: a permutation seeded by the
run's seed), scores them with the final weights, and writes their scores to
``holdout.json`` in the run folder. ``srlib predict`` then flags an image as
anomalous when its score is above the threshold

    threshold = the q-quantile of the held-out good images' scores

(numpy's linear interpolation; q = 1 by default: the largest, so no held-out
good image would have been flagged). With few held-out images a quantile
below 1 is mostly interpolation: keep q = 1 or hold out more. ``--threshold``
replaces the rule by a number of the user's choosing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srlib.atomic import write_text
from srlib.errors import SrlibError
from srlib.run.files import HOLDOUT
DEFAULT_QUANTILE = 1.0


def split_holdout(n_images: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept for training, held out), each sorted; ``round(share * n)`` held out, at least one if ``share > 0``."""
    if not 0 <= share < 1:
        raise SrlibError(f"holdout must be a share in [0, 1), got {share}")
    held = 0 if share == 0 else max(1, round(share * n_images))
    if held and n_images - held < 1:
        raise SrlibError(f"holding out {held} of {n_images} good images leaves none to train on: add images or lower --holdout")
    order = np.random.default_rng(seed).permutation(n_images)
    return np.sort(order[held:]), np.sort(order[:held])


@dataclass
class Threshold:
    """A decision threshold and the sentence that says where it came from."""

    value: float
    rule: str

    def decide(self, score: float) -> bool:
        """Anomalous when the score is above the threshold."""
        return score > self.value


def quantile_threshold(scores, quantile: float = DEFAULT_QUANTILE) -> Threshold:
    """The ``quantile`` of held-out good scores (see the module's docstring)."""
    if not 0 < quantile <= 1:
        raise SrlibError(f"--quantile must be in (0, 1], got {quantile}: 1 takes the largest held-out score")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0 or not np.isfinite(scores).all():
        raise SrlibError("no finite held-out scores to set a threshold from: pass --threshold")
    value = float(np.quantile(scores, quantile))
    which = "the largest" if quantile == 1 else f"the {quantile:g} quantile (linear interpolation)"
    return Threshold(value, f"{which} of {scores.size} held-out good images' scores; anomalous if score > threshold")


def given_threshold(value: float) -> Threshold:
    if not math.isfinite(value):
        raise SrlibError(f"--threshold must be a finite number, got {value}")
    return Threshold(float(value), "given by --threshold; anomalous if score > threshold")


def weights_digest(model) -> str:
    """sha256 of a model's weights (names, dtypes, shapes and values): which model a record was made with."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def write_holdout(run: str | Path, paths: list, scores, evaluation: dict, weights: str | None = None,
                  config: dict | None = None) -> Path:
    """Write the held-out images (absolute paths), their scores and the evaluation settings, atomically.

    ``weights`` (:func:`weights_digest`) and ``config`` (the training's
    configuration) say which model the scores are of: ``srlib predict``
    refuses them for another one.
    """
    record = {
        "images": [str(Path(p).resolve()) for p in paths],
        "scores": [float(s) for s in scores],
        "evaluation": evaluation,
        **({"weights_sha256": weights} if weights else {}),
        **({"config": config} if config else {}),
    }
    path = Path(run) / HOLDOUT
    write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def read_holdout(path: str | Path) -> dict:
    """The record of :func:`write_holdout`, checked; one line naming the file (and the key) if it is missing or damaged.

    Its ``"evaluation"`` comes back as an :class:`srlib.run.config.EvalConfig`.
    """
    from srlib.run.config import EvalConfig, load_config
    from srlib.run.files import CONFIG

    path = Path(path)
    again = "run the srlib train command that made it again with --resume (it scores the held-out images again)"
    if not path.is_file():
        config = path.with_name(CONFIG)
        held = load_config(config).holdout if config.is_file() else 0
        if held:
            raise SrlibError(f"no held-out scores at {path}, though the run held out {held:g} of its images (its "
                             f"training was stopped before scoring them, or the file was removed): {again}, "
                             "or pass --threshold")
        raise SrlibError(
            f"no held-out scores at {path}: train with --holdout (srlib train --images keeps 0.2 by default), "
            "or pass --threshold"
        )
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict):
            raise ValueError(f"expected a JSON object, got {type(record).__name__}")
        images, scores, evaluation = record["images"], record["scores"], record["evaluation"]
        if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
            raise ValueError("'images' must be a list of paths")
        if not isinstance(scores, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   and math.isfinite(v) for v in scores):
            raise ValueError("'scores' must be a list of finite numbers")
        if len(images) != len(scores):
            raise ValueError(f"{len(images)} 'images' but {len(scores)} 'scores'")
        if not isinstance(evaluation, dict):
            raise ValueError("'evaluation' must be a JSON object of settings")
        record["evaluation"] = EvalConfig.from_dict(evaluation)
        if not isinstance(record.get("weights_sha256", ""), str):
            raise ValueError("'weights_sha256' must be a string")
        if not isinstance(record.get("config", {}), dict):
            raise ValueError("'config' must be a JSON object of settings")
    except KeyError as err:
        raise SrlibError(f"{path} is damaged (no {err} key): {again}, or pass --threshold") from None
    except (OSError, ValueError, TypeError, SrlibError) as err:
        raise SrlibError(f"{path} is damaged ({err}): {again}, or pass --threshold") from None
    return record


def score_holdout(model, images, paths: list, image_size: int, run: str | Path, progress: bool = True,
                  config: dict | None = None) -> Path:
    """Score held-out images (N, 3, S, S) in [-1, 1] with the default evaluation settings; write ``holdout.json``.

    Each image is scored as ``srlib predict`` scores it (the ``"image"`` noise convention of :mod:`srlib.run.scoring`).
    """
    from srlib.run.config import EvalConfig
    from srlib.run.scoring import MAP_SIZE, PER_IMAGE, anomaly_maps

    evaluation = EvalConfig(image_size=image_size)
    maps = anomaly_maps(model, images, evaluation, MAP_SIZE, noise=PER_IMAGE, progress=progress,
                        desc="scoring held-out images")
    return write_holdout(run, paths, maps.flatten(1).amax(1).tolist(), evaluation.to_dict(), weights_digest(model),
                         config)
