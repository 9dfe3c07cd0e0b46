"""Chapters 4-6 as the book builds them: the numbers they state, checked against the files and a second computation."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from srlib.run.config import CPU_PRESET
from srlib.data.digits import split_indices, upsample_digit
from srlib.run.sweeps import ALL, K_GRID, K_SWEEP

pytestmark = pytest.mark.slow

CH4, CH5, CH6 = "04_real_images_on_a_laptop", "05_training_on_mvtec", "06_results"


def pca_digit_auroc(normal, size, variance, kernel, seed=0):
    """The PCA baseline of chapter 4 written out with scikit-learn, numpy and scipy alone."""
    data = load_digits()
    train, test = split_indices(data.target, 0.3, seed)
    train = train[data.target[train] == normal]

    def images(rows):  # (n, 3, size, size) in [-1, 1], flattened
        pixels = np.stack([upsample_digit(data.images[r], size) for r in rows]).astype(np.float32) * 2 - 1
        return np.repeat(pixels[:, None], 3, axis=1).reshape(len(rows), -1).astype(np.float64)

    pca = PCA(n_components=variance, svd_solver="full").fit(images(train))
    x = images(test)
    error = ((x - pca.inverse_transform(pca.transform(x))) ** 2).reshape(len(test), 3, size, size).mean(axis=1)
    # Mean filter with zero padding counted in the mean, then the maximum of each map.
    smoothed = np.stack([ndimage.uniform_filter(e, size=kernel, mode="constant", cval=0.0) for e in error])
    return roc_auc_score(data.target[test] != normal, smoothed.reshape(len(test), -1).max(axis=1))


def test_chapter4_reports_every_digit_and_method(chapter_records):
    r = chapter_records(CH4)
    assert r["digits"] == list(range(10))
    methods = ["SPR k=0.001", "SPR k=0.1", "AE", "PCA"]
    assert list(r["digit_auroc"]) == methods
    for method in methods:
        assert len(r["digit_auroc"][method]) == 10
        assert all(0 <= a <= 1 for a in r["digit_auroc"][method])
    assert list(r["digit_seconds"]) == ["SPR", "AE", "PCA"]
    assert all(s > 0 for s in r["digit_seconds"]["SPR"] + r["digit_seconds"]["AE"])
    assert "16 px, 20 epochs of batch 16" in r["digit_budget"]


def test_chapter4_pca_on_digits_matches_an_independent_computation(chapter_records):
    r = chapter_records(CH4)
    for digit in (0, 7):
        # float32 maps in the chapter, float64 here: near-ties may swap a pair or two (1/26000 each).
        assert r["digit_auroc"]["PCA"][digit] == pytest.approx(pca_digit_auroc(digit, 16, 0.9, kernel=3), abs=2e-4)


def test_chapter4_reports_both_texture_categories_with_pixel_and_image_auroc(chapter_records):
    r = chapter_records(CH4)
    assert r["texture_categories"] == ["brick", "coin"]
    for category in ("brick", "coin"):
        for method, (image, pixel) in r["texture_auroc"][category].items():
            assert 0 <= image <= 1 and 0 <= pixel <= 1, (category, method)
    assert "64 px, 20 epochs" in r["texture_budget"]


@pytest.fixture(scope="module")
def chapter5_run(chapter_records):
    r = chapter_records(CH5)
    folder = Path(r["run_dir"])
    return r, folder, json.loads((folder / "result.json").read_text())


def test_chapter5_trains_the_cpu_preset_on_bundled_data_filed_as_textures(chapter5_run):
    r, folder, result = chapter5_run
    assert (r["dataset"], r["category"]) == ("textures", "coin")
    assert folder.parts[-2:] == ("textures", "coin")
    assert result["dataset"] == "textures" and result["config"]["preset"] == "cpu"
    assert r["epochs_run"] == CPU_PRESET["epochs"] == result["config"]["epochs"] == len(r["loss"])
    assert r["loss"][-1] < 0.5 * r["loss"][0]  # the DSM loss falls


def test_chapter5_result_file_agrees_with_the_maps_the_chapter_showed(chapter5_run):
    r, folder, result = chapter5_run
    # Two separate evaluations with the same seed: the sweep's and srlib evaluate's.
    assert result["image_auroc"] == pytest.approx(r["image_auroc"], abs=1e-12)
    assert result["pixel_auroc"] == pytest.approx(r["pixel_auroc"], abs=1e-12)
    assert (result["k"], result["n_draws"]) == (0.001, 3)
    with open(folder / K_SWEEP, newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["subset"] == ALL]
    assert [float(row["k"]) for row in rows] == sorted(K_GRID) == r["sweep_k"]
    assert [float(row["image_auroc"]) for row in rows] == pytest.approx(r["sweep_image_auroc"])
    for n in (1, 5):
        other = json.loads((folder / f"n_draws_{n}" / "result.json").read_text())
        assert other["n_draws"] == n and other["image_auroc"] == pytest.approx(r["n_draws_image_auroc"][str(n)])


def test_chapter6_tables_show_chapter5s_numbers_and_no_mvtec_result(chapter_records, chapter5_run):
    r6 = chapter_records(CH6)
    _, folder, result = chapter5_run
    assert r6["datasets"] == ["textures"] and r6["mvtec_categories_run"] == 0
    assert r6["n_results"] == 3  # N = 3, and N = 1 and 5 for Table 5
    assert r6["textures_image_auroc_coin"] == pytest.approx(100 * result["image_auroc"])
    assert r6["textures_pixel_auroc_coin"] == pytest.approx(100 * result["pixel_auroc"])
    assert r6["table4_average_paper"] == 97.7


def test_chapter6_radar_spokes_are_the_defect_types_at_the_papers_k(chapter_records, chapter5_run):
    r6 = chapter_records(CH6)
    _, folder, _ = chapter5_run
    with open(folder / K_SWEEP, newline="") as file:
        rows = list(csv.DictReader(file))
    defects = sorted({row["subset"] for row in rows} - {ALL})
    at_paper_k = {row["subset"]: float(row["image_auroc"]) for row in rows if float(row["k"]) == 0.001}
    best = {d: max(float(row["image_auroc"]) for row in rows if row["subset"] == d) for d in defects}
    radar = r6["radar"]["textures"]
    assert sorted(radar["fixed"]) == pytest.approx(sorted(at_paper_k[d] for d in defects))
    assert sorted(radar["best"]) == pytest.approx(sorted(best.values()))
    assert r6["gallery_categories"] == ["coin"] and r6["gallery_ks"] == sorted(K_GRID)
