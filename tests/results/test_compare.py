"""Chapter 4's generated verdicts: a lead only where the numbers and their spread show one."""

import pytest

from srlib.results.compare import against_projector, format_mean_std, leads, mean_std, verdict


def test_mean_and_population_spread_by_hand():
    assert mean_std([0.8, 0.9, 1.0]) == pytest.approx((0.9, (0.02 / 3) ** 0.5))
    assert format_mean_std([0.5]) == "0.500" and format_mean_std([0.8, 1.0]) == "0.900 ± 0.100"


def test_a_lead_beyond_twice_the_combined_spread_is_claimed():
    # Gap 0.10; spreads 0.01 and 0 -> 2 * 0.01 = 0.02 < 0.10.
    leader, sentence = verdict({"SPR": [0.89, 0.91], "AE": [0.80, 0.80], "PCA": [0.5]})
    assert leader == "SPR" and sentence.startswith("SPR leads (0.900 against AE's 0.800)")


def test_a_lead_within_the_spread_or_below_the_minimum_gap_is_not():
    # Gap 0.03; combined spread hypot(0.02, 0.01) = 0.0224 -> 2x = 0.045 > 0.03.
    assert verdict({"SPR": [0.88, 0.92], "AE": [0.86, 0.88]})[0] is None
    # Exact values, gap 0.005 < the minimum 0.01.
    leader, sentence = verdict({"AE": [0.905], "PCA": [0.9]})
    assert leader is None and sentence.startswith("no clear leader: AE 0.905 and PCA 0.900")


def test_leads_counts_each_category_and_metrics_clear_leader():
    results = {
        # a: SPR 0.9 vs AE 0.7 (gap 0.2, spreads 0): SPR leads; pixel: AE 0.80 vs SPR 0.795, gap below 0.01: none.
        "a": {"SPR": {"image_auroc": [0.9, 0.9], "pixel_auroc": [0.795]}, "AE": {"image_auroc": [0.7], "pixel_auroc": [0.8]},
              "PCA": {"image_auroc": [0.5], "pixel_auroc": [0.6]}},
        # b: PCA 0.95 vs SPR 0.83 +- 0.03 (gap 0.12 > 2 * 0.03): PCA leads; pixel: AE 0.9 vs 0.6: AE leads.
        "b": {"SPR": {"image_auroc": [0.8, 0.86], "pixel_auroc": [0.6]}, "AE": {"image_auroc": [0.6], "pixel_auroc": [0.9]},
              "PCA": {"image_auroc": [0.95], "pixel_auroc": [0.5]}},
    }
    summary, wins, overall = leads(results, {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC"})
    assert {key: v["leader"] for key, v in summary.items()} == {
        "a image_auroc": "SPR", "a pixel_auroc": None, "b image_auroc": "PCA", "b pixel_auroc": "AE"}
    assert summary["a image_auroc"]["sentence"] == "a, image AUROC: SPR leads (0.900 against AE's 0.700)."
    assert wins == {"SPR": 1, "AE": 1, "PCA": 1}
    assert overall == ("Over 2 categories and 2 metrics (4 comparisons): SPR leads in 1, AE leads in 1, "
                       "PCA leads in 1; no clear leader in 1.")


def test_both_below_poor_say_neither_separates_and_name_what_lies_closer_than_good_images():
    sentence = against_projector("grass", 0.52, 0.560, {"hole": 0.39, "scratch": 0.78, "stain": 0.46})
    assert sentence.startswith("grass: the exact projector onto the training patches reaches an image AUROC of "
                               "0.560, the learned score 0.520. Neither separates")
    assert "Of the defect types, hole (0.39) and stain (0.46) lie closer" in sentence
    assert sentence.endswith("they look more like grass than the good images do.")


def test_a_learned_score_ahead_reaches_beyond_its_training_patches():
    sentence = against_projector("cup", 0.985, 0.665, {"hole": 0.60, "stain": 0.70})
    assert "The network finds more than the projector" in sentence and "closer" not in sentence
    # One defect type below one half: the singular.
    assert "Of the defect types, hole (0.45) lies closer" in against_projector("cup", 0.985, 0.665, {"hole": 0.45, "stain": 0.70})


def test_a_projector_ahead_says_a_better_learned_score_could_find_more():
    assert "a better-learned score could find more" in against_projector("cup", 0.70, 0.95, {"hole": 1.0})
    # Within MIN_GAP (0.01): about the same.
    assert against_projector("brick", 0.945, 0.95, {"hole": 1.0}).endswith("finds about what the projector does.")
    # The learned score poor but the projector not: the projector is ahead, not "neither".
    assert "Neither" not in against_projector("brick", 0.70, 0.85, {"hole": 1.0})
