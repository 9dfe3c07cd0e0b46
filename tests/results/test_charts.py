"""The charts of results (srlib.results.charts): the radar's spokes and series, the gallery's panels."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from srlib.results import charts  # noqa: E402
from srlib.run.sweeps import ALL, Gallery  # noqa: E402


def row(category, subset, k, auroc, dataset="d"):
    return {"dataset": dataset, "category": category, "subset": subset, "k": k, "image_auroc": auroc}


def test_spokes_are_the_categories_from_three_on_and_their_defects_below():
    three = [row(c, ALL, k, v) for c, base in (("a", 0.5), ("b", 0.6), ("c", 0.7))
             for k, v in ((1e-3, base), (1e-2, base + 0.1))]
    three.append(row("a", "scratch", 1e-3, 0.1))  # a defect subset: not a spoke when categories are
    three.append(row("z", ALL, 1e-3, 0.0, dataset="other"))  # another dataset: left out
    assert charts.radar_spokes(three, "d") == {"a": {1e-3: 0.5, 1e-2: 0.6}, "b": {1e-3: 0.6, 1e-2: 0.7},
                                               "c": {1e-3: 0.7, 1e-2: pytest.approx(0.8)}}
    two = [row("a", ALL, 1e-3, 0.5), row("a", "hole", 1e-3, 0.4), row("a", "cut", 1e-3, 0.3), row("b", "hole", 1e-3, 0.2)]
    assert charts.radar_spokes(two, "d") == {"a/hole": {1e-3: 0.4}, "a/cut": {1e-3: 0.3}, "b/hole": {1e-3: 0.2}}


def test_the_radar_draws_the_fixed_k_and_each_spokes_best():
    spokes = {"a": {1e-3: 0.7, 1e-2: 0.9}, "b": {1e-3: 0.8, 1e-4: 0.6}, "c": {1e-2: 0.5}}
    fig = plt.figure()
    series = charts.plot_radar(fig.add_subplot(projection="polar"), spokes, fixed_k=1e-3)
    assert series["best_k"] == [1e-2, 1e-3, 1e-2]
    assert series["best"] == [0.9, 0.8, 0.5]
    assert series["fixed"][:2] == [0.7, 0.8] and np.isnan(series["fixed"][2])  # c was not evaluated at 1e-3
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["best k per spoke (mean 0.733)", "k = 0.001 (mean 0.750)"]
    plt.close(fig)


def test_the_gallery_shows_each_image_at_the_k_nearest_in_log():
    ks = np.array([1e-4, 1e-3, 1e-2])
    images = np.zeros((3, 8, 8, 3), np.uint8)
    gallery = Gallery("d", "cat", ks, ["hole", "cut", "hole"], images, np.zeros((3, 8, 8), bool),
                      np.zeros((3, 3, 8, 8), np.float32), np.zeros(3), np.ones(3))
    fig = charts.plot_gallery([gallery], k=2e-3, per_category=2, per_row=2)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert titles == ["cat: hole, k = 0.001", "cat: cut, k = 0.001"]  # 2e-3 is nearer 1e-3 than 1e-2 in log
    plt.close(fig)
