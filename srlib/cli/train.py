"""``srlib train``: one command for the paper's schedule or the CPU preset, resumable."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys

from srlib.run.config import K_DRAWS, PRECISIONS, PRESETS

DESCRIPTION = """\
Train a score U-Net on the good images of one category, or of a plain folder (--images).

Presets: 'paper' is the authors' schedule (width 64, 192 px, batch 16, AdamW
lr 1e-4, 3000 epochs, lr x0.1 at epochs 1000 and 2000 on MVTec AD, EMA 0.9999,
seed 7777, k ~ U(1e-5, 1)): hours on a GPU, days on a CPU. 'cpu' is a small
model (width 16, 128 px, 25 epochs in batches of 4, k ~ U(1e-5, 0.03): trained where it is
evaluated) that learns the bundled data in minutes on a laptop. Options below
override the preset.

Under 'torchrun --nproc_per_node N' the same command trains on N processes
(DistributedDataParallel; the global batch is split over them).
"""

EPILOG = """\
The output folder holds:
  checkpoint.pt  resumable training state (model, EMA, optimizer, scheduler,
                 position, RNG states), written atomically every
                 --checkpoint-every epochs, on SIGTERM/Ctrl-C and at the end
  model.pt       the final EMA weights, a plain state dict like the authors'
  config.json    the configuration
  log.jsonl      one JSON line per epoch: epoch, step, loss, lr, images_per_s, seconds

Stopped or killed? Run the same command again with --resume: training
continues where the last checkpoint left it (on CPU, bit-identically).

  holdout.json   with --holdout (the default with --images): the held-out good
                 images and their scores, from which srlib predict sets its threshold

Example (the bundled textures, on a CPU):
  srlib data textures textures/
  srlib train --dataset mvtec --root textures --category brick --preset cpu --out runs/brick
  srlib evaluate --checkpoint runs/brick/model.pt --dataset mvtec --root textures --category brick --out runs/brick/eval

Example (a plain folder of good images, then new ones):
  srlib train --images good/ --preset cpu --out runs/mine
  srlib predict --checkpoint runs/mine/model.pt --images new/ --out runs/mine/new
"""


# The TrainConfig fields the command line overrides, with their options
# (shared with ``srlib reproduce``, which passes them on to every category).
OVERRIDE_OPTIONS = {
    "epochs": dict(type=int, help="passes over the training images (paper 3000)"),
    "image_size": dict(type=int, help="training resolution in pixels, >= 16 (paper 192)"),
    "width": dict(type=int, help="channels of the U-Net's first level; 64 is the paper's network"),
    "batch_size": dict(type=int, help="images per optimizer step, over all processes (paper 16)"),
    "lr": dict(type=float, help="AdamW learning rate (paper 1e-4)"),
    "weight_decay": dict(type=float, help="AdamW weight decay (paper 1e-3)"),
    "milestones": dict(type=int, nargs="*", metavar="EPOCH",
                       help="epochs at which the lr is multiplied by 0.1 (paper: 1000 2000 on MVTec AD, none on BTAD/MPDD)"),
    "ema_decay": dict(type=float, help="ceiling of the EMA decay (paper 0.9999)"),
    "sigma": dict(type=float, help="base of the noise schedule sigma_k, > 1 (paper 25); saved with the model"),
    "k_max": dict(type=float, help="largest perturbation time k trained on, in (1e-5, 1] (paper 1); evaluate at k <= it"),
    "k_draw": dict(choices=K_DRAWS, help="how k is drawn in [1e-5, k_max]: uniform (paper) or log-uniform"),
    "seed": dict(type=int, help="seed of initialisation, data order and noise (paper 7777)"),
    "checkpoint_every": dict(type=int, help="epochs between checkpoints"),
    "device": dict(help="auto (cuda > mps > cpu, the default), cpu, cuda, cuda:N or mps"),
    "precision": dict(choices=PRECISIONS, help="fp32 (default), tf32 (CUDA) or bf16 (autocast: GPUs, and CPUs with AVX512-BF16/AMX)"),
    "channels_last": dict(action=argparse.BooleanOptionalAction,
                          help="channels_last memory format (default: on for CUDA and CPU, where it is faster)"),
    "compile": dict(action=argparse.BooleanOptionalAction,
                    help="run the network through torch.compile (for GPUs: minutes to compile, no gain on CPUs)"),
}


def add_options(group, table: dict, skip: tuple[str, ...] = ()) -> None:
    """Add ``--field-name`` for every field of ``table`` (field -> add_argument keywords) not in ``skip``; default None."""
    for name, options in table.items():
        if name not in skip:
            group.add_argument("--" + name.replace("_", "-"), **options)


def add_override_arguments(group, skip: tuple[str, ...] = ()) -> None:
    """Add ``--epochs``, ``--image-size``... (every OVERRIDE_OPTIONS field not in ``skip``)."""
    add_options(group, OVERRIDE_OPTIONS, skip)


def overrides_from(args) -> dict:
    """The override options present in parsed ``args``: TrainConfig field -> value (None: the preset's)."""
    return {name: getattr(args, name) for name in OVERRIDE_OPTIONS if hasattr(args, name)}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a score model (the paper's schedule or a CPU preset); resumable",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = parser.add_argument_group("which images: a category's good training images, or a plain folder")
    add_category_arguments(which, required=False)
    which.add_argument("--images", metavar="DIR",
                       help="instead of the three above: a plain folder of good images, searched recursively "
                            "(any size, grey or colour; unreadable files are skipped with one line each)")
    which.add_argument("--holdout", type=float, metavar="SHARE",
                       help="share of the good images kept out of training and scored after it, to set srlib "
                            "predict's threshold (default: 0.2 with --images, else 0)")
    run = parser.add_argument_group("the run")
    run.add_argument("--preset", choices=PRESETS, default="paper", help="starting values of the options below (default: paper)")
    run.add_argument("--out", required=True, help="output folder (see the list at the end)")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its checkpoint (refused if the configuration differs; "
                          "only --epochs, --root, --device, --checkpoint-every and --compile may change)")
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_override_arguments(parser.add_argument_group("overrides (default: the preset's value)"))
    parser.set_defaults(func=_train)


def add_category_arguments(group, required: bool = True) -> None:
    """--dataset, --root and --category, shared with ``srlib evaluate``."""
    group.add_argument("--dataset", required=required, help="folder layout: mvtec (also the bundled textures), btad or mpdd")
    group.add_argument("--root", required=required, help="the folder that holds the category folders")
    group.add_argument("--category", required=required, help="category folder name, e.g. bottle, 01, brick")


def _which_images(args) -> tuple[str, str, str, float | None]:
    """(dataset, root, category, holdout) from either --images or --dataset/--root/--category."""
    from pathlib import Path

    from srlib.errors import SrlibError
    from srlib.run.config import IMAGES

    named = [f"--{name}" for name in ("dataset", "root", "category") if getattr(args, name)]
    if args.images:
        if named:
            raise SrlibError(f"--images replaces {', '.join(named)}: give either a plain folder or a category")
        holdout = 0.2 if args.holdout is None else args.holdout
        images = Path(args.images).expanduser()  # also when quoted: '~/good'
        return IMAGES, str(images), images.resolve().name, holdout
    if len(named) < 3:
        raise SrlibError("say which images to train on: --images DIR, or --dataset, --root and --category")
    return args.dataset, str(Path(args.root).expanduser()), args.category, args.holdout


def _train(args) -> int:
    from pathlib import Path

    from srlib.data.layouts import category_name, refuse_inside_root
    from srlib.run.config import IMAGES, TrainConfig
    from srlib.run.device import pick_device
    from srlib.run.files import WEIGHTS
    from srlib.run.train import train

    dataset, root, category, holdout = _which_images(args)
    refuse_inside_root(root, args.out, f"--out {args.out}")
    if dataset == IMAGES:
        from srlib.data.plain import list_images
        from srlib.run.files import refuse_predict_outputs, written_by

        refuse_predict_outputs(Path(root))
        list_images(root, skip=written_by)  # a folder without images is refused before --out is made
    if dataset != IMAGES:
        category = category_name(root, category)
    config = TrainConfig.preset_for(args.preset, dataset, root, category, holdout=holdout, **overrides_from(args))
    if config.preset == "paper" and pick_device(config.device).type == "cpu":
        print("srlib: warning: the paper preset on a CPU takes days per category (its cost on this machine "
              "is stated after the first steps); --preset cpu trains in minutes", file=sys.stderr)
    outcome = train(config, args.out, resume=args.resume, progress=args.progress)
    if outcome.finished:
        print(f"done: {outcome.epoch} epochs, {outcome.step} steps; EMA weights in {outcome.out / WEIGHTS}")
        return 0
    again = " ".join(shlex.quote(a) for a in sys.argv[1:]) + ("" if args.resume else " --resume")
    print(f"stopped by {outcome.stopped_by} after {outcome.step} steps; checkpoint saved. Continue with:\n"
          f"  srlib {again}", file=sys.stderr)
    return 128 + signal.Signals[outcome.stopped_by].value
