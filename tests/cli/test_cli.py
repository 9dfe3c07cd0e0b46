"""The command line: python -m srlib and its --version."""

import subprocess
import sys

import pytest

from srlib import __version__
from srlib.cli import main


def test_python_m_srlib_help_lists_the_program():
    out = subprocess.run([sys.executable, "-m", "srlib", "--help"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("usage: srlib")


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse's version action exits; returning is a failure
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"srlib {__version__}"

