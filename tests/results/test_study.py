"""The k-range study's summary and its rule, on hand-made rows."""

import csv

import pytest

from srlib.results.study import best_k_means, choose, markdown_summary, mean_at, read_study

COLUMNS = ("category", "k_max", "k_draw", "epochs", "width", "seed", "split", "k",
           "image_auroc", "pixel_auroc", "aupro", "train_seconds")


def row(category, k_max, seed, split, k, image, draw="uniform", epochs=25, width=16):
    return dict(category=category, k_max=k_max, k_draw=draw, epochs=epochs, width=width, seed=seed, split=split,
                k=k, image_auroc=image, pixel_auroc=image / 2, aupro=image / 4, train_seconds=10.0)


@pytest.fixture
def rows(tmp_path):
    made = [
        row("a", 1.0, 0, "validation", 1e-3, 0.60), row("b", 1.0, 0, "validation", 1e-3, 0.70),
        row("a", 0.1, 0, "validation", 1e-3, 0.90), row("b", 0.1, 0, "validation", 1e-3, 0.86),
        row("a", 0.01, 0, "validation", 1e-3, 0.90), row("b", 0.01, 0, "validation", 1e-3, 0.87),
        row("a", 0.1, 0, "test", 1e-3, 0.80), row("a", 0.1, 0, "test", 1e-2, 0.95),
        row("a", 0.1, 1, "test", 1e-3, 0.70), row("a", 0.1, 1, "test", 1e-4, 0.75),
    ]
    path = tmp_path / "study.csv"
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, COLUMNS)
        writer.writeheader()
        writer.writerows(made)
    return read_study(path)


def test_rows_read_back_as_numbers(rows):
    assert rows[0]["k_max"] == 1.0 and rows[0]["seed"] == 0 and rows[0]["image_auroc"] == 0.6


def test_the_rule_takes_the_widest_range_among_the_near_best(rows):
    # Validation means: k_max 1 -> 0.65, 0.1 -> 0.88, 0.01 -> 0.885. 0.1 lies within 0.01 of the best: wider wins.
    assert mean_at(rows, (0.01, "uniform", 25, 16), "validation") == pytest.approx(0.885)
    assert choose(rows) == (0.1, "uniform", 25, 16)
    # Test rows never enter the rule: spoil them and nothing changes.
    spoiled = [dict(r, image_auroc=1.0 - r["image_auroc"]) if r["split"] == "test" else r for r in rows]
    assert choose(spoiled) == choose(rows)


def test_the_best_k_is_taken_per_seed(rows):
    best = best_k_means(rows, (0.1, "uniform", 25, 16), ["a"])
    assert best["image_auroc"] == pytest.approx((0.95 + 0.75) / 2)
    assert best["aupro"] == pytest.approx((0.95 + 0.75) / 8)
    assert best["k"] == pytest.approx((1e-2 * 1e-4) ** 0.5)


def test_the_summary_has_a_row_per_recipe(rows):
    text = markdown_summary(rows, ["a", "b"])
    assert text.count("\n") == 1 + 3
    assert "| 0.1 | uniform | 25 | 16 | 2 | 0.880 | 0.750 / 0.375 / 0.188 |" in text


def test_the_rule_keeps_to_the_budget(rows):
    # A longer run that wins the validation is reported but not chosen under the book's budget.
    longer = [dict(r, epochs=100, image_auroc=0.99) for r in rows if r["split"] == "validation" and r["k_max"] == 1.0]
    assert choose(rows + longer, budget=25 * 16**2) == (0.1, "uniform", 25, 16)
    assert choose(rows + longer, budget=None) == (1.0, "uniform", 100, 16)
