"""Charts of results: the paper's Fig. 6 (a radar of image AUROC over k, :func:`plot_fig6`), Fig. 4 (a gallery
of anomaly maps, :func:`plot_gallery`) and the k sweep per defect type (:func:`plot_k_sweeps`).

They draw what chapter 5 writes beside each result (:mod:`srlib.run.sweeps`:
``k_sweep.csv`` read by :func:`~srlib.run.sweeps.read_k_sweeps`,
``gallery.npz`` read by :func:`~srlib.run.sweeps.read_galleries`); chapters 5
and 6 show them.
"""

from __future__ import annotations

import numpy as np

from srlib.method.constants import PAPER_K
from srlib.run.pictures import strip
from srlib.run.sweeps import ALL, Gallery


def radar_spokes(rows: list[dict], dataset: str) -> dict[str, dict[float, float]]:
    """Image AUROC by k for each spoke of a Fig. 6-style radar chart of one dataset.

    Spokes are the categories (subset ``all``), as in the paper, when there
    are at least three; with fewer (the bundled data has two) a radar of
    categories would be a line, so the spokes are ``category/defect`` subsets.
    """
    mine = [r for r in rows if r["dataset"] == dataset]
    categories = list(dict.fromkeys(r["category"] for r in mine))
    if len(categories) >= 3:
        keys = [(c, ALL) for c in categories]
    else:
        keys = list(dict.fromkeys((r["category"], r["subset"]) for r in mine if r["subset"] != ALL))
    spokes = {}
    for category, subset in keys:
        label = category if subset == ALL else f"{category}/{subset}"
        spokes[label] = {r["k"]: r["image_auroc"] for r in mine if (r["category"], r["subset"]) == (category, subset)}
    return spokes


def plot_radar(ax, spokes: dict[str, dict[float, float]], fixed_k: float = PAPER_K) -> dict[str, list[float]]:
    """The paper's Fig. 6 on a polar ``ax``: image AUROC at ``fixed_k`` (blue) and at each spoke's best k (red).

    Returns the two series (``fixed``, ``best``) and the best k of each spoke.
    """
    labels = list(spokes)
    fixed = [spokes[s].get(fixed_k, float("nan")) for s in labels]
    best_k = [max(spokes[s], key=spokes[s].get) for s in labels]
    best = [spokes[s][b] for s, b in zip(labels, best_k)]
    angles = np.linspace(0, 2 * np.pi, len(labels), endpoint=False)
    closed = np.append(angles, angles[0])
    for values, colour, name in ((best, "tab:red", "best k per spoke"), (fixed, "tab:blue", f"k = {fixed_k:g}")):
        ax.plot(closed, np.append(values, values[0]), color=colour, lw=1.6,
                label=f"{name} (mean {np.nanmean(values):.3f})")
        ax.fill(closed, np.append(values, values[0]), color=colour, alpha=0.08)
    ax.set_xticks(angles)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylim(min(0.5, np.nanmin(fixed + best) - 0.02), 1.0)
    ax.tick_params(axis="y", labelsize=6)
    return {"fixed": fixed, "best": best, "best_k": best_k}


def plot_gallery(galleries: list[Gallery], k: float, per_category: int = 4, per_row: int = 2, size: float = 1.5):
    """Input | map at ``k`` | ground truth for up to ``per_category`` images of each gallery (the paper's Fig. 4).

    Each image is one :func:`srlib.run.pictures.strip` of the map alone (no blend).
    """
    import matplotlib.pyplot as plt

    panels = [(g, i) for g in galleries for i in range(min(per_category, len(g.defects)))]
    rows = max(1, -(-len(panels) // per_row))
    fig, axes = plt.subplots(rows, per_row, figsize=(3 * per_row * size, rows * size), squeeze=False,
                             constrained_layout=True)
    for ax in axes.flat:
        ax.set_axis_off()
    for n, (gallery, i) in enumerate(panels):
        ax = axes[n // per_row, n % per_row]
        at = int(np.argmin(np.abs(np.log(gallery.ks) - np.log(k))))
        ax.imshow(strip(gallery.images[i], gallery.maps[at, i], gallery.masks[i], blend=1.0))
        ax.set_title(f"{gallery.category}: {gallery.defects[i]}, k = {gallery.ks[at]:g}", fontsize=7, loc="left")
    return fig


def plot_k_sweeps(rows: dict[str, list[dict]], ks: dict[str, float]):
    """Image AUROC over k, one panel per category (chapter 5): the whole test split (black) and each defect type.

    ``rows`` maps each category to its :func:`srlib.run.sweeps.sweep_rows`;
    a dotted line marks the category's evaluation k in ``ks``.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(2.6 * len(rows) + 0.8, 3), constrained_layout=True, sharey=True,
                             squeeze=False)
    for ax, (category, mine) in zip(axes[0], rows.items()):
        for subset in dict.fromkeys(r["subset"] for r in mine):
            curve = [r for r in mine if r["subset"] == subset]
            style = dict(color="black", lw=2.2, zorder=3) if subset == ALL else dict(lw=1, alpha=0.8)
            ax.semilogx([r["k"] for r in curve], [r["image_auroc"] for r in curve], marker="o", ms=3, label=subset,
                        **style)
        ax.axvline(ks[category], color="0.6", ls=":", lw=1)
        ax.set_xlabel("k")
        ax.set_title(category, fontsize=9)
    axes[0, 0].set_ylabel("image AUROC")
    axes[0, -1].legend(fontsize=6, title="test subset", title_fontsize=6)
    return fig


def plot_fig6(rows: list[dict], dataset: str, title: str, fixed_k: float = PAPER_K):
    """The paper's Fig. 6 for one dataset of k sweep ``rows``: the radar (left) and each category's curve (right).

    The radar is :func:`plot_radar` of :func:`radar_spokes`; the curves are
    the whole test split's image AUROC over k. Returns the figure and the
    radar's series (``fixed``, ``best``, ``best_k``).
    """
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(9.5, 4.2), constrained_layout=True)
    ax = fig.add_subplot(1, 2, 1, projection="polar")
    series = plot_radar(ax, radar_spokes(rows, dataset), fixed_k=fixed_k)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    ax.set_title(f"{title}: image AUROC", fontsize=9)
    line = fig.add_subplot(1, 2, 2)
    for category in dict.fromkeys(r["category"] for r in rows if r["dataset"] == dataset):
        mine = [r for r in rows if (r["dataset"], r["category"], r["subset"]) == (dataset, category, ALL)]
        line.semilogx([r["k"] for r in mine], [r["image_auroc"] for r in mine], marker="o", ms=3, label=category)
    line.axvline(fixed_k, color="0.6", ls=":", lw=1)
    line.set_xlabel("k")
    line.set_ylabel("image AUROC (whole test split)")
    line.legend(fontsize=7, ncol=2)
    return fig, series
