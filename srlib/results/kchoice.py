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
from srlib.method.kselect import CRITERIA, METRICS, oracle_share

# seconds: of the choice (select_k, all criteria at once) on a criterion's row, of one k's evaluation on a sweep row.
COLUMNS = ("split", "category", "seed", "method", "k", *METRICS, "seconds")
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


def table(rows: list[dict], split: str) -> tuple[list[str], list[list[str]]]:
    """Header and cells: method x category image AUROC (with the chosen k per seed), and the means of all three."""
    cats = per_category(rows, split)
    categories = list(next(iter(cats.values())))
    summary = means(rows, split)
    head = ["method", *categories, "mean image / pixel AUROC / AUPRO", "worst image AUROC"]
    cells = []
    for method, values in cats.items():
        s = summary[method]
        cells.append([method, *(f"{values[c]['image_auroc']:.3f} ({', '.join(f'{k:g}' for k in values[c]['ks'])})"
                                for c in categories),
                      f"{s['image_auroc']:.3f} / {s['pixel_auroc']:.3f} / {s['aupro']:.3f}", f"{s['worst']:.3f}"])
    return head, cells


def markdown_table(rows: list[dict], split: str) -> str:
    """:func:`table` in Markdown (the benchmark's summary)."""
    head, cells = table(rows, split)
    return "\n".join("| " + " | ".join(line) + " |" for line in [head, ["---"] * len(head), *cells])


def cpu_minutes(rows: list[dict], split: str) -> float:
    """The measurement's cost in minutes: every choice once (its criteria share it) and every sweep's k."""
    choices = {(r["category"], r["seed"]): r["seconds"] for r in rows if r["split"] == split and r["method"] in CRITERIA}
    sweeps = [r["seconds"] for r in rows if r["split"] == split and r["method"] == SWEEP]
    return (sum(choices.values()) + sum(sweeps)) / 60


def describe_choice(rows: list[dict], default: str) -> str:
    """What the validation measurement says, in words: the means, the rule's pick and whether it is ``default``.

    Chapter 7 prints it under the table of :func:`markdown_table`'s numbers
    (from the committed ``k_choice.csv``); the sentence is generated, so it
    follows the file when the models are measured again.
    """
    summary = means(rows, "validation")
    runs = per_run(rows, "validation")
    categories, seeds = {c for c, _ in runs[FIXED]}, {s for _, s in runs[FIXED]}
    chosen = choose(rows)
    ranked = sorted((c for c in CRITERIA if c in summary), key=lambda c: -summary[c]["image_auroc"])
    fixed, oracle = summary[FIXED]["image_auroc"], summary[ORACLE]["image_auroc"]
    gap = summary[chosen]["image_auroc"] - max(summary[c]["image_auroc"] for c in ranked if c != chosen)
    tie = (f"the next criterion is {gap:.3f} below, more than the {TIE} that counts as a tie" if gap > TIE else
           f"within {TIE} of another criterion, it has the better worst category "
           f"({summary[chosen]['worst']:.3f})")
    share = oracle_share(fixed, summary[chosen]["image_auroc"], oracle)
    recovered = "" if share is None else f"; its choices recover {100 * share:.0f} % of the best k's gain over k = {PAPER_K:g}"
    verdict = (f"It is the default of `--k auto`." if chosen == default else
               f"The default of `--k auto` is {default}: the library no longer follows its measurement.")
    return (f"On the validation draw ({len(categories)} categories x {len(seeds)} seeds), the mean image AUROC at "
            "each criterion's choice is " + ", ".join(f"{c} {summary[c]['image_auroc']:.3f}" for c in ranked)
            + f"; at k = {PAPER_K:g} it is {fixed:.3f}, and at each category's best k on that draw's labels "
            f"{oracle:.3f}. The rule picks {chosen} ({tie}){recovered}. {verdict}")
