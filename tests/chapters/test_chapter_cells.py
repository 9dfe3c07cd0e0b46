"""Part II's chapters read as a book: short visible code cells, with prose between them.

The logic of chapters 4-7 lives in srlib, where a reader can call it from
JupyterLab; a chapter's visible cells say what is computed. A cell whose input
the page hides (``hide-input``: the plotting code of a figure) is exempt.
"""

import json

import pytest

from srlib.book import build as book

PART_TWO = [nb for nb in book.toc_notebooks() if nb.stem[:2] in {"04", "05", "06", "07"}]
MAX_LINES = 25
HIDDEN = {"hide-input", "remove-input", "remove-cell"}


def visible_code_cells(notebook: dict):
    """(index, lines) of each code cell whose input the page shows."""
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code" and not HIDDEN & set(cell.get("metadata", {}).get("tags", [])):
            yield index, "".join(cell["source"]).splitlines()


def test_part_two_is_chapters_four_to_seven():
    assert [nb.stem[:2] for nb in PART_TWO] == ["04", "05", "06", "07"]


@pytest.mark.parametrize("path", PART_TWO, ids=lambda p: p.stem)
def test_no_visible_code_cell_is_longer_than_25_lines(path):
    notebook = json.loads(path.read_text())
    cells = list(visible_code_cells(notebook))
    assert cells, "no visible code cell: is this a chapter?"
    long = {index: len(lines) for index, lines in cells if len(lines) > MAX_LINES}
    assert not long, f"cells (index: lines) over {MAX_LINES} lines: {long}; move their logic into srlib"


@pytest.mark.parametrize("path", PART_TWO, ids=lambda p: p.stem)
def test_prose_between_the_visible_code_cells(path):
    """Two visible code cells in a row leave the reader without a word between; the parameters cell is the exception."""
    cells = json.loads(path.read_text())["cells"]
    shown = [i for i, _ in visible_code_cells({"cells": cells})]
    parameters = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    adjacent = [(a, b) for a, b in zip(shown, shown[1:]) if b == a + 1 and not {a, b} & set(parameters)]
    assert not adjacent, f"code cells {adjacent} follow each other without prose between them"


def test_the_rule_counts_what_the_page_shows():
    """A made-up chapter: a long hidden cell passes, a long visible one is counted, the lines as shown."""
    code = {"cell_type": "code", "metadata": {}, "source": ["a = 1\n"] * 30}
    hidden = {**code, "metadata": {"tags": ["hide-input"]}}
    assert [(i, len(lines)) for i, lines in visible_code_cells({"cells": [hidden, code]})] == [(1, 30)]
