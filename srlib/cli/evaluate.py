"""``srlib evaluate``: a checkpoint's anomaly maps and the paper's metrics on a test split."""

from __future__ import annotations

import argparse
import math

from srlib.cli.train import add_category_arguments, add_options
from srlib.run.config import AUTO_K, EVAL_PRECISIONS, PAPER_K, RESIZES

DESCRIPTION = """\
Evaluate a score model on the test images of one category: restoration-error
maps (Algorithm 1 of the paper), image AUROC, pixel AUROC and AUPRO.

The checkpoint may be srlib's checkpoint.pt or model.pt (the image size comes
from the configuration saved with it) or one of the authors' released .pth
files (192 px). --image-size overrides either.
"""

EPILOG = """\
The output folder receives:
  result.json  metrics, settings, the training configuration, timing, srlib
               version and where the data came from
  overlays/    PNG strips of a sample of test images: input | map | ground truth
"""


def number_k(text: str) -> float:
    """``--k`` of a command that scores with a given k (``srlib predict``): a time in (0, 1]."""
    if text.strip().lower() == AUTO_K:
        raise argparse.ArgumentTypeError(
            "auto chooses k from a category's held-out training images, which this command does not have: pass a "
            f"number, e.g. the k that srlib evaluate --k auto chose (in its result.json), or leave --k out for the "
            f"paper's {PAPER_K:g}")
    try:
        k = float(text)
    except ValueError:
        k = math.nan
    if not 0 < k <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time in (0, 1] (e.g. 1e-3)")
    return k


def k_value(text: str) -> float | str:
    """``--k``: a time in (0, 1] or ``auto``."""
    if text.strip().lower() == AUTO_K:
        return AUTO_K
    try:
        return number_k(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time in (0, 1] (e.g. 1e-3) nor {AUTO_K}") from None


K_HELP = "perturbation time k, in (0, 1] (paper 1e-3)"
# EvalConfig's fields as options, shared by evaluate, predict and reproduce.
# Defaults are None: EvalConfig's own defaults (the paper's) then apply.
EVAL_OPTIONS = {
    "k": dict(type=k_value, help=K_HELP + ", or auto: chosen from held-out good training images (never the test "
              "split) by pseudo anomalies made from them; result.json records the evidence and every criterion's "
              "choice"),
    "n_draws": dict(type=int, help="perturbations averaged per image, N (paper 3)"),
    "image_size": dict(type=int, help="resolution the network sees (default: the checkpoint's, 192 for the authors')"),
    "resize": dict(choices=RESIZES, help="map resizing to 256 px: bilinear (the authors' code, default) or lanczos (the paper's text)"),
    "kernel": dict(type=int, help="side of the mean filter over the maps, odd (paper 31; 1: none)"),
    "batch_size": dict(type=int, help="images per forward pass (default 8)"),
    "seed": dict(type=int, help="seed of the perturbations (default 0)"),
    "precision": dict(choices=EVAL_PRECISIONS,
                      help="fp32 (default: the fidelity path, the authors' arithmetic), tf32 (CUDA) or bf16 (autocast: GPUs "
                           "and CPUs with AVX512-BF16/AMX; see the book's Performance page for its speed and metrics)"),
}


def add_eval_arguments(group, skip: tuple[str, ...] = (), auto_k: bool = True) -> None:
    """Add ``--k``, ``--n-draws``... (every EVAL_OPTIONS field not in ``skip``).

    ``auto_k`` False: ``--k`` takes a number only (a command without training images to choose it from).
    """
    table = EVAL_OPTIONS if auto_k else {**EVAL_OPTIONS, "k": dict(EVAL_OPTIONS["k"], type=number_k, help=K_HELP)}
    add_options(group, table, skip)


def eval_config_from(args):
    """The EvalConfig of the evaluation options given in ``args`` (the others at EvalConfig's defaults), validated."""
    from srlib.run.config import EvalConfig

    return EvalConfig(**{name: getattr(args, name) for name in EVAL_OPTIONS if getattr(args, name, None) is not None})


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="anomaly maps and metrics of a checkpoint (srlib's or the authors')",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint.pt, model.pt or an authors' .pth file")
    add_category_arguments(parser)
    parser.add_argument("--out", required=True, help="output folder (see the list at the end)")
    add_eval_arguments(parser.add_argument_group("evaluation settings (default: the paper's)"))
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    parser.add_argument("--overlays", type=int, default=8, help="test images drawn as PNG overlays (default 8)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(func=_evaluate)


def _evaluate(args) -> int:
    from srlib.run.evaluate import evaluate_checkpoint

    config = eval_config_from(args)
    record = evaluate_checkpoint(args.checkpoint, args.dataset, args.root, args.category, args.out, config,
                                 device=args.device, n_overlays=args.overlays, progress=args.progress)
    if "k_selection" in record:
        chosen = record["k_selection"]
        print(f"k = {record['k']:g}, chosen by the {chosen['criterion']} criterion on {len(chosen['images'])} "
              "held-out training images")
    print(f"{args.category}: image AUROC {record['image_auroc']:.4f}, pixel AUROC {record['pixel_auroc']:.4f}, "
          f"AUPRO {record['aupro']:.4f} ({record['images']} images, {record['timing']['seconds']:.1f} s); "
          f"written to {args.out}")
    return 0
