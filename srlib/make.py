"""Set up and run the project's two jobs with nothing but Python.

    python3 -m srlib.make book     # set up .venv, execute the notebooks, build the book
    python3 -m srlib.make test     # set up .venv, run the test suite (extra args go to pytest)
    python3 -m srlib.make quick    # the same without the tests marked slow: under a minute
    python3 -m srlib.make setup    # only set up .venv
    python3 -m srlib.make check    # only check that this Python can set it up (installs nothing)

Run from the repository root. Uses only the standard library, so it works
before torch or anything else is installed, on Python 3.10 to 3.13 (Debian
12's own 3.11.2 included). The set-up is skipped when ``pyproject.toml`` has
not changed since the last one.

``--here`` uses the running interpreter instead of ``.venv`` (for example a
conda environment made from ``environment.yml``). ``SRLIB_TORCH`` is the pip
requirement used to install torch when it is missing (default
``torch==2.13.0``; give a CUDA or CPU build of your choice, with pip options).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TORCH = "torch==2.13.0"
# The Pythons srlib is tested on, oldest and newest (the README says the same).
OLDEST, NEWEST = (3, 10), (3, 13)


def say(message: str) -> None:
    print(f"[srlib.make] {message}", flush=True)


def run(cmd: list[str]) -> None:
    say("$ " + " ".join(shlex.quote(c) for c in cmd))
    subprocess.run(cmd, check=True, cwd=ROOT)


def version(info=None) -> str:
    return ".".join(map(str, (info or sys.version_info)[:3]))


def check_python(here: bool) -> None:
    """Refuse, in one line, a Python that cannot set the project up; warn about one newer than those tested."""
    if sys.version_info[:2] < OLDEST:
        raise SystemExit(f"srlib.make: Python {version()} ({sys.executable}) is too old: srlib needs Python "
                         f"{'.'.join(map(str, OLDEST))} to {'.'.join(map(str, NEWEST))}; run this with a newer python3")
    if sys.version_info[:2] > NEWEST:
        say(f"Python {version()} is newer than the ones srlib is tested on "
            f"({'.'.join(map(str, OLDEST))} to {'.'.join(map(str, NEWEST))}); going on")
    if not here and importlib.util.find_spec("ensurepip") is None:
        raise SystemExit(f"srlib.make: this Python ({sys.executable}) cannot make a virtual environment with pip "
                         "(no ensurepip); on Debian or Ubuntu: sudo apt install python3-venv")
    # The book build unpacks the JavaScript it serves with this Python's tarfile (old ones lack its filter).
    probe = subprocess.run([sys.executable, "-m", "srlib.book.vendor"], cwd=ROOT, capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise SystemExit(f"srlib.make: Python {version()} ({sys.executable}) cannot unpack the book's JavaScript: {last}")


def venv_python(here: bool) -> Path:
    if here:
        return Path(sys.executable)
    env_dir = ROOT / ".venv"
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        say(f"creating the virtual environment {env_dir}")
        try:
            venv.EnvBuilder(with_pip=True).create(env_dir)
        except (OSError, subprocess.CalledProcessError) as err:
            shutil.rmtree(env_dir, ignore_errors=True)  # half made: no pip in it
            raise SystemExit(f"srlib.make: cannot create {env_dir} ({err}); on Debian or Ubuntu: "
                             "sudo apt install python3-venv") from None
    return python


def setup_stamp(torch_spec: str) -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(torch_spec.encode())
    return digest.hexdigest()


def imports_ok(python: Path, modules: str) -> bool:
    probe = subprocess.run([str(python), "-c", f"import {modules}"], cwd=ROOT, capture_output=True)
    return probe.returncode == 0


def setup(here: bool) -> Path:
    if not (ROOT / "pyproject.toml").exists():
        raise SystemExit(f"srlib.make: no pyproject.toml in {ROOT}: run it from a checkout of the project")
    check_python(here)
    python = venv_python(here)
    torch_spec = os.environ.get("SRLIB_TORCH", DEFAULT_TORCH)
    stamp_file = Path(sys.prefix if here else ROOT / ".venv") / ".srlib-setup"
    stamp = setup_stamp(torch_spec)
    if stamp_file.exists() and stamp_file.read_text() == stamp and imports_ok(python, "srlib, torch, papermill"):
        say(f"environment up to date ({python})")
        return python
    # pip compiles what it installs on one core; compileall does it afterwards on all of them (a third of the set-up).
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-compile"]
    # torch first, from the spec: a bare 'torch' requirement may pull a multi-GB CUDA build.
    if not imports_ok(python, "torch"):
        run(pip + shlex.split(torch_spec))
    run(pip + ["--editable", ".[dev]"])
    say("compiling the installed packages")
    # quiet=2: files meant for other Pythons fail to compile, as pip's own compilation lets them.
    subprocess.run([str(python), "-c", "import compileall, sysconfig; "
                    "compileall.compile_dir(sysconfig.get_paths()['purelib'], quiet=2, workers=0)"], cwd=ROOT)
    try:
        stamp_file.write_text(stamp)
    except OSError:  # a read-only conda prefix: set-up simply runs again next time
        pass
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m srlib.make", description=__doc__.split("\n\n")[0])
    parser.add_argument("job", choices=["setup", "book", "test", "quick", "check"])
    parser.add_argument("--here", action="store_true", help="use the running Python instead of .venv")
    args, rest = parser.parse_known_args(argv)
    if args.job == "check":
        check_python(args.here)
        say(f"Python {version()} ({sys.executable}) can set the project up")
        return 0
    try:
        python = setup(args.here)
        if args.job == "book":
            run([str(python), "-m", "srlib.book", *rest])
        elif args.job == "test":
            run([str(python), "-m", "pytest", *rest])
        elif args.job == "quick":  # no notebook, no built book, no end-to-end run
            run([str(python), "-m", "pytest", "-m", "not slow", *rest])
    except subprocess.CalledProcessError as err:
        return err.returncode or 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
