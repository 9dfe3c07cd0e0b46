"""Fixtures shared by several test modules, and the order the tests run in.

The book's chapters are executed once per test session, the same way the book
build does it (``srlib.book``: papermill, default parameters, reusing an
up-to-date executed copy in ``_build/src``), so the notebook tests and the
browser test share one execution and one HTML build. A chapter added to
``_toc.yml`` is picked up by the book fixtures below without changes here.

When the selected tests read the book, its execution starts as soon as they
are collected, in the background: two chapters at a time, each in a process of
its own and after the chapters it depends on (``depends_on``), then the HTML
when a selected test reads it. The tests that read the book run last; the
others run meanwhile. So that three processes share 2 cores without spinning
threads, the tests and chapters run with one thread each (``OMP_NUM_THREADS``,
unless it is set).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported


@pytest.fixture(scope="session")
def textures_root(tmp_path_factory):
    """The bundled categories (srlib data textures, seed 0), written once per test session."""
    from srlib.data import make_textures

    return make_textures(tmp_path_factory.mktemp("bundled") / "textures", seed=0)


# --- the book, executed in the background -----------------------------------------

BOOK_FIXTURES = {"executed_notebooks", "chapter_records", "built_book"}
LANES = 2  # chapters executed at once
EXECUTE = ("import sys; from pathlib import Path; from srlib.book import build; build.BUILD.mkdir(exist_ok=True); "
           "build.execute_all([Path(sys.argv[1])])")
BUILD_HTML = "from srlib.book import build; build.stage(build.toc_notebooks()); build.build_html()"
BOOK_KEY = pytest.StashKey["BookInBackground"]()


class BookInBackground:
    """Every chapter of ``_toc.yml`` executed with its defaults, then (``html``) the HTML book, in other processes.

    Chapters that others depend on start first, then the later ones (the
    heavier). A chapter whose executed copy is current is not started. The
    output of each process goes to ``logs``; ``wait`` says which failed.
    """

    def __init__(self, html: bool, logs: Path):
        from srlib.book import build as book

        self.book, self.logs, self.html = book, logs, html
        for old in logs.glob("*.log"):  # an earlier session's
            old.unlink()
        self.notebooks = book.toc_notebooks()
        self.failed: dict[str, Path] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.stopping = False
        self.html_done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="book in the background", daemon=True)
        self.thread.start()

    def _start(self, name: str, args: list[str]) -> None:
        env = {**self.book.kernel_env(), "OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"]}
        with self.lock:
            if not self.stopping:
                with open(self.logs / f"{name}.log", "w") as log:  # the child writes to its own copy
                    self.processes[name] = subprocess.Popen(
                        [sys.executable, "-c", *args], cwd=self.book.ROOT, env=env, stdin=subprocess.DEVNULL,
                        stdout=log, stderr=subprocess.STDOUT)

    def _finished(self) -> list[str]:
        """Wait for a process to end; the names of those that ended."""
        while True:
            with self.lock:
                ended = [name for name, p in self.processes.items() if p.poll() is not None]
                for name in ended:
                    if self.processes.pop(name).returncode != 0:
                        self.failed[name] = self.logs / f"{name}.log"
                if ended or not self.processes:
                    return ended
            time.sleep(0.2)

    def _run(self) -> None:
        book = self.book
        wanted = set(self.notebooks)
        pending = [nb for nb in self.notebooks if not book.is_current(nb, {})]
        done = {nb.stem for nb in self.notebooks if nb not in pending}
        waited_for = {dep for nb in self.notebooks for dep in book.depends_on(nb)}
        while pending and not self.stopping:
            ready = [nb for nb in pending if all(d.stem in done or d not in wanted for d in book.depends_on(nb))]
            ready = [nb for nb in ready if not any(d.stem in self.failed for d in book.depends_on(nb))]
            if ready and len(self.processes) < LANES:
                notebook = max(ready, key=lambda nb: (nb in waited_for, self.notebooks.index(nb)))
                pending.remove(notebook)
                self._start(notebook.stem, [EXECUTE, str(notebook)])
                continue
            if not self.processes:  # what is left depends on a chapter that failed
                break
            done.update(self._finished())
        while self.processes:
            self._finished()
        if self.html and not self.failed and not self.stopping:
            self._start("html", [BUILD_HTML])
            self._finished()
        self.html_done.set()

    def wait(self, html: bool = False) -> None:
        """Until the chapters (and the HTML) are done; a failed process fails the test, with its output's end."""
        self.thread.join()
        for name, log in self.failed.items():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            pytest.fail(f"the book's {name} failed in the background; the end of {log}:\n{tail}", pytrace=False)
        if html and not self.html:
            raise RuntimeError("the HTML was not built: no selected test was known to read it")

    def stop(self) -> None:
        """Stop what runs (a session that ends early): Ctrl-C to each process, then a kill."""
        with self.lock:
            self.stopping = True
            running = list(self.processes.values())
        for process in running:
            process.send_signal(2)  # SIGINT: srlib.book stops its kernel
        for process in running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.thread.join(timeout=60)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """The tests that read the book last, and the book started now when any is selected."""
    readers = [item for item in items if BOOK_FIXTURES & set(getattr(item, "fixturenames", ()))]
    if not readers or config.option.collectonly:
        return
    items[:] = [item for item in items if item not in readers] + readers
    html = any("built_book" in item.fixturenames for item in readers)
    from srlib.book import build as book

    logs = book.BUILD / "test-logs"  # one log per process, replaced by the next session's
    logs.mkdir(parents=True, exist_ok=True)
    config.stash[BOOK_KEY] = BookInBackground(html, logs)


def pytest_sessionfinish(session):
    background = session.config.stash.get(BOOK_KEY, None)
    if background is not None:
        background.stop()


@pytest.fixture(scope="session")
def executed_notebooks(request):
    """Every notebook of ``_toc.yml`` executed with its defaults: ``{stem: path of the executed copy}``."""
    from srlib.book import build as book

    background = request.config.stash.get(BOOK_KEY, None)
    if background is not None:
        background.wait()
    book.BUILD.mkdir(exist_ok=True)
    notebooks = book.toc_notebooks()
    book.execute_all(notebooks)  # all current after the background run: nothing to do
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
def built_book(request, executed_notebooks):
    """The HTML book (``_build/html``), built once per session from the executed chapters."""
    from srlib.book import build as book

    background = request.config.stash.get(BOOK_KEY, None)
    if background is not None and background.html:
        background.wait(html=True)
    else:
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


# --- the closing note: what ran, by folder ----------------------------------------

COVERS = {
    "method": "srlib.method: the paper's equations, Algorithm 1, metrics and baselines against closed forms",
    "data": "srlib.data: the dataset layouts, image decoding, one-line refusals, the bundled textures",
    "run": "srlib.run: training (resume, signals, processes), checkpoints, scoring, evaluation, k selection",
    "results": "srlib.results: the paper's numbers, the tables, the comparisons",
    "reproduce": "srlib.reproduce: planning, skipping, resuming; srlib reproduce end to end on the bundled data",
    "cli": "srlib.cli: the srlib command, your own images (train --images, predict), output folders",
    "book": "srlib.book: execution rules, parameters, the vendored JavaScript; the built book in a browser",
    "notebook": "srlib.notebook: records and widgets; chapter 1 live in JupyterLab",
    "bench": "srlib.bench: a tiny benchmark run",
    "make": "srlib.make: the set-up, on a stock Python too",
    "chapters": "the chapters: executed with their defaults (their numbers checked) and with overrides",
    "test_layers.py": "imports go down srlib's layers; one test folder per layer",
}


def pytest_terminal_summary(terminalreporter):
    """Per folder of tests/: how many ran and passed, and what the folder covers."""
    ran, passed = {}, {}
    for outcome in ("passed", "failed", "skipped", "error", "xfailed", "xpassed"):
        for report in terminalreporter.stats.get(outcome, []):
            parts = getattr(report, "nodeid", "").split("::")[0].split("/")
            if len(parts) < 2 or parts[0] != "tests" or getattr(report, "when", "call") not in ("call", "setup"):
                continue
            if report.when == "setup" and outcome == "passed":
                continue  # its call is counted
            ran[parts[1]] = ran.get(parts[1], 0) + 1
            passed[parts[1]] = passed.get(parts[1], 0) + (outcome == "passed")
    if not ran:
        return
    terminalreporter.section(f"what the {sum(ran.values())} tests cover (passed / ran)")
    for folder in sorted(ran, key=lambda f: list(COVERS).index(f) if f in COVERS else len(COVERS)):
        terminalreporter.write_line(f"{folder:<15}{passed[folder]:>4} / {ran[folder]:<4} {COVERS.get(folder, '')}")
