"""The numbers each chapter states, read from its executed notebook and checked against the theory."""

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_chapter1_eq2_and_the_von_mises_closed_form_hold(chapter_records):
    r = chapter_records("01_score_is_a_projector")
    assert r["tweedie_check_circle"] < 1e-6 and r["tweedie_check_wave"] < 1e-6
    assert r["von_mises_max_difference"] < 1e-8


def test_chapter1_projection_gap_shrinks_like_sigma_squared(chapter_records):
    r = chapter_records("01_score_is_a_projector")
    sigmas = np.array(r["gap_sigmas"])
    for curve in ("circle", "wave"):
        gaps = np.array(r[f"gap_{curve}"])
        assert np.all(np.diff(gaps) > 0), f"{curve}: the gap must grow with sigma"
        assert np.all(gaps < sigmas), f"{curve}: the gap must stay below the noise"
    # Circle: mean of sigma^2 / (2 r) over perturbed points, r ~ 1 at small sigma.
    small = sigmas <= 0.05
    np.testing.assert_allclose(np.array(r["gap_circle"])[small], sigmas[small] ** 2 / 2, rtol=0.05)
    assert r["gap_slope_circle"] == pytest.approx(2.0, abs=0.1)
    assert r["gap_slope_wave"] == pytest.approx(2.0, abs=0.2)
    assert r["curvature_law_ratio"] == pytest.approx(1.0, abs=0.1)


def test_chapter1_normal_points_keep_the_tangential_noise_anomalies_their_distance(chapter_records):
    r = chapter_records("01_score_is_a_projector")
    sigma, delta = r["sigma"], r["anomaly_distance"]
    assert sorted(r["resilience"]) == ["circle", "wave"]
    for curve, numbers in r["resilience"].items():
        assert numbers["normal"] == pytest.approx(sigma**2, rel=0.15), curve
        assert numbers["anomalous"] == pytest.approx(delta**2 + sigma**2, rel=0.15), curve
        assert numbers["auroc"] > 0.95, curve


def test_chapter2_the_network_approaches_the_optimum_of_its_loss(chapter_records):
    r = chapter_records("02_learning_the_score")
    # The exact score minimises the DSM loss: on one Monte Carlo sample the network
    # can undercut it only by sampling noise, and should end close above it.
    assert r["loss_learned"] > 0.98 * r["loss_exact"]
    assert r["loss_learned"] < 1.1 * r["loss_exact"]
    assert r["loss_gap_percent"] == pytest.approx(100 * (r["loss_learned"] / r["loss_exact"] - 1))


def test_chapter2_learned_field_is_close_to_the_exact_one_except_at_the_smallest_k(chapter_records):
    r = chapter_records("02_learning_the_score")
    errors = dict(zip(r["rel_error_k"], r["rel_error"]))
    assert r["rel_error_at_k_eval"] == errors[r["k_eval"]] < 0.15
    assert all(e < 0.05 for k, e in errors.items() if k >= 0.03)
    assert errors[0.001] > 0.3  # where training draws are scarce the network is poor
    # share of k ~ U(1e-5, 1) with sigma_k < 0.05: sigma_k^2 ~ k for small k
    assert r["share_below_0_05"] == pytest.approx(0.05**2, rel=0.05)


def test_chapter2_restoration_error_detects_anomalies(chapter_records):
    r = chapter_records("02_learning_the_score")
    assert r["auroc_learned"] > 0.9
    assert r["auroc_exact"] > 0.9
    assert r["auroc_learned"] > r["auroc_exact"] - 0.05
    by_k = r["auroc_by_k"]
    assert max(by_k["learned"]) > by_k["learned"][-1] + 0.3  # large k blurs everything
    assert by_k["exact"][-1] < 0.6


def test_chapter3_noise_norms_concentrate_as_the_chi_law_says(chapter_records):
    r = chapter_records("03_high_dimensions")
    dims = np.array(r["annulus_dims"])
    spread, spread_chi = np.array(r["annulus_spread"]), np.array(r["annulus_spread_chi"])
    np.testing.assert_allclose(spread, spread_chi, rtol=0.15)
    np.testing.assert_allclose(spread_chi[dims >= 128], 1 / np.sqrt(2 * dims[dims >= 128]), rtol=0.01)
    assert np.all(np.diff(spread) < 0)
    means = np.array(r["annulus_mean_over_sqrt_d"])
    np.testing.assert_allclose(means[dims >= 1024], 1.0, atol=0.005)
    assert r["largest_dim"] == 192 * 192 * 3


def test_chapter3_shells_of_neighbouring_noise_levels_separate_with_dimension(chapter_records):
    r = chapter_records("03_high_dimensions")
    overlap = dict(zip(r["shell_overlap_dims"], r["shell_overlap"]))
    assert overlap[2] > 0.5
    assert overlap[192 * 192 * 3] < 1e-6
    assert np.all(np.diff(r["shell_overlap"]) <= 1e-12)


def test_chapter3_schedule_matches_the_authors_value(chapter_records):
    r = chapter_records("03_high_dimensions")
    assert r["sigma"] == 25.0
    assert r["sigma_k_paper"] == pytest.approx(0.031674, abs=5e-7)
    assert r["sigma_k_top"] == pytest.approx(np.sqrt((25.0**2 - 1) / (2 * np.log(25.0))))
    assert r["shell_radius_paper"] == pytest.approx(r["sigma_k_paper"] * np.sqrt(192 * 192 * 3))


def test_chapter3_the_training_score_projects_only_in_an_effective_region_of_k(chapter_records):
    r = chapter_records("03_high_dimensions")
    gaps = np.array(r["region_gap"])
    best = int(np.argmin(gaps))
    assert 0 < best < len(gaps) - 1
    assert gaps[best] < gaps[0] / 3 and gaps[best] < gaps[-1] / 3
    # Smallest k: restored to the nearest training point, uniformly within half a spacing.
    assert gaps[0] == pytest.approx(r["train_spacing"] / 4, rel=0.1)


def test_chapter3_training_range_numbers_are_the_closed_forms_and_the_study(chapter_records):
    """Where the steps go (closed form, worked by hand) and the study's sentences (recomputed from its CSV)."""
    import csv
    from pathlib import Path

    from srlib.run.config import TrainConfig

    r = chapter_records("03_high_dimensions")
    assert r["share_below_paper_k"] == pytest.approx(100 * (1e-3 - 1e-5) / (1 - 1e-5))
    cpu = TrainConfig.preset_for("cpu", "mvtec", ".", "any")
    assert r["cpu_share_below_tenth"] == pytest.approx(100 * min(1.0, (0.1 - 1e-5) / (cpu.k_max - 1e-5)))
    # The Gaussian's loss falls with k, so small k holds more of the objective than of the steps.
    assert r["objective_share_paper"] > r["share_below_paper_k"]
    with open(Path(__file__).parents[2] / "notebooks" / "weights" / "k_range_study.csv", newline="") as file:
        rows = [row for row in csv.DictReader(file) if float(row["k"]) == 1e-3]

    def auroc(split, k_max, batch):  # rows written before batch_size was a column trained in batches of 16
        return [float(row["image_auroc"]) for row in rows if row["split"] == split and float(row["k_max"]) == k_max
                and row["k_draw"] == cpu.k_draw and int(row["epochs"]) == cpu.epochs
                and int(row["width"]) == cpu.width and int(row["batch_size"] or 16) == batch]

    assert r["study_paper_range_auroc"] == pytest.approx(np.mean(auroc("test", 1.0, 16)))
    assert r["study_chosen_auroc"] == pytest.approx(np.mean(auroc("test", cpu.k_max, cpu.batch_size)))
    assert r["study_chosen_batch"] == cpu.batch_size
    assert r["study_chosen_validation"] == pytest.approx(np.mean(auroc("validation", cpu.k_max, cpu.batch_size)))
    assert r["study_batch16_validation"] == pytest.approx(np.mean(auroc("validation", cpu.k_max, 16)))
    assert r["cpu_preset_is_chosen"] == "is"
