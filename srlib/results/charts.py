"""Charts of results: the paper's Fig. 6 (a radar of image AUROC over k) and Fig. 4 (a gallery of anomaly maps).

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
