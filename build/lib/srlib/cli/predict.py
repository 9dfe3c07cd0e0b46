"""``srlib predict``: anomaly maps, scores and decisions for a plain folder of new images."""

from __future__ import annotations

import argparse

from srlib.cli.evaluate import add_eval_arguments, eval_config_from

DESCRIPTION = """\
Score every image under a folder (recursively; any size, grey or colour) with
a trained model: its anomaly map (Algorithm 1 of the paper), its score (the
map's maximum) and a decision, anomalous or not, at a threshold.

The threshold: by default the largest score of the held-out good images that
'srlib train --holdout' (the default with --images) kept out of training and
scored (holdout.json beside the checkpoint); --quantile Q takes their
Q-quantile instead, --threshold T a number of your choosing. An image is
anomalous when its score is above the threshold. Held-out scores computed with
other settings (--k, --n-draws...) are recomputed with these first.

A file that cannot be read (empty, truncated, not an image), or whose output
name would be too long, gets one line and an 'error' in scores.csv; the others
are still scored. Folders srlib wrote (an earlier prediction) and hidden names
are left alone, with one line.
"""

EPILOG = """\
The output folder (outside --images) receives:
  scores.csv            image, score, anomalous (yes/no), error
  maps/<image>.npy      the 256x256 float32 anomaly map (over the image squashed to a square)
  overlays/<image>.png  the image | its map over it (colours from 0 to the threshold)
  prediction.json       threshold, its rule, settings, checkpoint, counts (README.txt says the same in words)
It holds one prediction: a new one replaces srlib's earlier files there when it
is complete (prediction.json last; an interrupted one leaves the earlier as it
was), and is refused while another srlib predict writes there, or when a file
of these names was not written by srlib predict. Other files are left alone.

Example:
  srlib train --images good/ --preset cpu --out runs/mine
  srlib predict --checkpoint runs/mine/model.pt --images new/ --out runs/mine/new
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="anomaly maps, scores and anomalous yes/no for a plain folder of new images",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, help="model.pt or checkpoint.pt of a training run")
    parser.add_argument("--images", required=True, metavar="DIR", help="the folder of images to score")
    parser.add_argument("--out", required=True, help="output folder, outside --images (see the list at the end)")
    decision = parser.add_argument_group("the decision")
    decision.add_argument("--threshold", type=float, help="anomalous if score > THRESHOLD (default: from the held-out scores)")
    decision.add_argument("--quantile", type=float,
                          help="quantile of the held-out good scores used as threshold, in (0, 1] (default 1: the "
                               "largest); not with --threshold")
    settings = parser.add_argument_group("evaluation settings (default: the paper's; the maps do not depend on --batch-size)")
    add_eval_arguments(settings, auto_k=False)
    settings.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(func=_predict)


def _predict(args) -> int:
    from srlib.run.files import SCORES
    from srlib.run.predict import predict_folder

    summary = predict_folder(args.checkpoint, args.images, args.out, eval_config_from(args), device=args.device,
                             threshold=args.threshold, quantile=args.quantile, progress=args.progress)
    print(f"{summary['scored']} images scored, {summary['anomalous']} anomalous at threshold {summary['threshold']:.6g} "
          f"({summary['rule']}); {summary['failed']} could not be scored (the error column of {SCORES} says why); "
          f"written to {args.out}")
    return 0
