"""The k-range study's summary and its rule, on hand-made rows."""

import csv

import pytest

from srlib.results.study import best_k_means, choose, cost, markdown_summary, mean_at, read_study, recipe_name

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
    assert mean_at(rows, (0.01, "uniform", 25, 16, 16), "validation") == pytest.approx(0.885)
    assert choose(rows) == (0.1, "uniform", 25, 16, 16)
    # Test rows never enter the rule: spoil them and nothing changes.
    spoiled = [dict(r, image_auroc=1.0 - r["image_auroc"]) if r["split"] == "test" else r for r in rows]
    assert choose(spoiled) == choose(rows)


def test_the_best_k_is_taken_per_seed(rows):
    best = best_k_means(rows, (0.1, "uniform", 25, 16, 16), ["a"])
    assert best["image_auroc"] == pytest.approx((0.95 + 0.75) / 2)
    assert best["aupro"] == pytest.approx((0.95 + 0.75) / 8)
    assert best["k"] == pytest.approx((1e-2 * 1e-4) ** 0.5)


def test_the_summary_has_a_row_per_recipe(rows):
    text = markdown_summary(rows, ["a", "b"])
    assert text.count("\n") == 1 + 3
    assert "| 0.1 | uniform | 25 | 16 | 16 | 2 | 0.880 | 0.750 / 0.375 / 0.188 |" in text


def test_rows_without_a_batch_column_read_as_the_cpu_presets_batch(rows, tmp_path):
    # The fixture's CSV has no batch_size column (as the study's rows from before it was studied).
    assert {r["batch_size"] for r in rows} == {16}
    smaller = [dict(r, batch_size=4) for r in rows[:2]]
    path = tmp_path / "with_batch.csv"
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, (*COLUMNS, "batch_size"))
        writer.writeheader()
        writer.writerows(smaller)
    assert [r["batch_size"] for r in read_study(path)] == [4, 4]
    assert recipe_name((0.03, "uniform", 25, 16, 4)) == "k ~ U(1e-5, 0.03), 25 epochs, width 16, batch 4"


def test_a_smaller_batch_costs_the_same_and_competes_on_validation(rows):
    # Batch 4 at k_max 0.1: the same images seen (cost), validation mean 0.885 against batch 16's 0.88 and
    # 0.01's 0.885, all tied within 0.01: the widest range wins, at k_max 0.1 both cost the same, then the larger
    # batch. Lift batch 4 to 0.905 and it is alone at the top.
    smaller = [dict(r, batch_size=4, image_auroc=r["image_auroc"] + 0.005) for r in rows
               if r["split"] == "validation" and r["k_max"] == 0.1]
    assert cost((0.1, "uniform", 25, 16, 4)) == cost((0.1, "uniform", 25, 16, 16))
    assert choose(rows + smaller) == (0.1, "uniform", 25, 16, 16)
    lifted = [dict(r, image_auroc=r["image_auroc"] + 0.02) for r in smaller]
    assert choose(rows + lifted) == (0.1, "uniform", 25, 16, 4)


def test_the_rule_keeps_to_the_budget(rows):
    # A longer run that wins the validation is reported but not chosen under the book's budget.
    longer = [dict(r, epochs=100, image_auroc=0.99) for r in rows if r["split"] == "validation" and r["k_max"] == 1.0]
    assert choose(rows + longer, budget=25 * 16**2) == (0.1, "uniform", 25, 16, 16)
    assert choose(rows + longer, budget=None) == (1.0, "uniform", 100, 16, 16)
