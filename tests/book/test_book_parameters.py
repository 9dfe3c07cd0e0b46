"""Issue 19: ``python -m srlib.book -p`` is checked against the chapter's parameters cell before anything runs;
Ctrl-C stops a build with one line."""

import os
import signal
import subprocess
import sys
import time

import pytest

from srlib.book import build as book
from srlib.errors import SrlibError


def chapter(prefix):
    return next(nb for nb in book.toc_notebooks() if nb.stem.startswith(prefix))


@pytest.fixture
def nothing_runs(monkeypatch):
    """Fail the test if a notebook is executed or the HTML built."""
    def refuse(*args, **kwargs):
        raise AssertionError("something ran")

    for name in ("execute", "stage", "build_html"):
        monkeypatch.setattr(book, name, refuse)


@pytest.mark.parametrize("argv, message", [
    (["--only", "04", "-p", "epochs", "abc"],
     r"-p epochs: 04_real_images_on_a_laptop has no parameter 'epochs'; its parameters: categories, weights_dir"),
    (["-p", "no_such_parameter", "3"], r"-p no_such_parameter: no chapter has a parameter 'no_such_parameter'"),
    (["--only", "05", "-p", "epochs", "abc"],
     r"-p epochs abc: 05_training_on_mvtec's epochs takes a Python value .* epochs = None  # None: the preset's"),
    (["--only", "05", "-p", "k", "fast"], r"-p k fast: 05_training_on_mvtec's k takes a number or 'auto'"),
    (["--only", "05", "-p", "retrain", "yes"], r"retrain takes True or False"),
    (["--only", "01", "-p", "seed", "1.5"], r"01_score_is_a_projector's seed takes a whole number"),
    (["--only", "05", "-p", "k_grid", "0.1"], r"k_grid takes a list such as \[1, 2\]"),
], ids=["unknown in 04", "unknown anywhere", "not a value", "not a number", "not a bool", "not an int", "not a list"])
def test_a_bad_parameter_is_one_line_and_nothing_runs(argv, message, capsys, nothing_runs):
    assert book.main([*argv, "--no-html"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("srlib.book: error: ") and err.endswith("nothing was run")
    assert __import__("re").search(message, err), err


def test_good_parameters_are_typed_from_the_cell_and_go_only_to_chapters_that_have_them():
    ch01, ch05 = chapter("01"), chapter("05")
    given = [("k", "auto"), ("epochs", "3"), ("category", "01"), ("root", "/data/my mvtec"), ("k_grid", "[0.01, 0.1]"),
             ("device", "'cpu'"), ("seed", "2"), ("sigma", "1")]
    with pytest.raises(SrlibError, match="05_training_on_mvtec has no parameter 'sigma'"):
        book.checked_parameters([ch05], given)
    chosen = book.checked_parameters([ch01, ch05], given)
    assert chosen[ch05] == {"k": "auto", "epochs": 3, "category": "01", "root": "/data/my mvtec",
                            "k_grid": [0.01, 0.1], "device": "cpu", "seed": 2}
    assert chosen[ch01] == {"seed": 2, "sigma": 1}  # an int for a float
    assert book.checked_parameters([ch01], []) == {ch01: {}}


SLEEPER = """
import sys
from pathlib import Path
import nbformat
from nbformat.v4 import new_code_cell, new_notebook
from srlib.book import build as book
root = Path(sys.argv[1])
for name, path in {"ROOT": root, "BUILD": root / "_build", "STAGE": root / "_build" / "src",
                   "FAILED_NOTEBOOKS": root / "_build" / "failed"}.items():
    setattr(book, name, path)
for folder in ("srlib", "_build", "notebooks"):
    (root / folder).mkdir(parents=True)
nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
nb.cells = [new_code_cell("seconds = 60", metadata={"tags": ["parameters"]}),
            new_code_cell("print('started', flush=True)"), new_code_cell("import time; time.sleep(seconds)")]
nbformat.write(nb, root / "notebooks" / "01_sleeps.ipynb")
book.toc_notebooks = lambda: [root / "notebooks" / "01_sleeps.ipynb"]
raise SystemExit(book.main(["--no-html"]))
"""


@pytest.mark.slow
def test_ctrl_c_stops_the_build_with_one_line(tmp_path):
    """Case 9: Ctrl-C while a chapter runs: 'interrupted', status 130, no traceback from the kernel's libraries."""
    child = subprocess.Popen([sys.executable, "-c", SLEEPER, str(tmp_path / "root")], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True, cwd=tmp_path,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while child.poll() is None and time.monotonic() < deadline and not list((tmp_path / "root" / "_build").glob("tmp*.ipynb")):
        time.sleep(0.2)
    time.sleep(8)  # the kernel is up and in the sleeping cell
    os.killpg(child.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 130, out
    assert out.strip().splitlines()[-1] == "srlib.book: interrupted", out
    assert "Traceback" not in out and "Error" not in out and "WARNING" not in out, out
    assert not list((tmp_path / "root" / "_build").glob("tmp*.ipynb"))  # no half-executed copy left


def test_a_parameter_given_twice_is_refused(capsys, nothing_runs):
    assert book.main(["--only", "01", "-p", "seed", "1", "-p", "seed", "2", "--no-html"]) == 1
    assert capsys.readouterr().err.strip() == \
        "srlib.book: error: -p seed is given twice: give each parameter once; nothing was run"
