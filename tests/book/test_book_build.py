"""srlib.book: the table of contents, re-execution rules, failure messages; srlib.notebook.records."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from srlib.book import build as book
from srlib.errors import SrlibError
from srlib.notebook.records import plain, read_records


def test_toc_files_walks_parts_chapters_and_sections(tmp_path):
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n"
        "  - caption: A\n    chapters:\n      - file: a\n        sections:\n          - file: a1\n"
        "  - caption: B\n    chapters:\n      - file: b\n")
    assert book.toc_files(tmp_path / "_toc.yml") == ["intro", "a", "a1", "b"]
    (tmp_path / "a.ipynb").write_text("{}")
    (tmp_path / "b.md").write_text("# b")
    assert book.toc_notebooks(tmp_path) == [tmp_path / "a.ipynb"]


def test_the_real_toc_starts_with_the_intro_and_ends_with_the_bibliography():
    files = book.toc_files()
    assert files[0] == "book/intro" and files[-1] == "book/bibliography"
    for f in files:
        assert (book.ROOT / f"{f}.ipynb").exists() or (book.ROOT / f"{f}.md").exists(), f


def test_select_by_prefix_or_name_and_a_clear_error_otherwise(tmp_path):
    notebooks = [tmp_path / "01_one.ipynb", tmp_path / "02_two.ipynb", tmp_path / "021_x.ipynb"]
    assert book.select(notebooks, ["01"]) == notebooks[:1]
    assert book.select(notebooks, ["notebooks/02_two.ipynb"]) == notebooks[1:2]
    with pytest.raises(SrlibError, match="'02' matches 2 notebooks"):
        book.select(notebooks, ["02"])
    with pytest.raises(SrlibError, match="give one of: 01_one"):
        book.select(notebooks, ["09"])


def test_parameter_values_parse_like_papermill():
    assert [book.parse_value(v) for v in ("3", "0.5", "True", "[1, 2]", "circle")] == [3, 0.5, True, [1, 2], "circle"]


def test_records_round_trip_through_a_notebook_output():
    value = {"gap": [plain(__import__("numpy").float64(0.25)), 1e-5], "name": "circle"}
    output = {"output_type": "display_data", "metadata": {"scrapbook": {"name": "r", "mime_prefix": "p/"}},
              "data": {"p/text/plain": repr(value)}}
    assert read_records({"cells": [{"outputs": [output]}]}) == {"r": value}
    with pytest.raises(SrlibError, match="cannot read the notebook"):
        read_records("/nonexistent/notebook.ipynb")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """srlib.book pointed at a throw-away repository root."""
    for name, path in {"ROOT": tmp_path, "BUILD": tmp_path / "_build", "STAGE": tmp_path / "_build" / "src",
                       "FAILED_NOTEBOOKS": tmp_path / "_build" / "failed"}.items():
        monkeypatch.setattr(book, name, path)
    (tmp_path / "srlib").mkdir()
    (tmp_path / "srlib" / "toy.py").write_text("x = 1\n")
    (tmp_path / "_build").mkdir()
    (tmp_path / "notebooks").mkdir()
    return tmp_path


def write_notebook(path, *sources, parameters="seed = 0"):
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [new_code_cell(parameters, metadata={"tags": ["parameters"]})] + [new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_executes_once_then_reuses_until_the_notebook_parameters_or_srlib_change(sandbox):
    nb = write_notebook(sandbox / "notebooks" / "01_ok.ipynb", "print(seed * 2)")
    assert list(book.execute_all([nb])) == ["01_ok"]
    executed = nbformat.read(book.staged(nb), as_version=4)
    assert executed.cells[1].outputs[0].text == "0\n"
    assert executed["metadata"]["srlib_book"]["parameters"] == {}
    assert book.execute_all([nb]) == {}  # unchanged: reused
    assert list(book.execute_all([nb], {"seed": 4})) == ["01_ok"]  # new parameters
    executed = nbformat.read(book.staged(nb), as_version=4)
    assert executed.cells[1]["metadata"]["tags"] == ["injected-parameters"]
    assert executed.cells[2].outputs[0].text == "8\n"
    (sandbox / "srlib" / "toy.py").write_text("x = 2\n")  # a library change
    assert book.is_current(nb, {"seed": 4}) is False
    (sandbox / "srlib" / "book.py").write_text("# the build script itself\n")
    book.execute_all([nb], {"seed": 4})
    assert book.is_current(nb, {"seed": 4}) is True


def test_a_chapter_is_stale_when_a_chapter_it_depends_on_changes(sandbox):
    first = write_notebook(sandbox / "notebooks" / "05_writes.ipynb", "open('x', 'w').write('1')")
    second = write_notebook(sandbox / "notebooks" / "06_reads.ipynb", "print(open('x').read())")
    reads = nbformat.read(second, as_version=4)
    reads.metadata["srlib_book"] = {"depends_on": ["05_writes"]}
    nbformat.write(reads, second)
    before = book.source_hash(second, {})
    write_notebook(first, "open('x', 'w').write('2')")  # only the chapter it reads from changes
    assert book.source_hash(second, {}) != before


@pytest.mark.slow
def test_a_failing_cell_is_reported_by_notebook_and_cell_and_kept_aside(sandbox):
    nb = write_notebook(sandbox / "notebooks" / "02_bad.ipynb", "a = 1", "raise ValueError('the reason')")
    with pytest.raises(SrlibError) as err:
        book.execute_all([nb])
    message = str(err.value)
    assert message.startswith("notebooks/02_bad.ipynb: cell 2 (In [3]: raise ValueError('the reason'))")
    assert "raised ValueError: the reason" in message and "_build/failed/02_bad.ipynb" in message
    assert (sandbox / "_build" / "failed" / "02_bad.ipynb").exists()
    assert not book.staged(nb).exists()  # nothing half-executed in the book
    assert not list((sandbox / "_build").glob("*.ipynb"))  # no temporary file left


def test_main_reports_bad_input_in_one_line(capsys):
    assert book.main(["--only", "99_nothing", "--no-html"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("srlib.book: error: --only '99_nothing' matches 0 notebooks")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_kernel_killed_from_outside_gets_one_more_try(sandbox):
    marker = sandbox / "killed-once"
    kill_once = (f"import os, pathlib, signal\nm = pathlib.Path({str(marker)!r})\n"
                 "if not m.exists():\n    m.touch()\n    os.kill(os.getpid(), signal.SIGKILL)")
    nb = write_notebook(sandbox / "notebooks" / "03_flaky.ipynb", kill_once, "print('survived')")
    assert list(book.execute_all([nb])) == ["03_flaky"]
    assert nbformat.read(book.staged(nb), as_version=4).cells[2].outputs[0].text == "survived\n"
    always = write_notebook(sandbox / "notebooks" / "04_dies.ipynb", "import os, signal\nos.kill(os.getpid(), 9)")
    with pytest.raises(SrlibError, match="04_dies.ipynb: the kernel died twice"):
        book.execute_all([always])


def test_dependencies_come_first_once_and_a_circle_is_refused(sandbox):
    first = write_notebook(sandbox / "notebooks" / "05_writes.ipynb", "pass")
    second = write_notebook(sandbox / "notebooks" / "06_reads.ipynb", "pass")
    third = write_notebook(sandbox / "notebooks" / "07_both.ipynb", "pass")
    for notebook, needs in ((second, ["05_writes"]), (third, ["06_reads", "05_writes"])):
        nb = nbformat.read(notebook, as_version=4)
        nb.metadata["srlib_book"] = {"depends_on": needs}
        nbformat.write(nb, notebook)
    assert book.with_dependencies([third]) == [first, second, third]
    assert book.with_dependencies([first, second]) == [first, second]
    nb = nbformat.read(first, as_version=4)
    nb.metadata["srlib_book"] = {"depends_on": ["07_both"]}
    nbformat.write(nb, first)
    with pytest.raises(SrlibError, match="in a circle"):
        book.with_dependencies([second])


@pytest.mark.slow
def test_one_chapter_alone_runs_the_chapter_it_reads_from_first(sandbox):
    write_notebook(sandbox / "notebooks" / "05_writes.ipynb", "open('x', 'w').write(str(seed))")
    second = write_notebook(sandbox / "notebooks" / "06_reads.ipynb", "print(open('x').read())")
    reads = nbformat.read(second, as_version=4)
    reads.metadata["srlib_book"] = {"depends_on": ["05_writes"]}
    nbformat.write(reads, second)
    assert list(book.execute_all([second], {"seed": 3}, force=True)) == ["05_writes", "06_reads"]
    assert nbformat.read(book.staged(second), as_version=4).cells[2].outputs[0].text == "0\n"  # 05 ran with its defaults
    assert list(book.execute_all([second], force=True)) == ["06_reads"]  # 05 is current: reused


def test_a_chapter_never_executed_is_staged_bare_and_the_html_is_built_without_W(sandbox, monkeypatch):
    """``--only 02`` on a fresh checkout: chapter 01 has no outputs, so its glued numbers are missing."""
    for name in ("_config.yml", "_toc.yml"):
        (sandbox / name).write_text("")
    (sandbox / "book").mkdir()
    first, second = (write_notebook(sandbox / "notebooks" / f"0{i}_x.ipynb", "1") for i in (1, 2))
    book.staged(second).parent.mkdir(parents=True)
    book.staged(second).write_text('{"metadata": {"srlib_book": {}}}')
    monkeypatch.setattr(book, "vendor_assets", lambda *args: None)
    assert book.stage([first, second]) == [first]
    assert book.staged(first).read_bytes() == first.read_bytes()

    stricts = []
    monkeypatch.setattr(book, "toc_notebooks", lambda: [first, second])
    monkeypatch.setattr(book, "execute_all", lambda *args, **kwargs: {})
    monkeypatch.setattr(book, "build_html", lambda strict=True: stricts.append(strict) or 0.0)
    assert book.main(["--only", "02"]) == 0  # 01 staged bare is still not executed
    book.staged(first).write_text('{"metadata": {"srlib_book": {}}}')
    assert book.main(["--only", "02"]) == 0
    assert stricts == [False, True]


def test_a_chapter_is_stale_when_the_shipped_weights_change(sandbox):
    nb = write_notebook(sandbox / "notebooks" / "04_loads.ipynb", "print(1)")
    weights = sandbox / "notebooks" / "weights"
    weights.mkdir(exist_ok=True)
    (weights / "textures-brick-seed0.pt").write_bytes(b"old")
    before = book.source_hash(nb, {})
    (weights / "textures-brick-seed0.pt").write_bytes(b"new")  # retrained: the chapter's numbers change
    assert book.source_hash(nb, {}) != before
