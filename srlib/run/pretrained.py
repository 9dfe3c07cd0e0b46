"""Trained weights that ship with the book, and how each was made.

A book about a method that needs minutes of training per category cannot
retrain every model at every build on two CPU cores, so, like the tutorial
books that ship their checkpoints, it keeps one score U-Net per bundled
category (``notebooks/weights``) and trains again on request (a chapter's
``retrain = True``). For each ``<name>.pt`` (the EMA weights as a plain
state dict in float16, to keep the repository small) a ``<name>.json``
beside it holds

``command``
    the exact ``srlib train`` command that trained it, on the data of
    ``srlib data textures textures`` (seed 0);
``config``
    the :class:`TrainConfig` that command builds (``root`` as in the command);
``metrics``
    image AUROC, pixel AUROC and AUPRO of the float16 weights under the
    default :class:`EvalConfig` (k = 1e-3, N = 3, seed 0) on that data;
``train_seconds``
    the training time, and where it was measured.

``srlib.cli.pretrained`` writes them (``python -m srlib.cli.pretrained``);
``tests/run/test_pretrained.py`` checks that each command rebuilds its config and
that the weights evaluate to their metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from srlib.errors import SrlibError
from srlib.run.config import RUNTIME_FIELDS, TrainConfig

TEXTURES_ROOT = "textures"  # the --root of every command: srlib data textures textures


def weights_name(category: str, seed: int = 0) -> str:
    return f"textures-{category}-seed{seed}"


def save_pretrained(weights: Path, config: TrainConfig, command: str, metrics: dict, train_seconds: str, folder: Path,
                    name: str) -> Path:
    """Write ``weights`` (a plain state dict) as float16 ``folder/name.pt`` and its description beside it."""
    from srlib.atomic import save_torch, write_text

    state = torch.load(weights, map_location="cpu", weights_only=True)
    folder.mkdir(parents=True, exist_ok=True)
    save_torch({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, folder / f"{name}.pt")
    info = {"command": command, "config": config.to_dict(),
            "metrics": metrics, "train_seconds": train_seconds}
    write_text(folder / f"{name}.json", json.dumps(info, indent=2) + "\n")
    return folder / f"{name}.pt"


def pretrained_info(folder: str | Path, category: str, seed: int = 0) -> dict:
    """The description (command, config, metrics) of a shipped model."""
    path = Path(folder) / f"{weights_name(category, seed)}.json"
    if not path.is_file():
        raise SrlibError(f"no trained weights for {category!r} (seed {seed}) in {folder}: "
                         f"set retrain = True to train them, or give another folder")
    return json.loads(path.read_text())


def shipped_checkpoint(folder: str | Path, config: TrainConfig) -> tuple[Path, dict] | None:
    """The shipped weights trained with ``config`` (up to where and how fast), and their description; else None."""
    path = Path(folder) / f"{weights_name(config.category, config.seed)}.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    if TrainConfig.from_dict(info["config"]).differences(config, ignore=RUNTIME_FIELDS):  # up to where and how fast
        return None
    return path.with_suffix(".pt"), info


def load_pretrained(folder: str | Path, category: str, seed: int = 0):
    """The shipped score model of ``category`` (float32, eval mode) and its description."""
    from srlib.run.checkpoint import load_score_model

    info = pretrained_info(folder, category, seed)
    model = load_score_model(Path(folder) / f"{weights_name(category, seed)}.pt")
    return model, info


def train_weights(config: TrainConfig, out: str | Path, resume: bool = False, progress: bool = False):
    """Train ``config`` into the folder ``out`` (``resume``: continue the run there) to the end of its schedule.

    Returns the final weights' path and the training log (one dict per
    epoch: ``epoch``, ``loss``, ``seconds``...). A run stopped by a signal
    raises ``SrlibError`` saying how to continue it.
    """
    from srlib.run.files import LOG, WEIGHTS
    from srlib.run.train import train

    out = Path(out)
    outcome = train(config, out, resume=resume, progress=progress)
    if not outcome.finished:
        raise SrlibError(f"training was stopped by {outcome.stopped_by}; run again with resume=True to continue")
    return out / WEIGHTS, [json.loads(line) for line in (out / LOG).read_text().splitlines()]


def book_model(folder: str | Path, category: str, root: str | Path, retrain: bool = False,
               out: str | Path | None = None, device: str = "cpu", progress: bool = False):
    """The book's score model of a bundled category: shipped, or (``retrain``) trained again into ``out``.

    Trained again with the shipped model's own configuration, on the data
    under ``root``. Returns the model (float32, eval mode, on ``device``), its
    configuration as a dict and its training time as a phrase (the shipped
    model's as measured when it was made, or the seconds here).
    """
    from srlib.run.checkpoint import load_score_model

    if not retrain:
        model, info = load_pretrained(folder, category)
        return model.to(device), info["config"], info["train_seconds"]
    if out is None:
        raise SrlibError("retraining a book model needs a folder to train into (out=...)")
    info = pretrained_info(folder, category)
    config = TrainConfig.from_dict({**info["config"], "root": str(root), "device": device})
    weights, log = train_weights(config, out, progress=progress)
    return load_score_model(weights).to(device), info["config"], f"{sum(e['seconds'] for e in log):.0f} s here"
