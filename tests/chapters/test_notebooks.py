"""Every chapter of _toc.yml: stored stripped, one parameters cell, runs with defaults and with an override.

Chapters are found in _toc.yml, so a new chapter is tested without editing
this file. The run with the defaults is the book's own (the ``executed_notebooks``
fixture); the run with an override sets the values in ``OVERRIDES`` (``seed``
for a chapter not named there: every chapter that draws random numbers has
one), chosen to change what the chapter computes while keeping it cheap, so
the second run proves that the parameters reach the code without repeating
the first. A chapter that reads another's results (``depends_on``) reads those
of the other's overridden run.
"""

import ast
import json

import papermill
import pytest

from srlib.book import build as book
from srlib.notebook.records import read_records

NOTEBOOKS = book.toc_notebooks()
IDS = [nb.stem for nb in NOTEBOOKS]

# Chapter 5's out_dir in its overridden run, and the results_dir of the chapters that read it.
SMALL_RESULTS = "<chapter 5's overridden out_dir>"
# Chapter 4's executed copy in its overridden run, which chapter 6 reads (its AE and PCA per defect type).
CH4_RUN = "<chapter 4's overridden run>"
# The parameters each chapter is run with besides its defaults: each differs from its default.
OVERRIDES = {
    "01_score_is_a_projector": {"sigma": 0.05, "sigmas": [0.02, 0.05, 0.2], "n_points": 500, "n_test": 500},
    "02_learning_the_score": {"train_steps": 300, "n_points": 500, "k_grid": [0.001, 0.1], "n_test": 300},
    "03_high_dimensions": {"sigma": 10.0, "dims": [2, 16, 1024], "n_noise": 100, "k_grid": [0.01, 0.1],
                           "sigma_grid": [25.0]},
    "04_real_images_on_a_laptop": {"categories": ["coin"], "n_seeds": 1, "ae_width": 4, "latent_channels": 2,
                                   "train_stride": 16, "query_stride": 8},
    "05_training_on_mvtec": {"category": "coin", "epochs": 1, "image_size": 32, "width": 8,
                             "train_overrides": {"batch_size": 16}, "k_grid": [0.001, 0.01],
                             "ablation_seeds": [0], "out_dir": SMALL_RESULTS},
    "06_results": {"results_dir": SMALL_RESULTS, "chapter4": CH4_RUN},
    "07_choosing_k": {"results_dir": SMALL_RESULTS, "seed": 1, "n_seeds": 1},
}
# What a chapter that reads chapter 5's results records of them: (name, value from the overridden run).
READS_SMALL_RESULTS = {"06_results": ("gallery_categories", ["coin"]), "07_choosing_k": ("categories", ["textures/coin"])}
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
    ids = [c.get("id") for c in notebook["cells"]]  # nbformat 4.5 warns on a missing id, later versions fail
    assert None not in ids and len(set(ids)) == len(ids), "every cell needs an id of its own"
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


def defaults(path) -> dict:
    """The values of a chapter's parameters cell."""
    (cell,) = parameters_cells(json.loads(path.read_text()))
    return {s.targets[0].id: ast.literal_eval(s.value) for s in ast.parse("".join(cell["source"])).body}


@pytest.fixture(scope="module")
def run_overridden(tmp_path_factory):
    """``run_overridden(path)``: the chapter executed with its ``OVERRIDES`` once, after those it depends on."""
    folder = tmp_path_factory.mktemp("overridden")
    done = {}

    def run(path):
        if path.stem not in done:
            for dependency in book.depends_on(path):
                run(dependency)
            overrides = OVERRIDES.get(path.stem, {"seed": 1})
            placeholders = {SMALL_RESULTS: str(folder / "results"),
                            CH4_RUN: str(folder / "04_real_images_on_a_laptop.ipynb")}
            parameters = {k: placeholders.get(v, v) if isinstance(v, str) else v for k, v in overrides.items()}
            out = folder / path.name
            with pytest.MonkeyPatch.context() as env:
                for key, val in book.kernel_env().items():
                    env.setenv(key, val)
                papermill.execute_notebook(str(path), str(out), parameters=parameters, cwd=str(path.parent),
                                           progress_bar=False)
            done[path.stem] = json.loads(out.read_text()), parameters
        return done[path.stem]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_runs_with_an_overridden_parameter(path, run_overridden):
    notebook, parameters = run_overridden(path)
    default = defaults(path)
    for name, value in parameters.items():
        assert name in default and value != default[name], f"{name} = {value!r} is not an override"
    assert notebook["metadata"]["papermill"]["parameters"] == parameters
    injected = [c for c in notebook["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1
    records = read_records(notebook)
    assert records
    for name, value in parameters.items():
        if name in records:
            assert records[name] == value
    # The run shows its override: a parameter it records, or what it read of chapter 5's overridden run.
    assert any(name in records for name in parameters) or path.stem in READS_SMALL_RESULTS
    if path.stem in READS_SMALL_RESULTS:  # chapter 5's overridden run, not the book's results
        name, value = READS_SMALL_RESULTS[path.stem]
        assert records[name] == value
