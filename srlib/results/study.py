"""The study of the training range of k (``benchmarks/k_range_study.py``): read, summarise, choose, draw.

Each row of ``study.csv`` is one trained model (category, recipe, seed)
evaluated at one k, on the test split of the book's data (``split = test``,
reported) or of another draw of it (``split = validation``, what the recipe is
chosen by). A *recipe* is the training range and budget: (k_max, k_draw,
epochs, width, batch_size). Rows written before the batch size was studied
have none: theirs is the cpu preset's 16.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from srlib.method.constants import PAPER_K  # the evaluation's k

RECIPE = ("k_max", "k_draw", "epochs", "width", "batch_size")
# The batch of rows from before batch_size was a column: every recipe then trained with the cpu preset's batch.
DEFAULT_BATCH = 16
METRICS = ("image_auroc", "pixel_auroc", "aupro")
# Recipes whose validation AUROC lies within this of the best count as equal; the rule then prefers the wider range.
TIE = 0.01
# The cpu preset's cost ceiling (25 epochs at width 16, see ``cost``): a category must train in minutes on a laptop
# (chapter 4's retrain = True, a reader's srlib train --preset cpu), and the book's evaluations of the shipped models
# (chapters 4-7) grow with the width. Larger budgets are measured and reported, not adopted.
BOOK_BUDGET = 25 * 16**2


def read_study(path: str | Path) -> list[dict]:
    """The rows of a ``study.csv``, numbers as numbers."""
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    ints, floats = ("epochs", "width", "seed"), ("k_max", "k", *METRICS, "train_seconds")
    return [{**r, **{c: int(r[c]) for c in ints}, **{c: float(r[c]) for c in floats},
             "batch_size": int(r.get("batch_size") or DEFAULT_BATCH)} for r in rows]


def recipe_of(row: dict) -> tuple:
    return tuple(row[c] for c in RECIPE)


def recipe_name(recipe: tuple) -> str:
    k_max, draw, epochs, width, batch = recipe
    return (f"k ~ {'U' if draw == 'uniform' else 'logU'}(1e-5, {k_max:g}), {epochs} epochs, width {width}, "
            f"batch {batch}")


def mean_at(rows: list[dict], recipe: tuple, split: str, k: float = PAPER_K, metric: str = "image_auroc",
            category: str | None = None) -> float:
    """Mean of ``metric`` over categories (or one) and seeds, for one recipe, split and k."""
    values = [r[metric] for r in rows if recipe_of(r) == recipe and r["split"] == split and r["k"] == k
              and (category is None or r["category"] == category)]
    return float(np.mean(values)) if values else float("nan")


def sweep_ks(rows: list[dict], recipe: tuple) -> list[float]:
    """The k of a recipe's test sweep, increasing."""
    return sorted({r["k"] for r in rows if recipe_of(r) == recipe and r["split"] == "test"})


def best_k_means(rows: list[dict], recipe: tuple, categories) -> dict:
    """Each metric at each (category, seed)'s best k by image AUROC on the test grid, averaged; and the mean best k."""
    picked = []
    for category in categories:
        mine = [r for r in rows if recipe_of(r) == recipe and r["split"] == "test" and r["category"] == category]
        for seed in sorted({r["seed"] for r in mine}):
            sweep = [r for r in mine if r["seed"] == seed]
            picked.append(max(sweep, key=lambda r: (r["image_auroc"], -abs(np.log10(r["k"] / PAPER_K)))))
    if not picked:
        return {}
    return {**{m: float(np.mean([r[m] for r in picked])) for m in METRICS},
            "k": float(np.exp(np.mean([np.log(r["k"]) for r in picked])))}


def cost(recipe: tuple) -> int:
    """A recipe's training cost in units of one epoch at width 1: epochs times width squared (a conv layer's FLOPs).

    The batch size does not enter: an epoch passes every image through the network whatever the batch.
    """
    return recipe[2] * recipe[3] ** 2


def choose(rows: list[dict], budget: int | None = BOOK_BUDGET) -> tuple:
    """The rule: among recipes that cost at most ``budget``, the highest mean validation image AUROC at
    k = 1e-3 over categories and seeds; recipes within ``TIE`` of it are equal, and among them the widest
    range of k (then the cheapest, then the larger batch: fewer, fuller steps) wins.

    No test label is read: only ``split = validation`` rows. ``budget`` None: any cost.
    """
    recipes = sorted({recipe_of(r) for r in rows if r["split"] == "validation"
                      and (budget is None or cost(recipe_of(r)) <= budget)})
    scores = {rc: mean_at(rows, rc, "validation") for rc in recipes}
    best = max(scores.values())
    tied = [rc for rc in recipes if scores[rc] >= best - TIE]
    return max(tied, key=lambda rc: (rc[0], -cost(rc), rc[4]))


def summary_rows(rows: list[dict], categories) -> list[dict]:
    """One row per recipe: seeds, validation and test at k = 1e-3, test per category, test at the best k."""
    table = []
    for recipe in sorted({recipe_of(r) for r in rows}, key=lambda rc: (rc[2], rc[3], -rc[4], rc[1], -rc[0])):
        seeds = sorted({r["seed"] for r in rows if recipe_of(r) == recipe})
        table.append({
            "recipe": recipe, "seeds": seeds,
            "validation": mean_at(rows, recipe, "validation"),
            **{m: mean_at(rows, recipe, "test", metric=m) for m in METRICS},
            "categories": {c: mean_at(rows, recipe, "test", category=c) for c in categories},
            "best_k": best_k_means(rows, recipe, categories),
            "train_seconds": float(np.mean([r["train_seconds"] for r in rows if recipe_of(r) == recipe])),
        })
    return table


def markdown_summary(rows: list[dict], categories) -> str:
    """The study's table in Markdown (the closing note's and the README's form)."""
    head = ["k_max", "draw", "epochs", "width", "batch", "seeds", "val img @1e-3", "test img / pix / AUPRO @1e-3",
            *categories, "best k: img / pix / AUPRO (k)", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary_rows(rows, categories):
        k_max, draw, epochs, width, batch = row["recipe"]
        best = row["best_k"]
        lines.append("| " + " | ".join([
            f"{k_max:g}", draw, str(epochs), str(width), str(batch), str(len(row["seeds"])), f"{row['validation']:.3f}",
            f"{row['image_auroc']:.3f} / {row['pixel_auroc']:.3f} / {row['aupro']:.3f}",
            *(f"{row['categories'][c]:.3f}" for c in categories),
            f"{best['image_auroc']:.3f} / {best['pixel_auroc']:.3f} / {best['aupro']:.3f} ({best['k']:.1g})"
            if best else "–",
            f"{row['train_seconds']:.0f}"]) + " |")
    return "\n".join(lines)


def plot_k_max(ax, rows: list[dict], categories, draw: str = "uniform", epochs: int | None = None,
               width: int | None = None, batch_size: int | None = None) -> None:
    """Test image AUROC at k = 1e-3 against k_max, one line per category and their mean (points: seeds)."""
    recipes = sorted({recipe_of(r) for r in rows if r["k_draw"] == draw
                      and (epochs is None or r["epochs"] == epochs) and (width is None or r["width"] == width)
                      and (batch_size is None or r["batch_size"] == batch_size)})
    k_maxes = [rc[0] for rc in recipes]
    for category in categories:
        values = [mean_at(rows, rc, "test", category=category) for rc in recipes]
        ax.plot(k_maxes, values, marker="o", ms=3, lw=1, label=category)
    ax.plot(k_maxes, [mean_at(rows, rc, "test") for rc in recipes], color="black", lw=2.2, label="mean")
    ax.set_xscale("log")
    ax.set_xlabel(r"$k_{max}$: training draws $k \sim U(10^{-5}, k_{max})$")
    ax.set_ylabel("image AUROC at k = 1e-3")
    ax.axvline(PAPER_K, color="0.5", ls=":", lw=1)


def plot_region(ax, rows: list[dict], recipes) -> None:
    """Mean test image AUROC over the evaluation's k for each recipe; a dashed line marks each recipe's k_max."""
    for i, recipe in enumerate(recipes):
        ks = sweep_ks(rows, recipe)
        draw = "" if recipe[1] == "uniform" else f", {recipe[1]}"
        line, = ax.plot(ks, [mean_at(rows, recipe, "test", k=k) for k in ks], marker="o", ms=3,
                        label=f"$k_{{max}}$ = {recipe[0]:g}{draw}")
        ax.axvline(recipe[0], color=line.get_color(), ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("k of the evaluation (Algorithm 1)")
    ax.set_ylabel("mean image AUROC")
