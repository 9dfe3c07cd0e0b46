"""The bootstrap (srlib.make), without a network."""

import subprocess
import sys


def test_make_rejects_an_unknown_job():
    out = subprocess.run([sys.executable, "-m", "srlib.make", "bake"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "invalid choice: 'bake'" in out.stderr


def test_quick_is_the_test_job_without_the_slow_tests(monkeypatch):
    from srlib import make

    calls = []
    monkeypatch.setattr(make, "setup", lambda here: "python")
    monkeypatch.setattr(make, "run", calls.append)
    assert make.main(["quick", "tests/run", "-x"]) == 0
    assert make.main(["test", "tests/run", "-x"]) == 0
    assert calls == [["python", "-m", "pytest", "-m", "not slow", "tests/run", "-x"],
                     ["python", "-m", "pytest", "tests/run", "-x"]]
