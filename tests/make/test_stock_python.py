"""Issue 19: the set-up works on a stock Python (Debian 12's 3.11.2: tarfile without the ``filter`` argument)."""

import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from srlib import make
from srlib.book import vendor
from srlib.errors import SrlibError

STOCK = Path("/usr/bin/python3")  # Debian's own: the oldest Python on the project's machines


def tarball(members) -> bytes:
    """A gzipped tarball of ``(TarInfo, bytes or None)`` pairs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def plain(name, data=b"x\n"):
    return tarfile.TarInfo(name), data


def link(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, None


@pytest.mark.skipif(not STOCK.exists(), reason="no /usr/bin/python3 here (.ci/run installs Debian's)")
def test_the_stock_python_can_set_the_project_up():
    """What ``python3 -m srlib.make book`` does first, with Debian's python3: its tarfile has no filter (3.11.2)."""
    out = subprocess.run([str(STOCK), "-m", "srlib.make", "check"], cwd=make.ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "can set the project up" in out.stdout and "Traceback" not in out.stderr


@pytest.mark.parametrize("data_filter", [True, False], ids=["with the data filter", "without (Python 3.11.2)"])
def test_unpacking_is_the_same_with_and_without_tarfiles_filter(tmp_path, monkeypatch, data_filter):
    if data_filter and not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python's tarfile has no data filter")
    monkeypatch.setattr(vendor, "DATA_FILTER", data_filter)
    good = tarball([plain("package/dist/a.js", b"1\n"), plain("package/LICENSE", b"MIT\n")])
    vendor.unpack(good, tmp_path / "ok", "good.tgz")
    assert (tmp_path / "ok" / "package" / "dist" / "a.js").read_bytes() == b"1\n"
    for bad in ([plain("package/a.js"), link("package/b.js", "/etc/passwd")],
                [plain("package/a.js"), plain("package/../../escaped.js")],
                [plain("/tmp/absolute.js")]):
        with pytest.raises(SrlibError, match=r"bad.tgz holds .* not a plain file or folder inside the package; "
                                             r"nothing was unpacked") as err:
            vendor.unpack(tarball(bad), tmp_path / "bad", "bad.tgz")
        assert "\n" not in str(err.value)
        assert not (tmp_path / "bad").exists() and not (tmp_path / "escaped.js").exists()
    with pytest.raises(SrlibError, match=r"cannot unpack cut.tgz into .*: check the free space"):
        vendor.unpack(good[: len(good) // 2], tmp_path / "cut", "cut.tgz")


def test_the_check_runs_the_unpacking_in_a_fresh_process(capsys):
    assert make.main(["check"]) == 0
    assert f"Python {make.version()}" in capsys.readouterr().out


def test_a_python_too_old_or_without_venv_gets_one_line(monkeypatch):
    monkeypatch.setattr(make, "OLDEST", (sys.version_info.major, sys.version_info.minor + 1))
    with pytest.raises(SystemExit, match=r"srlib.make: Python .* is too old: srlib needs Python 3\.\d+ to 3\.\d+"):
        make.check_python(here=False)
    monkeypatch.setattr(make, "OLDEST", (3, 10))
    real = make.importlib.util.find_spec
    monkeypatch.setattr(make.importlib.util, "find_spec", lambda name: None if name == "ensurepip" else real(name))
    with pytest.raises(SystemExit, match=r"no ensurepip\); on Debian or Ubuntu: sudo apt install python3-venv"):
        make.check_python(here=False)
    make.check_python(here=True)  # --here makes no venv


def test_the_readme_names_the_pythons_the_set_up_checks():
    readme = (make.ROOT / "README.md").read_text()
    oldest, newest = (".".join(map(str, v)) for v in (make.OLDEST, make.NEWEST))
    assert f"Python {oldest} to {newest}" in readme and "3.11.2" in readme
    ci = (make.ROOT / ".ci" / "run").read_text()
    assert "/usr/bin/python3 -m srlib.make check" in ci and shutil.which("bash")
