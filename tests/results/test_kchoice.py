"""The default criterion's measurement and its rule (srlib.results.kchoice), on hand-made rows."""

import pytest

from srlib.results.kchoice import choose, markdown_table, means, per_category, per_run, read_rows, write_rows

KS = (1e-4, 1e-3, 1e-2)


def run(split, category, seed, images, chosen):
    """A sweep at KS with image AUROCs ``images`` (pixel = image / 2, AUPRO = image / 4) and each criterion's k."""
    common = dict(split=split, category=category, seed=seed)
    metric = dict(zip(KS, images))
    rows = [dict(common, method="sweep", k=k, image_auroc=v, pixel_auroc=v / 2, aupro=v / 4, seconds=2.0)
            for k, v in metric.items()]
    rows += [dict(common, method=c, k=k, image_auroc=metric[k], pixel_auroc=metric[k] / 2, aupro=metric[k] / 4,
                  seconds=30.0) for c, k in chosen.items()]
    return rows


@pytest.fixture
def rows():
    made = []
    # Validation: category a, two seeds; category b, one seed.
    made += run("validation", "a", 0, (0.9, 0.7, 0.5), dict(pseudo=1e-4, uniformity=1e-2, dsm=1e-3))
    made += run("validation", "a", 1, (0.8, 0.6, 1.0), dict(pseudo=1e-4, uniformity=1e-2, dsm=1e-2))
    made += run("validation", "b", 0, (0.6, 0.8, 0.4), dict(pseudo=1e-3, uniformity=1e-4, dsm=1e-4))
    made += run("test", "a", 0, (0.1, 0.2, 0.3), dict(pseudo=1e-4, uniformity=1e-2, dsm=1e-2))
    return made


def test_rows_round_trip_exactly(rows, tmp_path):
    write_rows(tmp_path / "k.csv", rows)
    assert read_rows(tmp_path / "k.csv") == rows


def test_fixed_and_oracle_come_from_the_sweeps(rows):
    runs = per_run(rows, "validation")
    assert runs["fixed"]["a", 1] == {"k": 1e-3, "image_auroc": 0.6, "pixel_auroc": 0.3, "aupro": 0.15}
    assert runs["oracle"]["a", 1] == {"k": 1e-2, "image_auroc": 1.0, "pixel_auroc": 0.5, "aupro": 0.25}
    assert runs["oracle"]["b", 0]["k"] == 1e-3


def test_means_are_over_seeds_then_categories(rows):
    cats = per_category(rows, "validation")
    assert cats["pseudo"]["a"]["image_auroc"] == pytest.approx((0.9 + 0.8) / 2)
    assert cats["pseudo"]["a"]["ks"] == [1e-4, 1e-4]
    summary = means(rows, "validation")
    # pseudo: a (0.9, 0.8) -> 0.85, b 0.8 -> mean 0.825; uniformity: a (0.5, 1.0) -> 0.75, b 0.6 -> 0.675;
    # dsm: a (0.7, 1.0) -> 0.85, b 0.6 -> 0.725; fixed: a 0.65, b 0.8 -> 0.725; oracle: a 0.95, b 0.8 -> 0.875.
    assert {m: round(s["image_auroc"], 6) for m, s in summary.items()} == \
        {"fixed": 0.725, "oracle": 0.875, "pseudo": 0.825, "uniformity": 0.675, "dsm": 0.725}
    assert summary["pseudo"]["aupro"] == pytest.approx(0.825 / 4)
    assert summary["dsm"]["worst"] == pytest.approx(0.6)


def test_the_rule_reads_validation_rows_only(rows):
    assert choose(rows) == "pseudo"
    spoiled = [dict(r, image_auroc=1 - r["image_auroc"]) if r["split"] == "test" else r for r in rows]
    assert choose(spoiled) == "pseudo"


def test_near_ties_go_to_the_best_worst_category(rows):
    lifted = [dict(r, image_auroc=0.79) if (r["method"], r["category"]) == ("dsm", "b") else r for r in rows]
    assert choose(lifted) == "pseudo"  # 0.82 vs 0.825: tied; worst 0.79 vs 0.80
    lowered = [dict(r, image_auroc=0.78) if (r["method"], r["category"]) == ("pseudo", "b") else r for r in lifted]
    # pseudo 0.815, dsm 0.82: tied; worst 0.78 vs 0.79: dsm, the better worst category.
    assert choose(lowered) == "dsm"
    far = [dict(r, image_auroc=0.70) if (r["method"], r["category"]) == ("dsm", "b") else r for r in lowered]
    # dsm 0.775 is more than 0.01 below pseudo 0.815: pseudo, though its worst category is lower.
    assert choose(far) == "pseudo"


def test_the_table_has_a_row_per_method(rows):
    text = markdown_table(rows, "validation")
    assert text.count("\n") == 1 + 5
    assert "| pseudo | 0.850 (0.0001, 0.0001) | 0.800 (0.001) | 0.825 / 0.41" in text
    assert "| oracle | 0.950 (0.0001, 0.01) | 0.800 (0.001) |" in text


def test_the_cost_counts_each_choice_once_and_every_k_of_the_sweeps(rows):
    from srlib.results.kchoice import cpu_minutes

    # Validation: 3 runs (a0, a1, b0), each 30 s to choose (shared by its 3 criteria) and 3 k x 2 s of sweep.
    assert cpu_minutes(rows, "validation") == pytest.approx(3 * (30 + 3 * 2) / 60)


def test_the_sentence_says_the_means_and_the_pick(rows):
    from srlib.results.kchoice import describe_choice

    text = describe_choice(rows, "pseudo")
    # Worked out above: pseudo 0.825, dsm 0.725, uniformity 0.675; fixed 0.725, oracle 0.875; pseudo 0.1 ahead.
    assert "(2 categories x 2 seeds)" in text
    assert "pseudo 0.825, dsm 0.725, uniformity 0.675; at k = 0.001 it is 0.725" in text
    assert "best k on that draw's labels 0.875" in text
    # (0.825 - 0.725) / (0.875 - 0.725) = 2/3.
    assert "The rule picks pseudo (the next criterion is 0.100 below" in text and "its choices recover 67 % of the best k's gain" in text
    assert text.endswith("It is the default of `--k auto`.")
    assert "the library no longer follows its measurement" in describe_choice(rows, "dsm")
