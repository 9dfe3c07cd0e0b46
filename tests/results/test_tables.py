"""Result tables beside the paper: hand-worked cases, formats, bad files."""

import csv
import io
import json
from html.parser import HTMLParser

import pytest

from srlib.results import paper
from srlib.errors import SrlibError
from srlib.results.tables import (COLUMNS, NOT_RUN, Comparison, Row, ablation_comparison, all_comparisons,
                          load_results, other_comparisons, paper_comparison, read_result, write_tables)

CPU = {"preset": "cpu", "epochs": 5, "batch_size": 16, "image_size": 64, "width": 16}
CPU_NOTE = "preset cpu; epochs 5 (paper 3000); image size 64 (paper 192); width 16 (paper 64)"
PAPER_RUN = {"preset": "paper", "epochs": 3000, "batch_size": 16, "image_size": 192, "width": 64}


def write_result(folder, name, dataset, category, image, pixel, k=0.001, n_draws=3, config=PAPER_RUN, **extra):
    record = {"dataset": dataset, "category": category, "image_auroc": image, "pixel_auroc": pixel,
              "aupro": None, "k": k, "n_draws": n_draws, "config": config, "srlib_version": "0.1.0", **extra}
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def by_category(comparison):
    return {row.category: row.cells() for row in comparison.rows}


def test_hand_worked_mvtec_cells_and_bundled_data_kept_apart(tmp_path):
    write_result(tmp_path, "mvtec/bottle.json", "mvtec", "bottle", 0.9734, 0.95)
    write_result(tmp_path, "mvtec/carpet.json", "MVTec", "carpet", 0.5, None, config=CPU)
    write_result(tmp_path, "bundled/brick.json", "textures", "brick", 0.8, 0.7, config=CPU, extra_key=[1, 2])
    results = load_results(tmp_path)
    assert [r.category for r in results] == ["brick", "bottle", "carpet"]  # path order

    table4 = by_category(paper_comparison(4, results))
    # paper 100.0, ours 97.34 -> shown 97.3, difference 97.3 - 100.0
    assert table4["bottle"] == ["bottle", "100.0", "97.3", "-2.7", "preset paper"]
    assert table4["carpet"] == ["carpet", "91.7", "50.0", "-41.7", CPU_NOTE]
    assert table4["screw"] == ["screw", "98.6", "", "", NOT_RUN]
    assert table4["average"] == ["average", "97.7", "", "", "2 of 15 categories run"]
    assert list(table4) == [*paper.DATASETS["mvtec"].categories, "average"]

    table1 = by_category(paper_comparison(1, results))
    assert table1["bottle"][1:4] == ["95.9", "95.0", "-0.9"]
    assert table1["carpet"][2:4] == ["", ""] and table1["carpet"][4].startswith("no pixel_auroc in carpet.json")

    # The bundled category appears in no paper table, only in its own, labelled.
    for comparison in [paper_comparison(n, results) for n in paper.TABLES] + [ablation_comparison(results)]:
        assert "brick" not in by_category(comparison)
    others = other_comparisons(results)
    assert [c.name for c in others] == ["textures_image_auroc", "textures_pixel_auroc"]
    assert "not one of the paper's benchmarks" in others[0].title
    assert by_category(others[0])["brick"] == ["brick", "", "80.0", "", CPU_NOTE]
    assert by_category(others[1])["brick"][2] == "70.0"
    assert len(all_comparisons(results)) == 4 + 1 + 2



def test_full_table_average_and_difference(tmp_path):
    # Every category exactly one point below the paper: so is the average.
    ours = paper.TABLES[4].ours.values
    for category, value in ours.items():
        write_result(tmp_path, f"{category}.json", "mvtec", category, (value - 1.0) / 100, 0.9)
    rows = by_category(paper_comparison(4, load_results(tmp_path)))
    assert rows["average"] == ["average", "97.7", "96.7", "-1.0", "preset paper"]
    assert all(cells[3] == "-1.0" for cells in rows.values())


@pytest.mark.parametrize("paper_value, ours, shown, difference", [
    (97.4, 97.36, "97.4", "+0.0"),   # rounds up to the paper's value
    (97.4, 97.34, "97.3", "-0.1"),
    (97.4, 97.4 - 1e-9, "97.4", "+0.0"),  # never "-0.0"
    (91.7, 99.96, "100.0", "+8.3"),
])
def test_difference_is_of_the_displayed_values(paper_value, ours, shown, difference):
    assert Row("x", paper_value, ours).cells()[1:4] == [f"{paper_value:.1f}", shown, difference]


def test_preferred_result_among_several_and_ambiguity(tmp_path):
    write_result(tmp_path, "a.json", "mvtec", "bottle", 0.90, 0.90, k=0.01)
    write_result(tmp_path, "b.json", "mvtec", "bottle", 0.95, 0.95, k=0.001)
    write_result(tmp_path, "c.json", "mvtec", "bottle", 0.80, 0.80, k=0.001, n_draws=1)
    rows = by_category(paper_comparison(4, load_results(tmp_path)))
    assert rows["bottle"][2] == "95.0"  # the run at the paper's k and N
    write_result(tmp_path, "d.json", "mvtec", "bottle", 0.96, 0.96, k=0.001)
    with pytest.raises(SrlibError, match=r"2 results for mvtec/bottle: .*b\.json, .*d\.json"):
        paper_comparison(4, load_results(tmp_path))


def test_ablation_uses_runs_with_each_n(tmp_path):
    for category in paper.DATASETS["mvtec"].categories:
        write_result(tmp_path, f"n1/{category}.json", "mvtec", category, 0.90, 0.80, n_draws=1)
        write_result(tmp_path, f"n3/{category}.json", "mvtec", category, 0.99, 0.98, k=0.01)
    write_result(tmp_path, "n5/bottle.json", "mvtec", "bottle", 0.5, 0.5, n_draws=5)
    rows = ablation_comparison(load_results(tmp_path)).rows
    cells = [r.cells() for r in rows]
    assert [c[:4] for c in cells] == [
        ["N = 1, image-level AUROC (%)", "97.5", "90.0", "-7.5"],
        ["N = 1, pixel-level AUROC (%)", "97.3", "80.0", "-17.3"],
        ["N = 3, image-level AUROC (%)", "97.7", "99.0", "+1.3"],
        ["N = 3, pixel-level AUROC (%)", "97.4", "98.0", "+0.6"],
        ["N = 5, image-level AUROC (%)", "97.7", "", ""],
        ["N = 5, pixel-level AUROC (%)", "97.4", "", ""],
    ]
    # N is the varied setting, so it is not flagged; k is.
    assert cells[0][4] == "preset paper" and cells[2][4] == "preset paper; k 0.01 (paper 0.001)"
    assert cells[4][4] == "1 of 15 categories run"
    assert [c[4] for c in [r.cells() for r in ablation_comparison([]).rows]] == [NOT_RUN] * 6


def parse_markdown_table(text):
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert set(lines[1]) <= set("|-")
    split = [[cell.strip().replace("\\|", "|") for cell in line.strip("|").split(" | ")] for line in lines]
    return [split[0]] + split[2:]


def test_markdown_csv_and_html_carry_the_same_cells(tmp_path):
    comparison = Comparison("t", "A <title>", (
        Row("bottle", 100.0, 97.34, "k 0.01, says \"hi\" | pipes"),
        Row("carpet", 91.7, None, NOT_RUN),
        Row("brick", None, 80.0, ""),
    ))
    expected = [list(COLUMNS),
                ["bottle", "100.0", "97.3", "-2.7", "k 0.01, says \"hi\" | pipes"],
                ["carpet", "91.7", "", "", NOT_RUN],
                ["brick", "", "80.0", "", ""]]
    assert list(csv.reader(io.StringIO(comparison.to_csv()))) == expected
    markdown = comparison.to_markdown()
    assert markdown.startswith("**A <title>**\n")
    assert parse_markdown_table(markdown) == expected

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.caption = [], []

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            if tag in ("td", "th"):
                self.rows[-1].append("")

        def handle_data(self, data):
            if self.rows:
                self.rows[-1][-1] += data
            else:
                self.caption.append(data)

    parser = Cells()
    parser.feed(comparison._repr_html_())
    assert parser.rows == expected and parser.caption == ["A <title>"]

    written = write_tables([comparison], tmp_path / "tables")
    assert [p.name for p in written] == ["t.md", "t.csv"]
    assert (tmp_path / "tables/t.md").read_text() == markdown
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == ["t.csv", "t.md"]  # no temp files left


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a readable JSON file"),
    ("[1, 2]", "expected a JSON object"),
    ('{"dataset": "mvtec", "category": "bottle"}', "missing image_auroc, pixel_auroc, k, n_draws"),
    ('{"dataset": "mvtec", "category": "bottle", "image_auroc": 97.4, "pixel_auroc": null, "k": 0.001, "n_draws": 3}',
     r"image_auroc is 97.4, expected a number in \[0, 1\] or null"),
    ('{"dataset": "mvtec", "category": "bottle", "image_auroc": true, "pixel_auroc": null, "k": 0.001, "n_draws": 3}',
     "image_auroc is True"),
    ('{"dataset": "mvtec", "category": "brick", "image_auroc": 0.9, "pixel_auroc": 0.9, "k": 0.001, "n_draws": 3}',
     "'brick' is not a MVTec AD category"),
    ('{"dataset": "", "category": "brick", "image_auroc": 0.9, "pixel_auroc": 0.9, "k": 0.001, "n_draws": 3}',
     "must be non-empty strings"),
    ('{"dataset": "btad", "category": "01", "image_auroc": 0.9, "pixel_auroc": 0.9, "k": 0.001, "n_draws": 0}',
     "n_draws is 0"),
    ('{"dataset": "btad", "category": "01", "image_auroc": 0.9, "pixel_auroc": 0.9, "k": 0.001, "n_draws": 3,'
     ' "config": {"epochs": "many"}}', "config.epochs is 'many'"),
])
def test_malformed_result_files_are_named(tmp_path, content, message):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(SrlibError, match=message) as err:
        load_results(tmp_path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_folder_and_result_without_training_settings(tmp_path):
    with pytest.raises(SrlibError, match="results folder .*nowhere does not exist"):
        load_results(tmp_path / "nowhere")
    path = write_result(tmp_path, "r.json", "mpdd", "tubes", 0.9, 0.991, config=None)
    result = read_result(path)
    assert result.note() == "training settings not recorded"
    released = write_result(tmp_path, "s.json", "mpdd", "tubes", 0.9, 0.991, config={"checkpoint": "/w/tubes.pth"})
    assert read_result(released).note() == "checkpoint tubes.pth"
