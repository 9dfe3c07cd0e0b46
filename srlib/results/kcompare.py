"""Chapter 7's comparison: the label-free choice of k against the paper's k and the test labels' best k, per category.

:func:`compare_folder` takes every category of a results folder that has its
trained model and its k sweep on the test split (what chapter 5 and
``srlib reproduce`` write) and holds the choices of
:func:`srlib.run.kselect.compare_with_test` against that sweep; the labels
score the choices, they never make them. :func:`table`, :func:`summarize`,
:func:`grid_ends` and :func:`default_agrees` are the chapter's arithmetic
over those comparisons.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from srlib.method import kselect
from srlib.method.constants import PAPER_K
from srlib.run.files import K_SWEEP, RESULT

TABLE_HEADER = ["category", "k", "image AUROC", "pixel AUROC", "AUPRO", "share: image", "pixel", "AUPRO"]


def compare_folder(results_dir: str | Path, seeds, fixed_k: float = PAPER_K, progress: bool = False) -> dict:
    """``{"dataset/category": compare_with_test(...)}`` for every category result under ``results_dir``.

    A category counts when its ``result.json`` names a data folder and a
    checkpoint that still exist and a ``k_sweep.csv`` lies beside it. Its
    model is evaluated in float32 (shipped weights are stored in float16),
    with the result's evaluation settings and each seed of ``seeds``.
    """
    from srlib.data import folder_dataset
    from srlib.run.checkpoint import load_score_model
    from srlib.run.config import EvalConfig
    from srlib.run.kselect import compare_with_test
    from srlib.run.sweeps import ALL, read_k_sweeps

    comparisons = {}
    for path in sorted(Path(results_dir).glob(f"*/*/{RESULT}")):  # one per category
        saved = json.loads(path.read_text())
        root = saved.get("root")  # the data folder it was evaluated on
        if not (root and Path(saved["checkpoint"]).is_file() and (path.parent / K_SWEEP).is_file()):
            continue
        sweep = {row["k"]: row for row in read_k_sweeps(path.parent) if row["subset"] == ALL}
        model = load_score_model(saved["checkpoint"]).float()
        config = EvalConfig.from_result(saved).replace(k=fixed_k)
        train = folder_dataset(saved["layout"], root, saved["category"], "train", image_size=saved["image_size"])
        comparisons[f"{saved['dataset']}/{saved['category']}"] = compare_with_test(
            model, train, sweep, config, seeds=list(seeds), fixed_k=fixed_k, progress=progress)
    return comparisons


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def format_share(value: float | None) -> str:
    """A share of the oracle's gain as ``+0.50``; empty where there was no gain to recover."""
    return "" if value is None else f"{value:+.2f}"


def table(comparisons: dict) -> list[list[str]]:
    """The rows of chapter 7's table (:data:`TABLE_HEADER`): every comparison row, metrics in %."""
    rows = []
    for key, comparison in comparisons.items():
        for row in comparison["rows"]:
            ks = ", ".join(f"{k:g}" for k in row["ks"])
            rows.append([key, f"{row['method']} [{ks}]", *(_pct(row[m]) for m in kselect.METRICS),
                         *(format_share(row.get(f"{m}_share")) for m in kselect.METRICS)])
    return rows


def _auto_row(comparison: dict, criterion: str) -> dict:
    return next(r for r in comparison["rows"] if r["method"] == f"auto ({criterion})")


def criteria(comparisons: dict) -> list[str]:
    """The criteria whose choices the comparisons hold, in their order (those of the first category)."""
    rows = next(iter(comparisons.values()))["rows"] if comparisons else []
    return [r["method"][len("auto ("):-1] for r in rows if r["method"].startswith("auto (")]


def summarize(comparisons: dict) -> dict:
    """Per criterion and metric, the means over categories at the fixed k, at the choices and at the oracle.

    ``{criterion: {metric: {"fixed", "auto", "oracle", "share"}}}``, where
    ``share`` is :func:`srlib.method.kselect.oracle_share` of the three means
    (None when the oracle gains nothing on average). Empty without comparisons.
    """
    summary = {}
    if not comparisons:
        return summary
    fixed = [c["rows"][0] for c in comparisons.values()]
    oracle = [c["rows"][-1] for c in comparisons.values()]
    for criterion in criteria(comparisons):
        chosen = [_auto_row(c, criterion) for c in comparisons.values()]
        summary[criterion] = {}
        for m in kselect.METRICS:
            means = {name: float(np.mean([r[m] for r in rows]))
                     for name, rows in (("fixed", fixed), ("auto", chosen), ("oracle", oracle))}
            summary[criterion][m] = {**means, "share": kselect.oracle_share(means["fixed"], means["auto"], means["oracle"])}
    return summary


def grid_ends(comparisons: dict) -> dict:
    """``{criterion: [choices at the smallest or largest k of the grid, choices]}`` over every category and seed."""
    grid = sorted({k for c in comparisons.values() for k in c["sweep"]})
    ends = {}
    for criterion in criteria(comparisons):
        chosen = [k for c in comparisons.values() for k in _auto_row(c, criterion)["ks"]]
        ends[criterion] = [sum(k in (grid[0], grid[-1]) for k in chosen), len(chosen)]
    return ends


def default_agrees(summary: dict, default: str) -> tuple[dict, bool]:
    """The mean image AUROC of each criterion's choices, and whether ``default``'s is the highest (ties agree)."""
    means = {criterion: summary[criterion]["image_auroc"]["auto"] for criterion in summary}
    return means, means[default] >= max(means.values())
