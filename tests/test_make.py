"""The bootstrap and the command line, without a network."""

import subprocess
import sys

from srlib import __version__
from srlib.cli import main


def test_python_m_srlib_help_lists_the_program():
    out = subprocess.run([sys.executable, "-m", "srlib", "--help"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("usage: srlib")


def test_version_flag(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert capsys.readouterr().out.strip() == f"srlib {__version__}"


def test_make_rejects_an_unknown_job():
    out = subprocess.run([sys.executable, "-m", "srlib.make", "bake"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "invalid choice: 'bake'" in out.stderr
