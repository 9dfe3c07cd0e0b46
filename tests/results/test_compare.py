"""Chapter 4's generated verdicts: a lead only where the numbers and their spread show one."""

import pytest

from srlib.results.compare import format_mean_std, mean_std, verdict


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
