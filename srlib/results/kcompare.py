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
        model = load_score_model(saved["checkpoint"])
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


DSM_HEADER = ["category", "dsm's k", "image AUROC there", "lowest loss ratio [k]", "ratio at the labels' best k",
              "labels' best k", "image AUROC there"]


def dsm_rows(comparisons: dict) -> list[dict]:
    """Per category, the ``dsm`` criterion's evidence beside the test: where the network beats the Gaussian most.

    ``ratios`` is the model's held-out DSM loss over the Gaussian's at every
    k, the mean over the seeds (k where a seed's ratio is None are left
    out); ``lowest`` its smallest value and ``lowest_k`` where; ``ks`` the k
    dsm chose with each seed and ``image_auroc`` the test's mean there;
    ``best_k`` and ``best_auroc`` the test's best k by image AUROC (the
    oracle row) and ``at_best`` the ratio there.
    """
    rows = []
    for key, comparison in comparisons.items():
        per_k = {}
        for choice in comparison["choices"]:
            for k, scores in choice.candidates.items():
                per_k.setdefault(k, []).append(scores.get("dsm_ratio"))
        ratios = {k: float(np.mean(v)) for k, v in sorted(per_k.items()) if None not in v}
        auto, oracle = _auto_row(comparison, "dsm"), comparison["rows"][-1]
        lowest_k = min(ratios, key=ratios.get) if ratios else None
        rows.append({"category": key, "ks": auto["ks"], "image_auroc": auto["image_auroc"], "ratios": ratios,
                     "lowest": ratios.get(lowest_k), "lowest_k": lowest_k, "best_k": oracle["ks"][0],
                     "best_auroc": comparison["sweep"][oracle["ks"][0]]["image_auroc"],
                     "at_best": ratios.get(oracle["ks"][0])})
    return rows


def dsm_table(rows: list[dict]) -> list[list[str]]:
    """:func:`dsm_rows` as the cells of :data:`DSM_HEADER` (AUROC in %)."""
    def ratio(value):
        return "" if value is None else f"{value:.2f}"

    return [[r["category"], ", ".join(f"{k:g}" for k in r["ks"]), _pct(r["image_auroc"]),
             "" if r["lowest"] is None else f"{r['lowest']:.2f} [{r['lowest_k']:g}]", ratio(r["at_best"]), f"{r['best_k']:g}",
             _pct(r["best_auroc"])] for r in rows]


def describe_dsm(rows: list[dict]) -> str:
    """:func:`dsm_rows` in words: where the network beats the Gaussian, and where dsm's k lies against the labels' best."""
    if not rows:
        return "No category to describe."
    names = lambda some: ", ".join(r["category"].split("/")[-1] for r in some) or "none"  # noqa: E731
    beats = [r for r in rows if r["lowest"] is not None and r["lowest"] < 1]
    rest = [r["lowest"] for r in rows if r["lowest"] is not None and r["lowest"] >= 1]
    choices = [(k, r["best_k"]) for r in rows for k in r["ks"]]
    larger, same = sum(k > best for k, best in choices), sum(k == best for k, best in choices)
    worse = [r for r in rows if r["best_auroc"] - r["image_auroc"] > 0.05]
    text = (f"The network's held-out denoising loss is below the Gaussian's at some k in {len(beats)} of {len(rows)} "
            f"categories ({names(beats)})")
    if rest:
        text += f"; in the others it is at best {min(rest):.2f} to {max(rest):.2f} times the Gaussian's"
    text += (f". dsm chose a larger k than the labels' best in {larger} of {len(choices)} choices and the same k in "
             f"{same}; it lost more than 0.05 of image AUROC to the labels' best k in {names(worse)}: mean "
             f"{np.mean([r['image_auroc'] for r in rows]):.3f} at its choices against "
             f"{np.mean([r['best_auroc'] for r in rows]):.3f} at the best k.")
    return text
