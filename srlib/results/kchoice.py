"""The measurement behind ``--k auto``'s default criterion (``benchmarks/k_choice_validation.py``): read, summarise, choose.

Each row of ``k_choice.csv`` is one shipped model (category) with one seed on
the test split of one draw of the data: ``split = validation`` for
``srlib data textures --seed 1`` (what the default is chosen by) or ``split =
test`` for the book's data (reported). ``method = sweep`` rows hold the
metrics at every k of the grid (the seed's perturbations); a criterion's row
(``pseudo``, ``uniformity``, ``dsm``) holds the k it chose from that draw's
held-out good training images and the metrics at that k.
``k_choice_candidates.csv`` holds every criterion's value at every k.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from srlib.atomic import write_text
from srlib.method.constants import PAPER_K
from srlib.method.kselect import CRITERIA, METRICS

COLUMNS = ("split", "category", "seed", "method", "k", *METRICS)
CANDIDATE_COLUMNS = ("split", "category", "seed", "k", "image_auroc", "pixel_auroc", "pseudo", "nonuniformity",
                     "uniformity", "dsm_loss", "gaussian_dsm_loss", "dsm_ratio", "dsm")
SWEEP = "sweep"
FIXED, ORACLE = "fixed", "oracle"
# Criteria whose mean validation image AUROC lies within this of the best count as equal (the five categories
# and two seeds' spread is larger); the rule then prefers the best worst category.
TIE = 0.01


def write_rows(path: str | Path, rows: list[dict], columns=COLUMNS) -> None:
    """Write rows as CSV, atomically (k as repr, so it reads back exactly)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({**r, "k": repr(float(r["k"]))} for r in rows)
    write_text(path, out.getvalue())


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a ``k_choice.csv`` (or its candidates), numbers as numbers (empty cells None)."""
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    text = ("split", "category", "method")
    return [{c: (v if c in text else int(v) if c == "seed" else None if v == "" else float(v)) for c, v in r.items()}
            for r in rows]


def _sweeps(rows: list[dict], split: str) -> dict:
    """``{(category, seed): {k: row}}`` of a split's sweep rows."""
    sweeps = {}
    for r in rows:
        if r["split"] == split and r["method"] == SWEEP:
            sweeps.setdefault((r["category"], r["seed"]), {})[r["k"]] = r
    return sweeps


def per_run(rows: list[dict], split: str, fixed_k: float = PAPER_K) -> dict:
    """``{method: {(category, seed): {"k", *METRICS}}}`` for the fixed k, each criterion and the oracle.

    The oracle is each metric's maximum over the seed's sweep (chosen on the
    test labels, metric by metric: an upper bound); its ``k`` is the image
    AUROC's best (ties to the k nearest 1e-3 in log).
    """
    table = {FIXED: {}, ORACLE: {}, **{c: {} for c in CRITERIA}}
    for (category, seed), sweep in _sweeps(rows, split).items():
        table[FIXED][category, seed] = {"k": fixed_k, **{m: sweep[fixed_k][m] for m in METRICS}}
        best = max(sweep, key=lambda k: (sweep[k]["image_auroc"], -abs(math.log(k / PAPER_K))))
        table[ORACLE][category, seed] = {"k": best, **{m: max(r[m] for r in sweep.values()) for m in METRICS}}
    for r in rows:
        if r["split"] == split and r["method"] in CRITERIA:
            table[r["method"]][r["category"], r["seed"]] = {"k": r["k"], **{m: r[m] for m in METRICS}}
    return {method: runs for method, runs in table.items() if runs}


def per_category(rows: list[dict], split: str) -> dict:
    """``{method: {category: {*METRICS: mean over seeds, "ks": [k per seed]}}}``."""
    table = {}
    for method, runs in per_run(rows, split).items():
        for category in dict.fromkeys(c for c, _ in runs):
            mine = [runs[key] for key in sorted(runs) if key[0] == category]
            table.setdefault(method, {})[category] = {**{m: float(np.mean([r[m] for r in mine])) for m in METRICS},
                                                      "ks": [r["k"] for r in mine]}
    return table


def means(rows: list[dict], split: str) -> dict:
    """``{method: {*METRICS: mean over categories and seeds, "worst": lowest category's image AUROC}}``."""
    return {method: {**{m: float(np.mean([c[m] for c in cats.values()])) for m in METRICS},
                     "worst": min(c["image_auroc"] for c in cats.values())}
            for method, cats in per_category(rows, split).items()}


def choose(rows: list[dict]) -> str:
    """The rule: the criterion with the highest mean *validation* image AUROC over categories and seeds.

    Criteria within ``TIE`` of the best are equal; among them the highest
    worst category (the lowest category mean image AUROC) wins, then the
    order of :data:`srlib.method.kselect.CRITERIA`. Only ``split =
    validation`` rows are read: no test label makes the choice.
    """
    scores = {c: s for c, s in means(rows, "validation").items() if c in CRITERIA}
    best = max(s["image_auroc"] for s in scores.values())
    tied = [c for c in CRITERIA if c in scores and scores[c]["image_auroc"] >= best - TIE]
    return max(tied, key=lambda c: (scores[c]["worst"], -CRITERIA.index(c)))


def markdown_table(rows: list[dict], split: str) -> str:
    """Method x category image AUROC (with the chosen k per seed), and the means of all three metrics."""
    cats = per_category(rows, split)
    categories = list(next(iter(cats.values())))
    summary = means(rows, split)
    head = ["method", *categories, "mean img / pix / AUPRO", "worst img"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, values in cats.items():
        cells = [f"{values[c]['image_auroc']:.3f} ({', '.join(f'{k:g}' for k in values[c]['ks'])})"
                 for c in categories]
        s = summary[method]
        lines.append("| " + " | ".join([method, *cells, f"{s['image_auroc']:.3f} / {s['pixel_auroc']:.3f} / "
                                        f"{s['aupro']:.3f}", f"{s['worst']:.3f}"]) + " |")
    return "\n".join(lines)
