"""The training range of k: does a score model trained where it is evaluated detect more?

Trains the cpu preset on the bundled categories with k drawn in [1e-5, k_max]
for several k_max (and ways of drawing k, budgets, widths, seeds), then
evaluates each model on chapter 5's grid of k:

- on the test split of ``--data`` (the book's data, ``srlib data textures``),
  reported, never used to choose;
- on ``--validation`` (another draw of the data: ``srlib data textures --seed 1``,
  other crops and other defects), at the evaluation's k = 1e-3: the numbers
  the cpu preset is chosen by (``choose`` below states the rule).

Every run is an ordinary ``srlib.run.train.train`` run folder under
``OUT/runs/<category>/<recipe>``; a finished one is skipped, an interrupted one
resumes, so the study can be stopped and started again. Results go to
``OUT/study.csv`` (one row per model and k) as they come.

    python benchmarks/k_range_study.py --data textures --validation textures-val --out runs/k_study --stage grid
    python benchmarks/k_range_study.py ... --stage summary      # the tables, from study.csv

Stages: ``grid`` (k_max over 1, 0.3, 0.1, 0.03, 0.01, uniform draws, 2 seeds),
``draw`` (log-uniform at the same k_max), ``budget`` (4x the epochs) and
``width`` (32) and ``batch`` (8 and 4: the same images in more, smaller
steps) for the ranges named by ``--k-max``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

CATEGORIES = ("brick", "grass", "tissue", "coin", "cup")
GRID = (1.0, 0.3, 0.1, 0.03, 0.01)
COLUMNS = ("category", "k_max", "k_draw", "epochs", "width", "batch_size", "seed", "split", "k",
           "image_auroc", "pixel_auroc", "aupro", "train_seconds")


def recipes(stage: str, k_maxes: list[float], seeds: list[int]) -> list[dict]:
    base = dict(k_draw="uniform", epochs=25, width=16, batch_size=16)
    if stage == "grid":
        return [dict(base, k_max=float(k), seed=s) for k in (k_maxes or GRID) for s in seeds]
    if stage == "draw":
        return [dict(base, k_draw="log-uniform", k_max=float(k), seed=s) for k in (k_maxes or GRID) for s in seeds]
    if stage == "budget":
        return [dict(base, k_max=k, k_draw=d, epochs=100, seed=s) for k, d in _ranges(k_maxes) for s in seeds]
    if stage == "width":
        return [dict(base, k_max=k, k_draw=d, width=32, seed=s) for k, d in _ranges(k_maxes) for s in seeds]
    if stage == "batch":  # the same images seen, in 2x and 4x as many optimizer steps
        return [dict(base, k_max=k, k_draw=d, batch_size=b, seed=s) for k, d in _ranges(k_maxes) for b in (8, 4)
                for s in seeds]
    raise SystemExit(f"unknown stage {stage!r}: grid, draw, budget, width, batch or summary")


def _ranges(k_maxes) -> list[tuple[float, str]]:
    """--k-max values as (k_max, draw): '0.1' is uniform, 'log0.1' log-uniform."""
    return [(float(v[3:]), "log-uniform") if str(v).startswith("log") else (float(v), "uniform") for v in k_maxes]


def run_name(r: dict) -> str:
    draw = "log" if r["k_draw"] == "log-uniform" else "uni"
    batch = "" if r.get("batch_size", 16) == 16 else f"-b{r['batch_size']}"
    return f"kmax{r['k_max']:g}-{draw}-e{r['epochs']}-w{r['width']}{batch}-s{r['seed']}"


def one_run(category: str, recipe: dict, data: str, validation: str | None, out: str, threads: int) -> list[dict]:
    """Train (or resume, or skip) one model and evaluate it; the rows it adds to study.csv."""
    import torch

    torch.set_num_threads(threads)
    from srlib.data import folder_dataset
    from srlib.run.checkpoint import load_score_model
    from srlib.run.config import EvalConfig, TrainConfig
    from srlib.run.sweeps import K_GRID, k_sweep
    from srlib.run.train import train

    folder = Path(out) / "runs" / category / run_name(recipe)
    done = folder / "study.json"
    if done.exists():
        return json.loads(done.read_text())
    config = TrainConfig.preset_for("cpu", "mvtec", data, category, device="cpu", **recipe)
    started = time.perf_counter()
    outcome = train(config, folder, resume=(folder / "checkpoint.pt").exists(), progress=False)
    if not outcome.finished:
        raise SystemExit(f"{folder}: stopped by {outcome.stopped_by}")
    seconds = sum(json.loads(line)["seconds"] for line in (folder / "log.jsonl").read_text().splitlines())
    model = load_score_model(folder / "model.pt")
    evaluation = EvalConfig(image_size=config.image_size)
    rows = []
    common = dict(category=category, **recipe, train_seconds=round(seconds, 1))
    test = folder_dataset("mvtec", data, category, "test", image_size=config.image_size)
    for k, result in k_sweep(model, test, K_GRID, evaluation).items():
        rows.append(dict(common, split="test", k=k, **result.metrics()))
    if validation:
        val = folder_dataset("mvtec", validation, category, "test", image_size=config.image_size)
        for k, result in k_sweep(model, val, (evaluation.k,), evaluation).items():
            rows.append(dict(common, split="validation", k=k, **result.metrics()))
    done.write_text(json.dumps(rows))
    print(f"{category} {run_name(recipe)}: test image AUROC at 1e-3 "
          f"{next(r['image_auroc'] for r in rows if r['split'] == 'test' and r['k'] == 1e-3):.3f} "
          f"({seconds:.0f} s training)", flush=True)
    return rows


def collect(out: Path) -> list[dict]:
    rows = []
    for path in sorted(out.glob("runs/*/*/study.json")):
        rows.extend(json.loads(path.read_text()))
    with open(out / "study.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="srlib data textures folder (reported)")
    parser.add_argument("--validation", help="another draw of it (srlib data textures --seed 1): chosen by")
    parser.add_argument("--out", required=True)
    parser.add_argument("--stage", default="grid")
    parser.add_argument("--k-max", nargs="*", default=[],
                        help="the ranges of a stage (grid, draw: numbers; budget, width, batch: 0.1 or log0.1 for log-uniform)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--categories", nargs="*", default=list(CATEGORIES))
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per training")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.stage != "summary":
        # Seed by seed, so that a study stopped half way has every recipe once.
        todo = sorted(((c, r) for r in recipes(args.stage, args.k_max, args.seeds) for c in args.categories),
                      key=lambda item: item[1]["seed"])
        print(f"{len(todo)} runs, {args.jobs} at a time with {args.threads} thread(s) each", flush=True)
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(one_run, c, r, args.data, args.validation, str(out), args.threads) for c, r in todo]
            for future in as_completed(futures):
                future.result()
                collect(out)
    from srlib.results.study import choose, markdown_summary, read_study, recipe_name

    collect(out)
    rows = read_study(out / "study.csv")
    print(markdown_summary(rows, args.categories))
    if any(r["split"] == "validation" for r in rows):
        print("chosen by validation image AUROC at k = 1e-3 (srlib.results.study.choose):", recipe_name(choose(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
