"""Every chapter of _toc.yml: stored stripped, one parameters cell, runs with defaults and with an override.

Chapters are found in _toc.yml, so a new chapter is tested without editing
this file. A chapter whose defaults are slow can name a cheaper parameter to
override in ``OVERRIDES``; the others override ``seed`` (every chapter that
draws random numbers has one).
"""

import ast
import json

import papermill
import pytest

from srlib.book import build as book
from srlib.notebook.records import read_records

NOTEBOOKS = book.toc_notebooks()
IDS = [nb.stem for nb in NOTEBOOKS]

# The parameters each chapter is run with, besides its defaults: (name, value),
# or a dict of several (a slow chapter made cheap; results kept out of _build/results).
OVERRIDES = {
    "01_score_is_a_projector": ("sigma", 0.05),
    "02_learning_the_score": ("train_steps", 1500),
    "03_high_dimensions": ("sigma", 10.0),
    "04_real_images_on_a_laptop": {"categories": ["coin"], "n_seeds": 1},
    "05_training_on_mvtec": {"category": "coin", "epochs": 1, "image_size": 32, "width": 8, "k_grid": [0.001],
                             "ablation_seeds": [0], "out_dir": "../_build/test-overrides"},
    "06_results": ("results_dir", "../_build/results"),  # its one parameter, given explicitly
}
# Chapters that draw no random numbers (they read other chapters' results), so have no seed.
NO_SEED = {"06_results"}


def parameters_cells(notebook: dict) -> list[dict]:
    return [c for c in notebook["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]


def test_the_toc_lists_the_chapters():
    assert IDS[:1] == ["01_score_is_a_projector"]
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_stripped_with_one_parameters_cell_of_literals(path):
    notebook = json.loads(path.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), "outputs not stripped"
    assert "widgets" not in notebook["metadata"], "stored widget state: strip it"
    (cell,) = parameters_cells(notebook)
    statements = ast.parse("".join(cell["source"])).body
    assert statements, "empty parameters cell"
    names = set()
    for statement in statements:  # plain `name = literal`, so papermill can override each
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1
        names.add(statement.targets[0].id)
        ast.literal_eval(statement.value)
    assert "seed" in names or path.stem in NO_SEED
    assert code.index(cell) < len(code) - 1


@pytest.mark.slow
@pytest.mark.parametrize("stem", IDS)
def test_runs_with_its_defaults_and_records_its_numbers(stem, executed_notebooks):
    notebook = json.loads(executed_notebooks[stem].read_text())
    errors = [o for c in notebook["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors
    assert notebook["metadata"]["srlib_book"]["parameters"] == {}
    assert read_records(notebook), "the chapter records no numbers"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_runs_with_an_overridden_parameter(path, tmp_path, monkeypatch):
    overrides = OVERRIDES.get(path.stem, ("seed", 1))
    parameters = overrides if isinstance(overrides, dict) else dict([overrides])
    for key, val in book.kernel_env().items():
        monkeypatch.setenv(key, val)
    out = tmp_path / path.name
    papermill.execute_notebook(str(path), str(out), parameters=parameters, cwd=str(path.parent),
                               progress_bar=False)
    notebook = json.loads(out.read_text())
    assert notebook["metadata"]["papermill"]["parameters"] == parameters
    injected = [c for c in notebook["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1
    records = read_records(notebook)
    assert records
    for name, value in parameters.items():
        if name in records:
            assert records[name] == value
