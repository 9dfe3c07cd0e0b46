"""The k sweep and the gallery: AUROCs per subset, closed-form maps over k, files round trip."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from srlib.data import folder_dataset
from srlib.errors import SrlibError
from srlib.run.evaluate import EvalResult
from srlib.method.sde import VESDE
from srlib.run.config import EvalConfig
from srlib.run.sweeps import (ALL, K_SWEEP, gallery_indices, k_sweep, make_gallery, read_galleries, read_k_sweeps,
                          sweep_rows, write_gallery, write_k_sweep)
from tiny_datasets import write_category


class ZeroScore(torch.nn.Module):
    """A score model that always answers 0: the restoration error is then the noise itself."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.sde = VESDE()

    def forward(self, x, k):
        return torch.zeros_like(x)


def fake_result(seed, labels, size=4):
    rng = np.random.default_rng(seed)
    labels = torch.tensor(labels)
    masks = torch.zeros(len(labels), 1, size, size)
    masks[labels == 1, :, : size // 2, : size // 2] = 1  # the top-left quarter, as tiny_datasets
    maps = torch.from_numpy(rng.random((len(labels), 1, size, size))).float() + masks * 0.3
    scores = maps.flatten(1).amax(1)
    return EvalResult(maps, masks, labels, scores, roc_auc_score(labels, scores),
                      roc_auc_score(masks.flatten(), maps.flatten()), rng.random(), 0.0)


def test_rows_give_aurocs_over_all_images_and_over_good_plus_each_defect():
    defects = ["good", "good", "crack", "hole", "crack", "good", "hole"]
    labels = [0, 0, 1, 1, 1, 0, 1]
    sweep = {1e-3: fake_result(0, labels), 1e-2: fake_result(1, labels)}
    rows = sweep_rows(sweep, defects, labels, "textures", "brick", n_draws=3)
    assert [(r["k"], r["subset"]) for r in rows] == [(1e-3, ALL), (1e-3, "crack"), (1e-3, "hole"),
                                                      (1e-2, ALL), (1e-2, "crack"), (1e-2, "hole")]
    for row in rows:
        result = sweep[row["k"]]
        keep = [i for i, d in enumerate(defects) if row["subset"] in (ALL, d) or d == "good"]
        assert row["image_auroc"] == pytest.approx(roc_auc_score(result.labels[keep], result.scores[keep]))
        if row["subset"] == ALL:
            assert row["pixel_auroc"] == pytest.approx(roc_auc_score(result.masks.flatten(), result.maps.flatten()))
            assert row["aupro"] == result.aupro
        else:
            assert row["pixel_auroc"] is None and row["aupro"] is None
        assert (row["dataset"], row["category"], row["n_draws"]) == ("textures", "brick", 3)


def test_the_sweep_file_round_trips_and_a_foreign_csv_is_refused(tmp_path):
    labels = [0, 1, 0, 1]
    rows = sweep_rows({3e-4: fake_result(2, labels)}, ["good", "x", "good", "x"], labels, "mvtec", "bottle", 1)
    (tmp_path / "a").mkdir()
    write_k_sweep(tmp_path / "a" / K_SWEEP, rows)
    assert read_k_sweeps(tmp_path) == rows
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / K_SWEEP).write_text("k,auroc\n0.1,0.5\n")
    with pytest.raises(SrlibError, match="not a k sweep"):
        read_k_sweeps(tmp_path)


def test_every_k_draws_the_same_noise():
    # With a zero score, the error is sigma_k^2 * mean_c(eps^2): the ratio between two k is exact
    # only if both draw the same eps.
    images = torch.rand(3, 3, 16, 16) * 2 - 1
    test = [{"image": im, "label": i % 2, "mask": torch.full((1, 16, 16), float(i % 2))} for i, im in enumerate(images)]
    sweep = k_sweep(ZeroScore(), test, ks=(1e-3, 1e-1), config=EvalConfig(n_draws=2, seed=4, batch_size=2))
    ratio = (VESDE().marginal_std(torch.tensor(1e-1)) / VESDE().marginal_std(torch.tensor(1e-3))) ** 2
    torch.testing.assert_close(sweep[1e-1].maps, sweep[1e-3].maps * ratio, rtol=1e-4, atol=0)


def test_gallery_indices_take_one_defect_type_after_another():
    labels = [0, 1, 1, 1, 0, 1, 1]
    defects = ["good", "b", "b", "a", "good", "a", "c"]
    assert gallery_indices(labels, defects, 3) == [1, 3, 6]  # first a, first b, first c
    assert gallery_indices(labels, defects, 5) == [1, 2, 3, 5, 6]
    assert gallery_indices(labels, defects, 10) == [1, 2, 3, 5, 6]
    assert gallery_indices([0, 0], ["good", "good"], 2) == []


def test_the_gallery_round_trips_with_maps_scaled_to_each_ks_range(tmp_path):
    root = tmp_path / "data"
    write_category(root, "widget", size=(16, 16), n_test_good=2, n_defect=2)
    test = folder_dataset("mvtec", root, "widget", "test", image_size=16, mask_size=16)
    sweep = {k: fake_result(i, test.labels, size=16) for i, k in enumerate((1e-4, 1e-3))}
    gallery = make_gallery(sweep, test, "textures", "widget", count=3, size=8)
    assert gallery.images.shape == (3, 8, 8, 3) and gallery.maps.shape == (2, 3, 8, 8)
    assert gallery.defects == ["crack", "crack", "scratch"]
    assert gallery.masks[:, :4, :4].all() and gallery.masks.sum() == 3 * 16
    for j, k in enumerate((1e-4, 1e-3)):
        low, high = np.quantile(sweep[k].maps.numpy(), [0.01, 0.99])
        assert (gallery.low[j], gallery.high[j]) == pytest.approx((low, high))
    assert gallery.maps.min() >= 0 and gallery.maps.max() <= 1
    path = tmp_path / "run" / "gallery.npz"
    path.parent.mkdir()
    write_gallery(path, gallery)
    (back,) = read_galleries(tmp_path)
    assert (back.dataset, back.category, back.defects) == ("textures", "widget", gallery.defects)
    np.testing.assert_array_equal(back.images, gallery.images)
    np.testing.assert_array_equal(back.masks, gallery.masks)
    np.testing.assert_allclose(back.maps, gallery.maps, atol=0.5 / 255 + 1e-6)  # 8-bit
    np.testing.assert_array_equal(back.ks, [1e-4, 1e-3])
