"""What makes a training run resumable exactly.

The random numbers of a run are a pure function of the seed and the
position: the data order of epoch e is ``DistributedSampler``'s permutation
for ``seed + e`` (one process or many), and the noise of step s on rank r
comes from a generator seeded with ``(seed, r, s)``. So a run killed at any
moment (even mid-write: writes are atomic) and resumed from its last
checkpoint recomputes exactly the steps it lost; on CPU its EMA ends
bit-identical to an uninterrupted run's. The global torch, CUDA, numpy and
Python RNG states are saved and restored too, for any code that draws from
them. SIGTERM and SIGINT stop a run after its current step, with a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from srlib.atomic import write_text
from srlib.errors import SrlibError
from srlib.run.config import TrainConfig, config_from
from srlib.run.files import CHECKPOINT, TRAIN_FORMAT


def noise_seed(seed: int, rank: int, step: int) -> int:
    """Seed of the noise of one step on one process: a hash of the three."""
    words = np.random.SeedSequence([seed, rank, step]).generate_state(2)
    return (int(words[0]) << 31) ^ int(words[1])


def epoch_batches(n_images: int, epoch: int, seed: int, batch_size: int, rank: int = 0, world: int = 1):
    """This process's index batches for ``epoch``: shuffled by ``seed + epoch``, last batch kept."""
    sampler = DistributedSampler(range(n_images), num_replicas=world, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler)).split(batch_size // world)


class StopSignal:
    """Turns SIGTERM/SIGINT into a request to stop after the current step.

    A second SIGINT interrupts at once (checkpoints are atomic, so nothing is lost but the steps since the last one).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.name: str | None = None
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals can only be caught there
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.name = signal.Signals(signum).name
        print(f"\nsrlib: {self.name} received: saving a checkpoint after this step", file=sys.stderr, flush=True)


def previous_checkpoint(out: Path, config: TrainConfig, resume: bool, rank: int = 0, world: int = 1) -> dict | None:
    """The checkpoint in ``out`` to resume from, or None to start; refuses what cannot be resumed.

    Without ``resume`` an existing run is refused; with it, a checkpoint whose
    configuration differs in anything but ``RESUMABLE_FIELDS``, or that
    trained more epochs than ``config`` asks.
    """
    path = out / CHECKPOINT
    if not path.exists():
        if resume and rank == 0:
            print(f"srlib: no checkpoint in {out} yet: starting from the beginning", file=sys.stderr)
        return None
    if not resume:
        raise SrlibError(f"{out} already holds a training run: add --resume to continue it, or choose another --out")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise SrlibError(f"cannot read {path} ({type(err).__name__}): delete it to start over") from None
    if not isinstance(state, dict) or state.get("format") != TRAIN_FORMAT:
        raise SrlibError(f"{path} is not an srlib training checkpoint ({TRAIN_FORMAT}): choose another --out")
    differences = config_from(state.get("config"), f"the configuration saved in {path}").differences(config)
    if differences:
        raise SrlibError(
            f"--resume refused: the configuration differs from the run in {out} (saved -> requested: "
            + ", ".join(differences)
            + "): repeat the original options, or choose another --out"
        )
    if state["epoch"] > config.epochs:
        raise SrlibError(
            f"--epochs {config.epochs} is fewer than the {state['epoch']} epochs {out} already trained: "
            f"pass --epochs {state['epoch']} or more"
        )
    if state["world_size"] != world and rank == 0:
        print(
            f"srlib: resuming a {state['world_size']}-process run with {world}: "
            "it continues, but no longer bit-identically",
            file=sys.stderr,
        )
    return state


def image_digests(paths: list[str] | None, images: torch.Tensor, root: str) -> dict[str, str]:
    """The sha256 of every training image, by its name relative to ``root`` (of its pixels, for images given in memory)."""
    if paths is None:
        pixels = images.detach().cpu().numpy()
        return {f"image {i}": hashlib.sha256(pixels[i].tobytes()).hexdigest() for i in range(len(pixels))}
    digests = {}
    for path in paths:
        digests[Path(os.path.relpath(path, root)).as_posix()] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return digests


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def refuse_other_images(saved: dict | None, now: dict[str, str], root: str, out: Path, warn: bool = True) -> None:
    """Refuse to resume on images other than those the run began with (``saved``, from its checkpoint).

    Its held-out share would then hold images it trained on, and its epochs
    would mean another thing. A checkpoint of an older srlib records none.
    """
    if saved is None:
        if warn:
            print(f"srlib: warning: {out / CHECKPOINT} does not record its training images (an older srlib wrote "
                  "it); resuming without checking that they are the same", file=sys.stderr)
        return
    added = sorted(set(now) - set(saved))
    removed = sorted(set(saved) - set(now))
    changed = sorted(name for name in set(now) & set(saved) if now[name] != saved[name])
    if added or removed or changed:
        what = "; ".join(f"{len(names)} {verb}: {_some(names)}"
                         for verb, names in (("added", added), ("removed", removed), ("changed", changed)) if names)
        raise SrlibError(f"--resume refused: the training images under {root} are not those the run in {out} began "
                         f"with ({what}), so its held-out images would mix with images it trained on: put them back "
                         "as they were, or start a new run in another --out")


def truncate_log(path: Path, epochs_done: int) -> None:
    """Keep the log lines of the first ``epochs_done`` epochs only (and no line cut short by a kill)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.endswith("\n") and _logged_epoch(line) <= epochs_done]
    if kept != lines:
        write_text(path, "".join(kept))


def _logged_epoch(line: str) -> float:
    try:
        return json.loads(line)["epoch"]
    except (ValueError, KeyError, TypeError):
        return math.inf


def rng_states() -> dict:
    """The global torch, CUDA, numpy and Python RNG states, as tensors and plain values (weights_only-loadable)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": _python_rng_state(),
    }


def _python_rng_state() -> dict:
    version, internal, gauss_next = random.getstate()
    return {"version": version, "internal": list(internal), "gauss_next": gauss_next}


def set_rng_states(states: dict) -> None:
    """Restore what :func:`rng_states` saved (CUDA's only on as many devices)."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    numpy = states["numpy"]
    np.random.set_state(
        ("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["position"], numpy["has_gauss"], numpy["cached_gaussian"])
    )
    python = states["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss_next"]))
