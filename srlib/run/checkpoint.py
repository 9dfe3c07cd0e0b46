"""Loading and saving score-model weights, safely.

Reads the authors' released checkpoints (a plain state dict of the EMA
weights) and srlib's own: the same plain state dict for final weights, or a
training checkpoint (``"format": "srlib-train-v1"``) whose ``"ema"`` entry is
used. Files are always read with ``torch.load(..., weights_only=True)``, so a
checkpoint that carries pickled code is refused, never run.

The model's noise schedule comes with its training configuration (inside a
training checkpoint, or ``config.json`` beside final weights); the authors'
weights were trained with the paper's.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch

from srlib.atomic import save_torch
from srlib.errors import SrlibError
from srlib.method.sde import VESDE
from srlib.method.unet import ScoreUNet
from srlib.run.config import TrainConfig, config_from, load_config
from srlib.run.device import memory_format
from srlib.run.files import CHECKPOINT, CONFIG, HOLDOUT, LOG, TRAIN_FORMAT

WIDTH_KEY = "inc.double_conv.0.weight"
# The side of the images the authors' released checkpoints were trained on (their checkpoints do not say).
AUTHORS_IMAGE_SIZE = 192


def _refusal_reason(err: Exception) -> str:
    """The first sentence of what torch's weights-only unpickler objected to."""
    detail = str(err).split("WeightsUnpickler error:", 1)[-1]
    paragraphs = [" ".join(p.split()) for p in detail.split("\n\n")]
    first = next((p for p in paragraphs if p), type(err).__name__)
    return first.split(". ")[0].rstrip(".")


def read_checkpoint(path, map_location="cpu"):
    """``torch.load(path, weights_only=True)``, with one clear line for each kind of file it is not."""
    path = Path(path).expanduser()
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix in (".pt", ".pth", ".ckpt", ".bin"))
        hint = f"it holds {', '.join(inside[:4])}" if inside else "it holds no .pt or .pth file"
        raise SrlibError(f"checkpoint {path} is a folder ({hint}); pass the checkpoint file itself, e.g. {path / 'model.pt'}")
    if not path.is_file():
        raise SrlibError(f"checkpoint {path} not found: give the path of a .pth file")
    try:
        with open(path, "rb") as file:
            head = file.read(64)
    except OSError as err:
        raise SrlibError(f"checkpoint {path} cannot be read ({err.strerror or err}); make it readable: chmod a+r '{path}'") from None
    if not head:
        raise SrlibError(f"checkpoint {path} is empty (0 bytes): its copy or download was cut short; copy it again")
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save's zip archive, or its older pickle format
        raise SrlibError(f"checkpoint {path} is {_what_instead(head)}, not a file written by torch.save; "
                         f"pass the .pt or .pth file itself")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise SrlibError(
            f"refusing to load {path}: it is not a file of tensors and plain containers "
            f"({_refusal_reason(err)}); it may hold pickled code, which srlib never runs "
            f"(if you trust its source, re-save its state_dict() with torch.save)"
        ) from None
    except Exception as err:  # zip/EOF/format errors from a truncated or damaged file
        detail = f"{type(err).__name__}: {err}".splitlines()[0]
        raise SrlibError(f"checkpoint {path} is truncated or damaged ({detail}); copy it again") from None


def _what_instead(head: bytes) -> str:
    """What a file that is not a checkpoint looks like, from its first bytes."""
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer (the weights were never downloaded: run git lfs pull)"
    text = head.decode("utf-8", errors="replace")
    if text.lstrip().lower().startswith(("<!doctype html", "<html")):
        return "a web page (the download returned HTML)"
    if not any(byte < 9 or 13 < byte < 32 for byte in head):  # no control characters but tabs and line ends
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"a text file (it starts {first!r})" if first else "a text file"
    return f"not a PyTorch file (it starts with the bytes {head[:8].hex(' ')})"


def _state_dict(obj, path: Path) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "format" in obj:
        if obj["format"] != TRAIN_FORMAT:
            raise SrlibError(f"{path}: unknown checkpoint format {obj['format']!r} (expected {TRAIN_FORMAT!r})")
        obj = obj.get("ema")
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise SrlibError(f"{path}: not a state dict of tensors (got {type(obj).__name__})")
    if WIDTH_KEY not in obj or obj[WIDTH_KEY].dim() != 4:
        raise SrlibError(f"{path}: no 4-D {WIDTH_KEY!r} weight, so this is not a ScoreUNet state dict")
    return obj


def _saved_config(obj, path: Path) -> tuple[str, TrainConfig | None]:
    """What kind of file was read, and the training configuration saved with it (if any)."""
    if isinstance(obj, Mapping) and obj.get("format") == TRAIN_FORMAT:
        return "srlib training checkpoint", config_from(obj.get("config"), f"the configuration saved in {path}")
    beside = path.with_name(CONFIG)
    if beside.is_file():
        return "srlib final weights", load_config(beside)
    described = path.with_suffix(".json")  # the book's shipped weights (srlib.run.pretrained)
    if described.is_file():
        try:
            record = json.loads(described.read_text())
        except (OSError, ValueError):
            record = None  # not srlib's description
        if isinstance(record, dict) and "config" in record:
            return "srlib shipped weights", config_from(record["config"], f"the configuration in {described}")
    # Final weights of an srlib run whose config.json is gone: another model's settings would be a guess.
    run = [name for name in (CHECKPOINT, HOLDOUT, LOG) if path.with_name(name).is_file()]
    if run:
        instead = f", or pass {path.with_name(CHECKPOINT)}, which holds them too" if CHECKPOINT in run else ""
        raise SrlibError(f"{beside} is missing: {path} was written by srlib train (beside it: {', '.join(run)}) and "
                         f"that file holds the settings it was trained with (image size, sigma), which srlib never "
                         f"guesses; restore it{instead}")
    return "plain state dict (the authors' format)", None


def describe_checkpoint(path: str | Path) -> tuple[str, TrainConfig | None]:
    """What kind of file ``path`` is, and the training configuration saved with it (if any).

    A training checkpoint carries its configuration; final weights
    (``model.pt``) have it in ``config.json`` beside them, the book's shipped
    weights (``NAME.pt``) in ``NAME.json``.
    """
    path = Path(path).expanduser()
    return _saved_config(read_checkpoint(path, "cpu"), path)


def _listing(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _mismatch(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> str:
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k} {tuple(found[k].shape)} vs {tuple(v.shape)}"
              for k, v in expected.items() if k in found and found[k].shape != v.shape]
    parts = []
    if missing:
        parts.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {_listing(unexpected)}")
    if shapes:
        parts.append(f"shapes (file vs model): {_listing(shapes)}")
    return "; ".join(parts)


def load_score_model(path, map_location="cpu") -> ScoreUNet:
    """Build a ScoreUNet from a checkpoint file: float32, in eval mode, in its device's fast memory layout.

    The layout is :func:`srlib.run.device.memory_format`'s default
    (channels_last on a CPU or CUDA device: on one CPU thread a width-16
    network scores 128-pixel images about 1.4x faster than in contiguous
    layout). ``.to(device)`` afterwards keeps it.

    Parameters
    ----------
    path : str or os.PathLike
        A plain state dict (the authors' release, srlib's final weights) or an
        srlib training checkpoint (its EMA weights are used). The schedule's
        sigma is the saved configuration's, else the paper's.
    map_location : str or torch.device
        Passed to ``torch.load``.

    Raises
    ------
    SrlibError
        If the file is missing, empty, not a torch file, damaged, holds pickled
        code or non-finite weights, or its keys or shapes are not those of a ScoreUNet.
    """
    path = Path(path).expanduser()
    obj = read_checkpoint(path, map_location)
    state = _state_dict(obj, path)
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise SrlibError(f"{path} holds NaN or infinite weights ({_listing(broken)}): the training that wrote it "
                         f"diverged; use an earlier checkpoint, or train again (with a lower --lr)")
    _, config = _saved_config(obj, path)
    width, in_channels = state[WIDTH_KEY].shape[:2]
    sde = VESDE(config.sigma) if config else VESDE()
    model = ScoreUNet(width=int(width), sde=sde, in_channels=int(in_channels))
    problem = _mismatch(model.state_dict(), state)
    if problem:
        raise SrlibError(f"{path} does not fit a ScoreUNet of width {width}: {problem}")
    model.load_state_dict(state)  # into float32 parameters, whatever the stored precision
    device = state[WIDTH_KEY].device
    return model.to(device=device, memory_format=memory_format(device, None)).eval()


def save_atomically(obj, path) -> None:
    """``torch.save`` that a crash cannot leave half-written (see ``srlib.atomic``); creates the folder."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_torch(obj, path)


def save_score_model(model: ScoreUNet, path) -> None:
    """Write the model's weights as a plain CPU state dict, the authors' format."""
    save_atomically({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
