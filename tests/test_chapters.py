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
    for curve, numbers in r["resilience"].items():
        assert numbers["normal"] == pytest.approx(sigma**2, rel=0.15), curve
        assert numbers["anomalous"] == pytest.approx(delta**2 + sigma**2, rel=0.15), curve
        assert numbers["auroc"] > 0.95, curve
