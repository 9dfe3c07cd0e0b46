"""Chapter 7's arithmetic (srlib.results.kcompare) on two made-up categories, against numbers worked out by hand."""

import pytest

from srlib.method.kselect import comparison_rows
from srlib.results import kcompare

GRID = (1e-4, 1e-3, 1e-2)


def sweep(image, pixel, aupro):
    return {k: {"image_auroc": i, "pixel_auroc": p, "aupro": a} for k, i, p, a in zip(GRID, image, pixel, aupro)}


# a: the fixed k (1e-3) is best on every metric; b: 1e-2 is best on image AUROC and AUPRO, 1e-4 on pixel AUROC.
SWEEPS = {"textures/a": sweep((0.8, 0.9, 0.7), (0.95, 0.96, 0.90), (0.6, 0.7, 0.5)),
          "textures/b": sweep((0.5, 0.6, 1.0), (0.90, 0.80, 0.85), (0.4, 0.5, 0.8))}
# Each criterion's choice with two seeds.
CHOSEN = {"textures/a": {"pseudo": [1e-3, 1e-2], "uniformity": [1e-4, 1e-4]},
          "textures/b": {"pseudo": [1e-2, 1e-2], "uniformity": [1e-3, 1e-4]}}
COMPARISONS = {key: {"sweep": SWEEPS[key], "choices": [], "rows": comparison_rows(SWEEPS[key], CHOSEN[key], 1e-3)}
               for key in SWEEPS}


def test_summary_is_the_mean_over_categories_at_the_fixed_k_the_choices_and_the_oracle():
    summary = kcompare.summarize(COMPARISONS)
    image = summary["pseudo"]["image_auroc"]
    # fixed: a 0.9, b 0.6; pseudo: a (0.9 + 0.7) / 2 = 0.8, b 1.0; oracle: a 0.9, b 1.0.
    assert (image["fixed"], image["auto"], image["oracle"]) == pytest.approx((0.75, 0.9, 0.95))
    assert image["share"] == pytest.approx((0.9 - 0.75) / (0.95 - 0.75))
    pixel = summary["uniformity"]["pixel_auroc"]
    # fixed: a 0.96, b 0.80; uniformity: a 0.95, b (0.80 + 0.90) / 2 = 0.85; oracle: a 0.96, b 0.90.
    assert (pixel["fixed"], pixel["auto"], pixel["oracle"]) == pytest.approx((0.88, 0.90, 0.93))
    assert pixel["share"] == pytest.approx(0.02 / 0.05)
    assert kcompare.summarize({}) == {}


def test_the_share_is_none_when_the_oracle_gains_nothing():
    only_a = {"textures/a": COMPARISONS["textures/a"]}
    assert kcompare.summarize(only_a)["pseudo"]["image_auroc"]["share"] is None


def test_grid_ends_count_every_seeds_choice_at_the_smallest_or_largest_k():
    # pseudo: 1e-3, 1e-2, 1e-2, 1e-2 -> 3 of 4 at an end; uniformity: 1e-4, 1e-4, 1e-3, 1e-4 -> 3 of 4.
    assert kcompare.grid_ends(COMPARISONS) == {"pseudo": [3, 4], "uniformity": [3, 4]}
    assert kcompare.grid_ends({}) == {}


def test_the_default_agrees_when_its_choices_score_highest():
    summary = kcompare.summarize(COMPARISONS)
    means, agrees = kcompare.default_agrees(summary, "pseudo")
    # uniformity's image AUROC: a 0.8, b (0.6 + 0.5) / 2 = 0.55 -> 0.675, below pseudo's 0.9.
    assert means == pytest.approx({"pseudo": 0.9, "uniformity": 0.675}) and agrees
    assert kcompare.default_agrees(summary, "uniformity")[1] is False


def test_the_table_has_a_row_per_method_in_percent_with_the_shares():
    rows = kcompare.table(COMPARISONS)
    assert len(rows) == 2 * 4 and all(len(row) == len(kcompare.TABLE_HEADER) for row in rows)
    assert rows[0] == ["textures/a", "k = 0.001 [0.001]", "90.0", "96.0", "70.0", "", "", ""]
    b_pseudo = rows[5]
    assert b_pseudo[:5] == ["textures/b", "auto (pseudo) [0.01, 0.01]", "100.0", "85.0", "80.0"]
    # shares: image (1.0 - 0.6) / (1.0 - 0.6) = 1; pixel (0.85 - 0.8) / (0.9 - 0.8) = 0.5; AUPRO (0.8 - 0.5) / 0.3 = 1.
    assert b_pseudo[5:] == ["+1.00", "+0.50", "+1.00"]


class Choice:
    """What dsm_rows reads of a srlib.run.kselect.KChoice: the candidates' DSM loss ratios."""

    def __init__(self, ratios):
        self.candidates = {k: {"dsm_ratio": r} for k, r in zip(GRID, ratios)}


def test_dsm_rows_average_the_ratio_over_seeds_and_set_it_beside_the_test():
    chosen = {"textures/a": {"dsm": [1e-2, 1e-3]}, "textures/b": {"dsm": [1e-2, 1e-2]}}
    ratios = {"textures/a": [(1.5, 1.2, 1.1), (1.5, 1.0, 1.3)], "textures/b": [(0.9, 0.8, 0.6), (None, 0.6, 0.4)]}
    comparisons = {key: {"sweep": SWEEPS[key], "choices": [Choice(r) for r in ratios[key]],
                         "rows": comparison_rows(SWEEPS[key], chosen[key], 1e-3)} for key in SWEEPS}
    a, b = kcompare.dsm_rows(comparisons)
    # a: means 1.5, 1.1, 1.2 -> lowest 1.1 at 1e-3, the image AUROC's best k too; dsm's k: 1e-2 (0.7), 1e-3 (0.9).
    assert a["ratios"] == pytest.approx({1e-4: 1.5, 1e-3: 1.1, 1e-2: 1.2})
    assert (a["lowest_k"], a["best_k"], a["at_best"], a["best_auroc"]) == (1e-3, 1e-3, pytest.approx(1.1), 0.9)
    assert a["image_auroc"] == pytest.approx(0.8)
    # b: 1e-4 has a None (a seed whose reference removed all the noise): left out; lowest 0.5 at 1e-2.
    assert b["ratios"] == pytest.approx({1e-3: 0.7, 1e-2: 0.5}) and b["lowest_k"] == 1e-2 and b["image_auroc"] == 1.0
    assert kcompare.dsm_table([a])[0] == ["textures/a", "0.01, 0.001", "80.0", "1.10 [0.001]", "1.10", "0.001", "90.0"]
    text = kcompare.describe_dsm([a, b])
    assert "below the Gaussian's at some k in 1 of 2 categories (b); in the others it is at best 1.10 to 1.10" in text
    # Choices against the best k: a 1e-2 > 1e-3, a 1e-3 = 1e-3, b 1e-2 = 1e-2 twice.
    assert "larger k than the labels' best in 1 of 4 choices and the same k in 3" in text
    assert "more than 0.05 of image AUROC to the labels' best k in a: mean 0.900 at its choices against 0.950" in text


def test_a_category_without_any_ratio_is_shown_empty():
    chosen = {"dsm": [1e-3]}
    comparison = {"sweep": SWEEPS["textures/a"], "choices": [Choice((None, None, None))],
                  "rows": comparison_rows(SWEEPS["textures/a"], chosen, 1e-3)}
    (row,) = kcompare.dsm_rows({"textures/a": comparison})
    assert row["ratios"] == {} and row["lowest"] is None and row["at_best"] is None
    assert kcompare.dsm_table([row])[0][3:5] == ["", ""]
    assert "at some k in 0 of 1 categories (none)" in kcompare.describe_dsm([row])
