"""Fixtures shared by several test modules.

The book's chapters are executed once per test session, the same way the book
build does it (``srlib.book``, papermill, default parameters, reusing an
up-to-date executed copy in ``_build/src``), so the notebook tests and the
browser test share one execution and one HTML build. A chapter added to
``_toc.yml`` is picked up by the book fixtures below without changes here.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def textures_root(tmp_path_factory):
    """The bundled categories (srlib data textures, seed 0), written once per test session."""
    from srlib.data import make_textures

    return make_textures(tmp_path_factory.mktemp("bundled") / "textures", seed=0)


@pytest.fixture(scope="session")
def executed_notebooks():
    """Every notebook of ``_toc.yml`` executed with its defaults: ``{stem: path of the executed copy}``."""
    from srlib.book import build as book

    book.BUILD.mkdir(exist_ok=True)
    notebooks = book.toc_notebooks()
    book.execute_all(notebooks)
    return {nb.stem: book.staged(nb) for nb in notebooks}


@pytest.fixture(scope="session")
def chapter_records(executed_notebooks):
    """``chapter_records(stem)``: the values a chapter recorded with ``srlib.notebook.records.record``."""
    from srlib.notebook.records import read_records

    cache = {}

    def read(stem: str) -> dict:
        if stem not in cache:
            cache[stem] = read_records(executed_notebooks[stem])
        return cache[stem]

    return read


@pytest.fixture(scope="session")
def built_book(executed_notebooks):
    """The HTML book (``_build/html``), built once per session from the executed chapters."""
    from srlib.book import build as book

    book.stage(book.toc_notebooks())
    book.build_html()
    return book.BUILD / "html"


@pytest.fixture
def world_readable_dir():
    """A temporary folder that user 'nobody' can enter (for ``tiny_datasets.unprivileged``)."""
    # Not tmp_path: pytest's base folder is private to root, so 'nobody' could not enter it.
    folder = Path(tempfile.mkdtemp(prefix="srlib-perm-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


# --- headless Chromium (the browser tests) -----------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-default-apps", "--no-first-run"]


def chromium_or_skip() -> str:
    required = os.environ.get("SRLIB_REQUIRE_BROWSER") == "1"
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        message = "needs Debian's chromium and Python's playwright (apt-get install chromium)"
        if required:
            pytest.fail(f"SRLIB_REQUIRE_BROWSER=1 but the browser test {message}")
        pytest.skip(f"the browser test {message}")
    return path


@pytest.fixture(scope="module")
def browser():
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
