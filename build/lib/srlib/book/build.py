"""Build the book: execute every chapter with papermill, then Jupyter Book with -W.

    python -m srlib.book                      # the whole book -> _build/html/index.html
    python -m srlib.book --only 01 -p seed 3  # re-run one chapter with a parameter, rebuild
                                              # (after the chapters it depends on, if not current)
    python -m srlib.book --no-html            # only execute the notebooks

The notebooks listed in ``_toc.yml`` are executed in order (a chapter after
the chapters its metadata says it depends on) with their default parameters
into a staging copy of the book (``_build/src``: the configuration, ``book/``,
``srlib/`` and the executed ``notebooks/``), which is then built with
``jupyter-book build -W`` (a Sphinx warning fails the build) and notebook
execution switched off. A notebook is not executed again while neither it,
its parameters nor srlib's sources have changed. The executed notebooks are
kept: the tests read the numbers each chapter records from them.

The JavaScript the pages load is downloaded once and cached in
``_build/vendor`` (:mod:`srlib.book.vendor`). The staging copy also holds
srlib's sources, which the chapters show with ``literalinclude``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from srlib.book import say
from srlib.book.vendor import vendor_assets
from srlib.errors import SrlibError

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "_build"
STAGE = BUILD / "src"
FAILED_NOTEBOOKS = BUILD / "failed"
# srlib modules whose changes cannot change a chapter's outputs.
# Code no chapter runs: editing it re-executes nothing.
NOT_IMPORTED_BY_NOTEBOOKS = ("srlib/book/", "srlib/cli/", "srlib/make.py", "srlib/__main__.py", "srlib/bench/")
VENDOR = BUILD / "vendor"
# --- the table of contents -------------------------------------------------------


def toc_files(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Every ``file`` (and the root) of a Jupyter Book ``_toc.yml``, in reading order."""
    try:
        data = yaml.safe_load(toc.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SrlibError(f"cannot read the table of contents {toc}: {err}") from None
    files = [data["root"]] if "root" in data else []

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key))

    walk([data])
    return files


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks of the table of contents (entries with a ``.ipynb`` file), in order."""
    return [root / f"{f}.ipynb" for f in toc_files(root / "_toc.yml") if (root / f"{f}.ipynb").exists()]


def select(notebooks: list[Path], only: list[str]) -> list[Path]:
    """The notebooks named by ``--only`` (a stem, a stem's prefix such as ``01``, or a path)."""
    chosen = []
    for name in only:
        stem = Path(name).stem
        hits = [nb for nb in notebooks if nb.stem == stem] or [nb for nb in notebooks if nb.stem.startswith(stem)]
        if len(hits) != 1:
            known = ", ".join(nb.stem for nb in notebooks)
            raise SrlibError(f"--only {name!r} matches {len(hits)} notebooks of _toc.yml; give one of: {known}")
        chosen += hits
    return chosen


# --- execution -------------------------------------------------------------------


def depends_on(notebook: Path) -> list[Path]:
    """The chapters ``notebook`` reads the files of, from its metadata.

    A chapter that reads files another one writes (chapter 6 reads chapter 5's
    results) names it: ``"srlib_book": {"depends_on": ["05_training_on_mvtec"]}``.
    """
    meta = json.loads(notebook.read_text()).get("metadata", {}).get("srlib_book", {})
    return [notebook.parent / f"{name}.ipynb" for name in meta.get("depends_on", [])]


def with_dependencies(notebooks: list[Path]) -> list[Path]:
    """``notebooks``, each preceded by the chapters it depends on (recursively), each once."""
    order: list[Path] = []

    def visit(notebook: Path, chain: tuple[Path, ...]) -> None:
        if notebook in chain:
            cycle = " -> ".join(nb.stem for nb in (*chain, notebook))
            raise SrlibError(f"chapters depend on each other in a circle ({cycle}): fix their depends_on metadata")
        if not notebook.exists():
            raise SrlibError(f"{chain[-1].name} depends on {notebook.name}, which does not exist: fix its depends_on")
        for dependency in depends_on(notebook):
            visit(dependency, (*chain, notebook))
        if notebook not in order:
            order.append(notebook)

    for notebook in notebooks:
        visit(notebook, ())
    return order


def source_hash(notebook: Path, parameters: dict) -> str:
    """What a notebook's outputs depend on: its text, its parameters, srlib's code, the shipped weights and its dependencies.

    The default-parameter hash of each chapter it depends on (:func:`depends_on`)
    counts too, so both are executed again together.
    """
    text = notebook.read_bytes()
    digest = hashlib.sha256(text)
    digest.update(json.dumps(parameters, sort_keys=True).encode())
    for source in sorted((ROOT / "srlib").rglob("*.py")):
        name = source.relative_to(ROOT).as_posix()
        if not name.startswith(NOT_IMPORTED_BY_NOTEBOOKS):
            digest.update(name.encode() + source.read_bytes())
    # The shipped models and the study behind their recipe (notebooks/weights): new weights, new numbers.
    for data in sorted((notebook.parent / "weights").glob("*")):
        digest.update(data.name.encode() + data.read_bytes())
    for dependency in depends_on(notebook):
        digest.update(source_hash(dependency, {}).encode())
    return digest.hexdigest()


def staged(notebook: Path) -> Path:
    return STAGE / notebook.relative_to(ROOT)


def was_executed(notebook: Path) -> bool:
    """Whether the staged copy is an executed one (a bare copy staged by ``--only`` is not)."""
    try:
        return "srlib_book" in json.loads(staged(notebook).read_text())["metadata"]
    except (OSError, ValueError, KeyError):
        return False


def is_current(notebook: Path, parameters: dict) -> bool:
    """Whether the staged executed copy was made from this very notebook and code."""
    try:
        meta = json.loads(staged(notebook).read_text())["metadata"].get("srlib_book", {})
    except (OSError, ValueError, KeyError):
        return False
    return meta.get("source_hash") == source_hash(notebook, parameters)


def kernel_env() -> dict:
    """The kernel imports this checkout's srlib even when it is not installed.

    Without ``JPY_SESSION_NAME`` (set when this build runs inside a JupyterLab
    kernel), the chapters' explorers save their frames, for the HTML book.
    """
    env = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def execute(notebook: Path, parameters: dict, progress: bool = False) -> float:
    """Execute one notebook into the staging copy; returns the seconds it took.

    The output is written to a temporary file and renamed when the run
    succeeded, so an interrupted run leaves no half-executed chapter behind.
    A failing run is kept in ``_build/failed/`` and reported with its cell.
    A kernel that dies (killed from outside, not a failing cell) gets one
    more try.
    """
    from nbclient.exceptions import DeadKernelError

    try:
        return _execute_once(notebook, parameters, progress)
    except DeadKernelError:
        say(f"{notebook.relative_to(ROOT)}: the kernel died (not a cell error); executing it once more")
    try:
        return _execute_once(notebook, parameters, progress)
    except DeadKernelError as err:
        raise SrlibError(f"{notebook.relative_to(ROOT)}: the kernel died twice ({err}); "
                         "is the machine out of memory?") from None


def children_cpu_seconds() -> float:
    """CPU time of this process's finished children (the kernels); 0 where unknown."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def _quiet_once_interrupted():
    """Ctrl-C stops the build with one line: the libraries' logs of the kernel they then stop are silenced.

    (papermill and nbclient log the kernel's death, asyncio the task it ends.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        for name in ("papermill", "nbclient", "asyncio", "traitlets"):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _execute_once(notebook: Path, parameters: dict, progress: bool) -> float:
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    target = staged(notebook)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".ipynb", dir=BUILD)
    os.close(fd)
    start = time.perf_counter()
    saved_env = dict(os.environ)
    env = kernel_env()  # the kernel inherits this process's environment
    os.environ.clear()
    os.environ.update(env)
    try:
        with _quiet_once_interrupted():
            papermill.execute_notebook(
                str(notebook), tmp, parameters=parameters, cwd=str(notebook.parent),
                progress_bar=progress, log_output=False, kernel_name=None,
                # The kernel's own log (a warning about TCP at every start, a traceback when a
                # Ctrl-C here stops it mid-cell) is not the reader's business: cells report their errors.
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except PapermillExecutionError as err:
        FAILED_NOTEBOOKS.mkdir(parents=True, exist_ok=True)
        failed = FAILED_NOTEBOOKS / notebook.name
        os.replace(tmp, failed)
        first_line = (err.source or "").strip().splitlines()[:1]
        message = " ".join(str(err.evalue).split())[:300]
        raise SrlibError(
            f"{notebook.relative_to(ROOT)}: cell {err.cell_index} (In [{err.exec_count}]"
            f"{': ' + first_line[0] if first_line else ''}) raised {err.ename}: {message}; "
            f"the executed copy with the traceback is {failed.relative_to(ROOT)}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
    seconds = time.perf_counter() - start
    nb = nbformat.read(tmp, as_version=4)
    nb.metadata["srlib_book"] = {"source_hash": source_hash(notebook, parameters),
                                 "parameters": parameters, "seconds": round(seconds, 2)}
    nbformat.write(nb, tmp)
    os.chmod(tmp, 0o644)  # mkstemp made it private
    os.replace(tmp, target)
    return seconds


def execute_all(notebooks: list[Path], parameters: dict | None = None, force: bool = False,
                progress: bool = False, per_notebook: dict[Path, dict] | None = None) -> dict[str, float]:
    """Execute (or reuse) each notebook, after the chapters it depends on; returns seconds per executed stem.

    Each of ``notebooks`` gets ``parameters``, or its own from ``per_notebook``
    (:func:`checked_parameters`). A dependency that is not itself in
    ``notebooks`` runs with its default parameters, and only when its executed
    copy is not current.
    """
    parameters = parameters or {}
    timings = {}
    order = with_dependencies(notebooks)
    for i, notebook in enumerate(order, 1):
        dependency = notebook not in notebooks
        given = {} if dependency else per_notebook.get(notebook, {}) if per_notebook is not None else parameters
        label = f"[{i}/{len(order)}] {notebook.relative_to(ROOT)}" + (" (a dependency)" if dependency else "")
        if (dependency or not force) and is_current(notebook, given):
            say(f"{label}: unchanged, reusing the executed copy")
            continue
        say(f"{label}: executing" + (f" with {given}" if given else ""))
        cpu = children_cpu_seconds()
        timings[notebook.stem] = execute(notebook, given, progress)
        cpu = children_cpu_seconds() - cpu
        say(f"{label}: done in {timings[notebook.stem]:.1f} s" + (f" (kernel CPU time {cpu:.1f} s)" if cpu else ""))
    return timings


# --- the staging copy and the HTML -----------------------------------------------


def stage(notebooks: list[Path]) -> list[Path]:
    """Lay out ``_build/src``: configuration, prose, srlib's sources, vendored JS and every chapter.

    The sources are there for the chapters' ``literalinclude`` (``../srlib/...``
    from ``notebooks/``); ``only_build_toc_files`` keeps Sphinx from reading
    them as pages. A chapter with no executed copy yet (possible with
    ``--only`` on a fresh checkout) is staged as it is, without outputs; those
    chapters are returned.
    """
    STAGE.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, STAGE / name)
    for folder, ignore in (("book", (".ipynb_checkpoints",)), ("srlib", ("__pycache__", "*.pyc"))):
        if (STAGE / folder).exists():
            shutil.rmtree(STAGE / folder)
        shutil.copytree(ROOT / folder, STAGE / folder, ignore=shutil.ignore_patterns(*ignore))
    vendor_assets(STAGE / "book" / "_static", VENDOR)
    wanted = {staged(nb) for nb in notebooks}
    for old in (STAGE / "notebooks").glob("*.ipynb"):
        if old not in wanted:  # dropped from the toc
            old.unlink()
    unexecuted = [notebook for notebook in notebooks if not was_executed(notebook)]
    for notebook in unexecuted:
        say(f"{notebook.relative_to(ROOT)} has not been executed: staged without outputs")
        shutil.copy2(notebook, staged(notebook))
    return unexecuted


def build_html(strict: bool = True) -> float:
    """``jupyter-book build -W`` of the staging copy into ``_build/html``; returns seconds.

    ``strict=False`` drops ``-W``: chapters staged without outputs lack the
    numbers other pages glue in, which would otherwise fail the build.
    """
    start = time.perf_counter()
    # The jupyter-book command of this interpreter (its module has no __main__).
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(STAGE),
           "--path-output", str(ROOT), "--builder", "html", *(["-W"] if strict else []), "-n", "--keep-going"]
    say("$ " + " ".join(["jupyter-book build _build/src --path-output .", *(["-W"] if strict else []), "-n --keep-going"]))
    out = subprocess.run(cmd, cwd=ROOT, env=kernel_env())
    if out.returncode != 0:
        raise SrlibError(f"jupyter-book build failed (status {out.returncode}): a warning or an error "
                         "is printed above; warnings are errors in this book")
    return time.perf_counter() - start


def parse_value(text: str):
    """A -p value: a Python literal if it parses as one (3, 0.5, True, [1, 2]), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


_NOT_A_LITERAL = object()


def chapter_parameters(notebook: Path) -> dict[str, tuple[object, str]]:
    """The parameters cell of a chapter: name -> (default value, its comment), read by papermill.

    A default that is not a literal is ``_NOT_A_LITERAL`` (its type is then not checked).
    """
    import papermill

    try:
        found = papermill.inspect_notebook(str(notebook))
    except Exception as err:  # papermill's own errors for an unreadable notebook or kernel
        raise SrlibError(f"cannot read the parameters cell of {notebook.relative_to(ROOT)} ({err})") from None
    parameters = {}
    for name, info in found.items():
        try:
            default = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            default = _NOT_A_LITERAL
        parameters[name] = (default, info.get("help") or "")
    return parameters


def _kind(value) -> str:
    for types, name in ((bool, "True or False"), (int, "a whole number"), (float, "a number"), (str, "a string"),
                        ((list, tuple), "a list such as [1, 2]"), (dict, "a dict such as {'a': 1}")):
        if isinstance(value, types):
            return name
    return type(value).__name__


def check_parameter(notebook: Path, name: str, text: str, default, comment: str):
    """The value of ``-p name text`` for a chapter whose parameters cell sets ``name = default  # comment``.

    The value must be of the default's kind (an int for a float is fine; a
    string parameter takes the text as it is, unquoted). A value of another
    kind is accepted when the comment names it in quotes (``"auto"``); a
    default of None takes any Python literal.
    """
    value = parse_value(text)
    alternatives = set(comment.split('"')[1::2])
    if default is _NOT_A_LITERAL or (isinstance(value, str) and value in alternatives):
        return value
    if isinstance(default, str):
        return value if isinstance(value, str) else text
    if default is None:
        ok = value is not text  # parsed as a literal
    elif isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    else:
        ok = isinstance(value, type(default))
    if ok:
        return value
    wanted = "a Python value (a number, True, None, [1, 2] or a quoted 'string')" if default is None else _kind(default)
    others = f" or {', '.join(repr(a) for a in sorted(alternatives))}" if alternatives else ""
    cell = f"{name} = {default!r}" + (f"  # {comment}" if comment else "")
    raise SrlibError(f"-p {name} {text}: {notebook.stem}'s {name} takes {wanted}{others} (its parameters cell: "
                     f"{cell}); nothing was run")


def checked_parameters(notebooks: list[Path], given: list[tuple[str, str]]) -> dict[Path, dict]:
    """The ``-p`` values each chapter gets: checked against its parameters cell before anything runs.

    A name must be a parameter of at least one of ``notebooks``; each chapter
    gets only the names of its own cell, each checked against its default.
    """
    cells = {notebook: chapter_parameters(notebook) for notebook in notebooks} if given else {}
    chosen: dict[Path, dict] = {notebook: {} for notebook in notebooks}
    for name, text in given:
        having = [notebook for notebook in notebooks if name in cells[notebook]]
        if not having and len(notebooks) == 1:
            raise SrlibError(f"-p {name}: {notebooks[0].stem} has no parameter {name!r}; its parameters: "
                             f"{', '.join(cells[notebooks[0]])}; nothing was run")
        if not having:
            raise SrlibError(f"-p {name}: no chapter has a parameter {name!r} (each chapter's parameters cell lists "
                             "its own; choose the chapter with --only); nothing was run")
        for notebook in having:
            chosen[notebook][name] = check_parameter(notebook, name, text, *cells[notebook][name])
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m srlib.book", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="NOTEBOOK",
                        help="execute only this chapter (a name such as 01 or 01_score_is_a_projector); repeatable")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a notebook parameter (papermill -p); repeatable")
    parser.add_argument("--force", action="store_true", help="execute even the unchanged notebooks")
    parser.add_argument("--no-html", action="store_true", help="execute the notebooks, do not build the HTML")
    args = parser.parse_args(argv)
    try:
        BUILD.mkdir(exist_ok=True)
        notebooks = toc_notebooks()
        chosen = select(notebooks, args.only) if args.only else notebooks
        per_notebook = checked_parameters(chosen, args.parameter)
        start = time.perf_counter()
        timings = execute_all(chosen, force=args.force or bool(args.only), progress=sys.stderr.isatty(),
                              per_notebook=per_notebook)
        if timings:
            say("executed: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
                + f" (total {time.perf_counter() - start:.1f} s)")
        if not args.no_html:
            unexecuted = stage(notebooks)
            if unexecuted:
                say(f"{len(unexecuted)} chapter(s) never executed, so warnings do not fail this build; "
                    "run `python -m srlib.book` once to execute them all and build with -W")
            seconds = build_html(strict=not unexecuted)
            say(f"built {(BUILD / 'html' / 'index.html').relative_to(ROOT)} in {seconds:.1f} s "
                f"(everything: {time.perf_counter() - start:.1f} s)")
    except SrlibError as err:
        print(f"srlib.book: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("srlib.book: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
