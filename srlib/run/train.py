"""Train a score U-Net with the authors' schedule: resumable, on one or many devices.

``train(config, out)`` writes into the folder ``out``:

``checkpoint.pt``
    The resumable state (format ``srlib-train-v1``): model, EMA, optimizer,
    scheduler, position (epoch, batch, step) and every RNG state. Written
    atomically every ``checkpoint_every`` epochs, on SIGTERM/SIGINT (after the
    step in progress) and at the end. ``load_score_model`` reads its EMA.
``model.pt``
    The final EMA weights as a plain state dict, the authors' format.
``config.json``
    The ``TrainConfig``.
``log.jsonl``
    One JSON line per epoch: epoch, step, loss, lr, images_per_s, seconds.

Exact resumption: a run killed at any moment and resumed from its last
checkpoint recomputes exactly the steps it lost (see :mod:`srlib.run.resume`).

More than one device. Under ``torchrun --nproc_per_node N`` the same call
trains with DistributedDataParallel (nccl on CUDA, gloo on CPU): the global
batch ``batch_size`` is split evenly over the processes, so the schedule in
epochs and steps is the single-process one; rank 0 writes the files.

The images are decoded once and kept on the device as one tensor (the
largest training sets, ~1000 images at 192 px, take ~450 MB), so an epoch
costs no decoding. A step never waits for the device: the AdamW update is
one fused kernel, the EMA one foreach update with its count on the host, and
the losses are brought to the host (and checked) every ``SYNC_EVERY`` steps
and at the end of an epoch. ``python -m srlib.bench`` measures the step
against a plainly written one.

The ``cpu`` preset (width 16, 128 px, 25 epochs = 500 steps of 4) trains one
bundled category in minutes on a CPU; the learning curves behind it are on
the book's Performance page, and the book's models trained with it (with their
metrics) in ``notebooks/weights``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from srlib import __version__
from srlib.atomic import append_text, exclusive, output_folder, remove_stale_temporaries, save_torch
from srlib.run.config import IMAGES, TrainConfig, save_config
from srlib.run.device import memory_format, pick_device, set_precision
from srlib.run.ema import ema_of
from srlib.run.files import CHECKPOINT, CONFIG, HOLDOUT, LOG, TRAIN_FORMAT, TRAINING, WEIGHTS
from srlib.run.resume import (StopSignal, epoch_batches, image_digests, noise_seed, previous_checkpoint,
                              refuse_other_images, rng_states, set_rng_states, truncate_log)
from srlib.errors import SrlibError, printable

SYNC_EVERY = 32  # steps between host-device synchronisations within an epoch
COST_STEPS = 3  # steps timed, after a first warm-up one, to state the cost of the paper preset on a CPU


@dataclasses.dataclass
class TrainOutcome:
    """Where a call to ``train`` left the run."""

    out: Path
    epoch: int  # epochs completed
    step: int  # optimizer steps taken
    finished: bool
    stopped_by: str | None = None  # the signal's name when interrupted


def train(config: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True,
          images: torch.Tensor | None = None) -> TrainOutcome:
    """Train (or, with ``resume``, continue training) into the folder ``out``.

    Returns when the schedule is complete, or after saving a checkpoint when
    SIGTERM or SIGINT arrives. Raises ``SrlibError`` on bad input and when
    the loss stops being finite (the last good checkpoint is kept).

    ``images`` (N, 3, S, S) in [-1, 1] replaces the configured category's
    training images, for data that lives in memory rather than in a folder
    (the one-class digits); ``config.dataset``, ``root`` and ``category``
    then only label the run.
    """
    out = Path(out)
    rank, world, device = _start_processes(config)
    try:
        if rank != 0:
            return _Run(config, out, resume, progress, rank, world, device, images).fit()
        output_folder(out)  # before any work: a file, a read-only or impossible folder is one clear line
        with exclusive(out / TRAINING, f"another srlib train is writing into {out} now ({out / TRAINING} is "
                                       "locked): wait for it to end, or choose another --out"):
            return _Run(config, out, resume, progress, rank, world, device, images).fit()
    finally:
        if world > 1:
            dist.destroy_process_group()


def _start_processes(config: TrainConfig) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(config.device)
    if world == 1:
        return 0, 1, device
    if device.type not in ("cuda", "cpu"):
        raise SrlibError(f"torchrun training runs on cuda or cpu, not {device.type}: pass --device cuda or cpu")
    if config.batch_size % world:
        raise SrlibError(
            f"--batch-size {config.batch_size} does not split over {world} processes: use a multiple of {world}"
        )
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world, device


def load_images(config: TrainConfig, device: torch.device, progress: bool = True) -> tuple[torch.Tensor, list[str]]:
    """The training images of the configured category (or plain folder), as one (N, 3, S, S) tensor, and their paths.

    A plain folder's unreadable files are skipped with one line each, and so
    are the folders srlib wrote in it; a benchmark folder's refuse the run.
    """
    from srlib.data import folder_dataset

    if config.dataset == IMAGES:
        from srlib.data.plain import read_folder
        from srlib.run.files import refuse_predict_outputs, written_by

        refuse_predict_outputs(Path(config.root))
        pixels, paths, problems = read_folder(config.root, config.image_size, skip=written_by, progress=progress)
        for problem in problems:
            print(f"srlib: {printable(problem)}", file=sys.stderr)
        return torch.from_numpy(pixels).float().div(255).mul(2).sub(1).to(device), [str(p) for p in paths]
    dataset = folder_dataset(config.dataset, config.root, config.category, "train", image_size=config.image_size,
                             progress=progress)
    if len(dataset) == 0:
        raise SrlibError(
            f"no training images for {config.dataset}/{config.category} under {config.root}: check --root and --category"
        )
    return torch.cat([batch["image"] for batch in DataLoader(dataset, batch_size=64)]).to(device), dataset.paths


class _Run:
    """One training run: the state and the loop."""

    def __init__(self, config, out, resume, progress, rank, world, device, images=None):
        self.config, self.out, self.rank, self.world, self.device = config, out, rank, world, device
        self.progress = progress and rank == 0
        self.autocast = set_precision(device, config.precision)
        self.memory_format = memory_format(device, config.channels_last)
        previous = previous_checkpoint(out, config, resume, rank, world)
        paths = None
        if images is None:
            images, paths = load_images(config, device, self.progress)
        elif images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (config.image_size,) * 2:
            raise SrlibError(f"training images of shape {tuple(images.shape)}: expected (N, 3, {config.image_size}, "
                             f"{config.image_size}) for image_size {config.image_size}")
        self.digests = image_digests(paths, images, config.root)
        if previous is not None:
            refuse_other_images(previous.get("images"), self.digests, config.root, out, warn=rank == 0)
        from srlib.run.holdout import split_holdout

        keep, held = split_holdout(len(images), config.holdout, config.seed)
        images = images.to(device)
        self.held = (images[held], [paths[i] for i in held] if paths else [f"image {i}" for i in held])
        self.images = images[keep].contiguous(memory_format=self.memory_format)

        from srlib.method.sde import VESDE
        from srlib.method.unet import ScoreUNet

        torch.manual_seed(config.seed)
        self.model = ScoreUNet(width=config.width, sde=VESDE(config.sigma)).to(device, memory_format=self.memory_format)
        self.ema = ema_of(self.model, config.ema_decay)
        self.optimizer = make_optimizer(self.model, config, device)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, config.milestones, config.gamma)
        if world > 1:
            self.net = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        else:
            self.net = self.model
        if config.compile:
            self.net = torch.compile(self.net)
        self.noise = torch.Generator(device=device)
        self.epoch = self.batch = self.step = 0
        self.epoch_loss = self.epoch_images = self.epoch_seconds = 0.0
        self.pending: list[tuple[torch.Tensor, int]] = []  # (loss on the device, images) of steps not yet synced
        if previous is not None:
            self._restore(previous)
        if rank == 0:
            save_config(config, out / CONFIG)
            remove_stale_temporaries(out / CHECKPOINT)
            truncate_log(out / LOG, self.epoch)  # epochs after the checkpoint will be logged again

    # -- checkpoints ----------------------------------------------------------------
    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.module.load_state_dict(state["ema"])
        self.ema.n_averaged.fill_(state["ema_n_averaged"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]
        self.epoch_loss, self.epoch_images, self.epoch_seconds = state["epoch_totals"]
        set_rng_states(state["rng"])

    def _save(self) -> None:
        if self.rank != 0:
            return
        state = {
            "format": TRAIN_FORMAT,
            "srlib_version": __version__,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "ema": self.ema.module.state_dict(),
            "ema_n_averaged": int(self.ema.n_averaged),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "epoch_totals": [self.epoch_loss, self.epoch_images, self.epoch_seconds],
            "world_size": self.world,
            "rng": rng_states(),
            "images": self.digests,
        }
        save_torch(state, self.out / CHECKPOINT)

    # -- the loop --------------------------------------------------------------------
    def fit(self) -> TrainOutcome:
        config = self.config
        steps_per_epoch = len(epoch_batches(len(self.images), 0, config.seed, config.batch_size, self.rank, self.world))
        bar = tqdm(
            total=config.epochs * steps_per_epoch,
            initial=min(self.step, config.epochs * steps_per_epoch),
            desc="training",
            unit="step",
            disable=not self.progress or None,
            dynamic_ncols=True,
        )
        # On a CPU the paper's schedule takes days: say so with this machine's rate.
        cost_from = self.step + 1 if self.rank == 0 and self.device.type == "cpu" and config.preset == "paper" else None
        with StopSignal() as stop, bar:
            while self.epoch < config.epochs:
                batches = epoch_batches(len(self.images), self.epoch, config.seed, config.batch_size, self.rank, self.world)
                # One copy of the epoch's order to the device: indexing with a
                # CPU tensor would copy, and so synchronise, at every step.
                order = torch.cat(batches).to(self.device).split([len(b) for b in batches])
                self.mark = time.perf_counter()
                while self.batch < len(batches):
                    index = order[self.batch]
                    self.noise.manual_seed(noise_seed(config.seed, self.rank, self.step))
                    loss = train_step(self.net, self.model, self.ema, self.optimizer, self.images[index], self.noise,
                                      self.autocast, config.k_max, config.k_draw)
                    self.pending.append((loss, len(index)))
                    self.batch += 1
                    self.step += 1
                    bar.update()
                    if self.step == cost_from:
                        clock = time.perf_counter()
                    elif cost_from is not None and self.step == cost_from + COST_STEPS:
                        tqdm.write(cost_note((time.perf_counter() - clock) / COST_STEPS, bar.total - self.step),
                                   file=sys.stderr)
                    # Losses stay on the device until an epoch ends, SYNC_EVERY
                    # steps pass or a signal arrives: a GPU is never kept waiting
                    # for the host. Several processes agree on stopping only then.
                    stopping = self.world == 1 and stop.name is not None
                    if stopping or self.batch == len(batches) or len(self.pending) >= SYNC_EVERY:
                        stopping = self._sync(stop, bar) or stopping
                    if stopping:
                        self._save()
                        return TrainOutcome(self.out, self.epoch, self.step, False, stop.name or "SIGTERM")
                self._end_epoch()
        if self.rank == 0:
            from srlib.run.checkpoint import save_score_model

            save_score_model(self.ema.module, self.out / WEIGHTS)
            if len(self.held[0]):
                from srlib.run.holdout import score_holdout

                try:
                    score_holdout(self.ema.module, *self.held, config.image_size, self.out, self.progress,
                                  config=config.to_dict())
                except KeyboardInterrupt:  # the weights are saved; --resume scores the held-out images again
                    print(f"\nsrlib: SIGINT received while scoring the held-out images: {self.out / HOLDOUT} "
                          "was not written", file=sys.stderr, flush=True)
                    return TrainOutcome(self.out, self.epoch, self.step, False, "SIGINT")
        return TrainOutcome(self.out, self.epoch, self.step, True)

    def _sync(self, stop: StopSignal, bar) -> bool:
        """Bring the pending losses to the host (one synchronisation); True if any process was signalled.

        Adds them to the epoch's totals, and stops the run at the first
        non-finite one (the last good checkpoint is kept: nothing is saved).
        """
        first = self.step - len(self.pending)  # the 0-based step of the first pending loss
        losses = torch.stack([loss.float() for loss, _ in self.pending])
        shared = torch.cat([losses, torch.full((1,), float(stop.name is not None), device=losses.device)])
        if self.world > 1:
            dist.all_reduce(shared)
            shared[:-1] /= self.world
        *values, stopping = shared.tolist()
        for offset, (value, (_, images)) in enumerate(zip(values, self.pending)):
            if not math.isfinite(value):
                kept = f"the last good checkpoint {self.out / CHECKPOINT} is kept" if (self.out / CHECKPOINT).exists() else "no checkpoint was written yet"
                raise SrlibError(
                    f"training stopped: the loss is {value} at epoch {self.epoch + 1}, step {first + offset + 1}; "
                    f"{kept}; lower --lr or check the images"
                )
            self.epoch_loss += value * images * self.world
            self.epoch_images += images * self.world
        self.pending = []
        now = time.perf_counter()
        self.epoch_seconds += now - self.mark
        self.mark = now
        bar.set_postfix(epoch=self.epoch + 1, loss=f"{values[-1]:.4g}", img_s=f"{self.epoch_images / self.epoch_seconds:.3g}")
        return stopping > 0

    def _end_epoch(self) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.epoch += 1
        record = dict(
            epoch=self.epoch,
            step=self.step,
            loss=self.epoch_loss / self.epoch_images,
            lr=lr,
            images_per_s=self.epoch_images / self.epoch_seconds,
            seconds=self.epoch_seconds,
        )
        self.batch = 0
        self.epoch_loss = self.epoch_images = self.epoch_seconds = 0.0
        if self.rank == 0:
            append_text(self.out / LOG, json.dumps(record) + "\n")
        if self.epoch % self.config.checkpoint_every == 0 or self.epoch == self.config.epochs:
            self._save()


def cost_note(seconds_per_step: float, steps_left: int) -> str:
    """What the rest of a paper-preset run costs on this CPU, and the way out."""
    hours = seconds_per_step * steps_left / 3600
    return (f"srlib: the paper preset on this CPU: {seconds_per_step:.3g} s a step, so the {steps_left} steps left "
            f"take about {hours:.0f} hours ({hours / 24:.1f} days); to train a small model in minutes instead, "
            "stop (Ctrl-C keeps a checkpoint) and run the command with --preset cpu")


def make_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, on its fused kernel where this torch has one for the device, else foreach."""
    from torch.optim.optimizer import _get_fused_kernels_supported_devices

    kernels = {"fused": True} if device.type in _get_fused_kernels_supported_devices() else {"foreach": True}
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(trainable, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, **kernels)


def train_step(net, model, ema, optimizer, x: torch.Tensor, generator: torch.Generator, autocast,
               k_max: float = 1.0, k_draw: str = "uniform") -> torch.Tensor:
    """One optimizer step and EMA update on the batch ``x``; returns the loss, left on the device.

    ``net`` computes the loss (``model`` itself, or it wrapped in DDP or
    ``torch.compile``); ``ema`` averages ``model``. Nothing here waits for the
    device, so a GPU gets the next step's work while it computes this one.
    ``k_max`` and ``k_draw`` are the training range of k (``TrainConfig``).
    """
    from srlib.method.sde import dsm_loss

    with autocast:
        loss = dsm_loss(net, x, model.sde, generator=generator, k_max=k_max, draw=k_draw)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    ema.update_parameters(model)
    return loss.detach()
