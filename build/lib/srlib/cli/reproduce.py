"""Arguments of ``srlib reproduce``."""

from __future__ import annotations

DESCRIPTION = """\
Reproduce the paper's tables: run chapter 5 (train, or load released weights,
then evaluate) once per category with papermill, one worker per device; then
write Tables 1-5 beside the paper's numbers and execute chapter 6.

Per category, OUT/<dataset>/<category>/ (dataset: mvtec, btad, mpdd, or
textures for the bundled data) receives:
  05_training_on_mvtec.ipynb  the executed chapter 5 (and its .config.json, .parameters.json, .log)
  train/                      the training run: resumable checkpoint, model.pt, log.jsonl
  result.json                 the evaluation at (k, N), written last; the tables read it
  n_draws_1/, n_draws_5/      the same with N = 1 and N = 5 (Table 5)
  k_sweep.csv, gallery.npz    the k sweep (Fig. 6) and the maps of the gallery (Fig. 4)
  failed.txt                  only after a failure: the error and where the log is
then OUT/tables/ (Markdown and CSV) and OUT/06_results.ipynb.

Stopped or crashed? Run the same command again: categories whose result.json
has the same configuration are skipped, an interrupted training resumes from
its last checkpoint, failed categories are tried again.
"""


def register(subparsers) -> None:
    import argparse

    from srlib.run.config import PRESETS
    from srlib.cli.evaluate import add_eval_arguments
    from srlib.cli.train import add_override_arguments

    parser = subparsers.add_parser(
        "reproduce",
        help="train (or load) and evaluate every category, then write the paper's tables beside ours",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("Examples:\n"
                "  srlib reproduce --dataset mvtec --root /data/mvtec --out runs/mvtec --devices 0,1,2,3\n"
                "  srlib reproduce --dataset mvtec --root /data/mvtec --out runs/released --checkpoints /data/spr-checkpoints\n"
                "  srlib data textures textures && srlib reproduce --dataset mvtec --root textures --out runs/cpu --preset cpu"),
    )
    parser.add_argument("--dataset", required=True, choices=["mvtec", "btad", "mpdd"],
                        help="folder layout: mvtec (also the bundled textures), btad or mpdd")
    parser.add_argument("--root", required=True, help="the folder that holds the category folders")
    parser.add_argument("--out", required=True, help="output folder (re-use it to resume)")
    parser.add_argument("--categories", nargs="+", metavar="CATEGORY",
                        help="categories to run (default: every category folder in --root)")
    parser.add_argument("--preset", choices=PRESETS, default="paper",
                        help="training preset (default: paper, the authors' schedule; cpu: minutes on a laptop)")
    parser.add_argument("--devices", help="CUDA devices, one worker each: 0,1,2 (default: every visible GPU, else "
                                          "the CPU); or cpu")
    parser.add_argument("--checkpoints", metavar="DIR",
                        help="evaluate released checkpoints from DIR instead of training: DIR/<category>.pth, "
                             "DIR/<category>/ with one checkpoint, or one file per category whose name contains it")
    add_eval_arguments(parser.add_argument_group("evaluation settings (default: the paper's)"),
                       skip=("image_size", "resize", "kernel", "batch_size", "seed", "precision"))
    parser.add_argument("--k-grid", type=float, nargs="+", metavar="K",
                        help="the k sweep's grid (default: 1e-5 1e-4 3e-4 1e-3 3e-3 1e-2 1e-1)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_override_arguments(parser.add_argument_group("training overrides, passed to every category (default: the preset's); "
                                                     "--precision sets the evaluation's too"),
                           skip=("device",))
    parser.set_defaults(func=run)


def run(args) -> int:
    from srlib.cli.evaluate import eval_config_from
    from srlib.cli.train import overrides_from
    from srlib.reproduce.pipeline import reproduce

    return reproduce(args, overrides_from(args), eval_config_from(args))
