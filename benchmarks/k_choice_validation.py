"""Which label-free criterion should ``--k auto`` default to? Measured on a validation draw of the data.

For each shipped model (``notebooks/weights/textures-<category>-seed0.pt``) and
each perturbation seed, on one data folder (``--data``):

- every criterion of :mod:`srlib.method.kselect` chooses k from that folder's
  good *training* images, held out exactly as ``srlib evaluate --k auto`` holds
  them out (:func:`srlib.run.kselect.select_k`, the seed picks the held-out
  images, the pseudo anomalies and the perturbations);
- the test split is evaluated at every k of the grid with the same seed
  (:func:`srlib.run.sweeps.k_sweep`): the fixed k = 1e-3, each chosen k and the
  best k of the grid on the test labels (the oracle) are read from it.

Run it on ``srlib data textures --seed 1`` (the validation draw: other crops,
other defects) to choose the default criterion (``srlib.results.kchoice.choose``
states the rule), and on the book's data (``srlib data textures``) to report
the chosen default's numbers there; the test split never chooses.

    python benchmarks/k_choice_validation.py --data textures-val --split validation --out runs/kchoice
    python benchmarks/k_choice_validation.py --data textures --split test --out runs/kchoice
    python benchmarks/k_choice_validation.py --out runs/kchoice --summary   # tables, from the CSVs

One JSON per (split, category, seed) under ``OUT/parts``: a finished one is
skipped, so the benchmark can be stopped and started again. ``OUT/k_choice.csv``
(sweeps and choices) and ``OUT/k_choice_candidates.csv`` (every criterion's
value at every k) are rewritten from them after each part.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

CATEGORIES = ("brick", "grass", "tissue", "coin", "cup")
WEIGHTS = Path(__file__).resolve().parents[1] / "notebooks" / "weights"


def one_part(data: str, split: str, category: str, seed: int, threads: int) -> dict:
    """The sweep of the test split and every criterion's choice, for one model and seed."""
    import torch

    torch.set_num_threads(threads)
    from srlib.data import folder_dataset, good_training_images
    from srlib.method import kselect
    from srlib.run.checkpoint import load_score_model
    from srlib.run.config import K_GRID, EvalConfig
    from srlib.run.kselect import select_k
    from srlib.run.sweeps import k_sweep

    model = load_score_model(WEIGHTS / f"textures-{category}-seed0.pt")
    size = json.loads((WEIGHTS / f"textures-{category}-seed0.json").read_text())["config"]["image_size"]
    config = EvalConfig(image_size=size, seed=seed)
    started = time.perf_counter()
    train = good_training_images("mvtec", data, category, image_size=size)  # the choice reads nothing else
    choice = select_k(model, train, config, ks=K_GRID, what=f"{category} ({data})")
    chose = time.perf_counter() - started
    test = folder_dataset("mvtec", data, category, "test", image_size=size)
    sweep = {k: result.metrics() for k, result in k_sweep(model, test, K_GRID, config).items()}
    swept = time.perf_counter() - started - chose
    common = dict(split=split, category=category, seed=seed)
    rows = [dict(common, method="sweep", k=k, **metrics, seconds=round(swept / len(sweep), 2))
            for k, metrics in sorted(sweep.items())]
    rows += [dict(common, method=criterion, k=choice.chosen_by(criterion), **sweep[choice.chosen_by(criterion)],
                  seconds=round(chose, 1)) for criterion in kselect.CRITERIA]
    candidates = [dict(common, **c) for c in choice.to_dict()["candidates"]]
    return {"rows": rows, "candidates": candidates, "choose_seconds": round(chose, 1),
            "sweep_seconds": round(swept, 1), "threads": threads}


def collect(out: Path) -> tuple[list[dict], list[dict]]:
    from srlib.results.kchoice import CANDIDATE_COLUMNS, write_rows

    rows, candidates = [], []
    for path in sorted((out / "parts").glob("*.json")):
        part = json.loads(path.read_text())
        for row in part["rows"]:  # parts written before the rows carried their seconds
            row.setdefault("seconds", part["choose_seconds"] if row["method"] != "sweep"
                           else round(part["sweep_seconds"] / sum(r["method"] == "sweep" for r in part["rows"]), 2))
        rows += part["rows"]
        candidates += part["candidates"]
    write_rows(out / "k_choice.csv", rows)
    write_rows(out / "k_choice_candidates.csv", candidates, CANDIDATE_COLUMNS)
    return rows, candidates


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="an srlib data textures folder")
    parser.add_argument("--split", choices=("validation", "test"),
                        help="validation: a draw that chooses (--seed 1); test: the book's data, reported")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--categories", nargs="*", default=list(CATEGORIES))
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--summary", action="store_true", help="only print the tables of what is measured")
    args = parser.parse_args(argv)
    out = Path(args.out)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    if not args.summary:
        if not (args.data and args.split):
            parser.error("--data and --split are needed to measure (or pass --summary)")
        for seed in args.seeds:  # seed by seed: a benchmark stopped half way has every category once
            for category in args.categories:
                path = out / "parts" / f"{args.split}-{category}-s{seed}.json"
                if path.exists():
                    continue
                part = one_part(args.data, args.split, category, seed, args.threads)
                path.write_text(json.dumps(part))
                collect(out)
                print(f"{args.split} {category} seed {seed}: chose in {part['choose_seconds']} s, swept in "
                      f"{part['sweep_seconds']} s; " + ", ".join(
                          f"{r['method']} k={r['k']:g} {r['image_auroc']:.3f}" for r in part["rows"]
                          if r["method"] != "sweep"), flush=True)
    from srlib.results.kchoice import choose, cpu_minutes, markdown_table, read_rows

    collect(out)
    rows = read_rows(out / "k_choice.csv")
    for split in ("validation", "test"):
        if any(r["split"] == split for r in rows):
            print(f"\n{split}:\n" + markdown_table(rows, split))
    if any(r["split"] == "validation" for r in rows):
        print("\ndefault criterion by the validation rule (srlib.results.kchoice.choose):", choose(rows))
        print(f"measured in {cpu_minutes(rows, 'validation'):.0f} min (validation split)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
