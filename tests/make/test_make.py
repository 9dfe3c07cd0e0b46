"""The bootstrap (srlib.make), without a network."""

import subprocess
import sys


def test_make_rejects_an_unknown_job():
    out = subprocess.run([sys.executable, "-m", "srlib.make", "bake"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "invalid choice: 'bake'" in out.stderr
