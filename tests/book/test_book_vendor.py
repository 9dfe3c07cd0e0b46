"""The book's JavaScript: downloaded by Python from the npm registry, pinned by sha512, no Node.js needed."""

import base64
import functools
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import urllib.request
from pathlib import Path

import pytest

from srlib.book import build as book
from srlib.book import vendor
from srlib.errors import SrlibError


def tarball(files: dict) -> bytes:
    """An npm-style tarball: every file under ``package/``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A local npm registry (a folder served over http) that srlib.book downloads from."""
    served = tmp_path / "registry"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=served))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(vendor, "NPM_REGISTRY", f"http://127.0.0.1:{server.server_address[1]}")
    yield served
    server.shutdown()
    server.server_close()


def test_the_tarball_url_follows_the_registry_layout():
    assert vendor.npm_tarball("mathjax@3.2.2") == "https://registry.npmjs.org/mathjax/-/mathjax-3.2.2.tgz"
    assert vendor.npm_tarball("@jupyter-widgets/html-manager@1.0.15") == \
        "https://registry.npmjs.org/@jupyter-widgets/html-manager/-/html-manager-1.0.15.tgz"
    assert set(vendor.INTEGRITY) == set(vendor.VENDORED)  # every vendored package is pinned


def test_a_pinned_tarball_is_unpacked_and_any_other_refused(registry, tmp_path, monkeypatch):
    good = tarball({"dist/a.js": b"console.log(1)\n", "LICENSE": b"MIT\n"})
    (registry / "pkg" / "-").mkdir(parents=True)
    (registry / "pkg" / "-" / "pkg-1.0.0.tgz").write_bytes(good)
    # The integrity string npm's registry publishes: "sha512-" + base64 of the digest.
    pinned = "sha512-" + base64.b64encode(hashlib.sha512(good).digest()).decode()
    monkeypatch.setitem(vendor.INTEGRITY, "pkg@1.0.0", pinned)
    dest = tmp_path / "vendor" / "pkg@1.0.0"
    assert vendor.fetch_npm("pkg@1.0.0", dest) == dest
    assert (dest / "dist" / "a.js").read_bytes() == b"console.log(1)\n"
    assert (dest / "LICENSE").read_bytes() == b"MIT\n"

    tampered = tarball({"dist/a.js": b"console.log(2)\n", "LICENSE": b"MIT\n"})
    (registry / "pkg" / "-" / "pkg-1.0.0.tgz").write_bytes(tampered)
    other = tmp_path / "vendor" / "other"
    with pytest.raises(SrlibError, match=r"pkg-1.0.0.tgz is not the pinned pkg@1.0.0 .*nothing was unpacked") as err:
        vendor.fetch_npm("pkg@1.0.0", other)
    assert "\n" not in str(err.value)
    assert not other.exists() and sorted(p.name for p in dest.parent.iterdir()) == ["pkg@1.0.0"]  # no temporary left

    with pytest.raises(SrlibError, match=r"cannot download .*/pkg/-/pkg-2.0.0.tgz \(.*\): the book serves pkg@2.0.0"):
        vendor.fetch_npm("pkg@2.0.0", tmp_path / "vendor" / "missing")


def test_vendoring_copies_files_patterns_and_folders(registry, tmp_path, monkeypatch):
    files = {"dist/embed.js": b"x", "dist/f1.woff2": b"1", "dist/f2.woff2": b"2", "dist/f.ttf": b"t",
             "es5/ui/menu.js": b"m", "LICENSE": b"BSD\n"}
    (registry / "@s" / "p" / "-").mkdir(parents=True)
    data = tarball(files)
    (registry / "@s" / "p" / "-" / "p-1.0.0.tgz").write_bytes(data)
    monkeypatch.setattr(vendor, "INTEGRITY", {"@s/p@1.0.0": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()})
    monkeypatch.setattr(vendor, "VENDORED", {"@s/p@1.0.0": {"dist/embed.js": "p/embed.js", "dist/*.woff2": "p",
                                                          "es5/ui": "p/ui", "LICENSE": "p/LICENSE"}})
    vendor.vendor_assets(tmp_path / "static", vendor=tmp_path / "vendor")
    copied = sorted(p.relative_to(tmp_path / "static" / "npm").as_posix()
                    for p in (tmp_path / "static" / "npm").rglob("*") if p.is_file())
    assert copied == ["p/LICENSE", "p/embed.js", "p/f1.woff2", "p/f2.woff2", "p/ui/menu.js"]
    assert (tmp_path / "vendor" / "@s__p@1.0.0" / "dist" / "f.ttf").exists()  # the whole package is cached


def path_without_node() -> str:
    """PATH minus every folder that holds ``node`` or ``npm``."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(f for f in folders if not any(Path(f, exe).exists() for exe in ("node", "npm")))


@pytest.mark.slow
def test_the_real_packages_vendor_with_no_node_on_path(tmp_path):
    """What a user without Node.js meets at the first build (needs the internet, as that build does)."""
    for spec, integrity in vendor.INTEGRITY.items():  # the pins are the registry's own
        name, version = spec.rsplit("@", 1)
        with urllib.request.urlopen(f"{vendor.NPM_REGISTRY}/{name.replace('/', '%2f')}/{version}", timeout=60) as r:
            dist = json.load(r)["dist"]
        assert (dist["tarball"], dist["integrity"]) == (vendor.npm_tarball(spec), integrity)
    env = {**os.environ, "PATH": path_without_node(), "PYTHONPATH": str(book.ROOT)}
    assert shutil.which("node", path=env["PATH"]) is None and shutil.which("npm", path=env["PATH"]) is None
    code = ("import sys; from pathlib import Path; from srlib.book import vendor\n"
            "vendor.vendor_assets(Path(sys.argv[1]), vendor=Path(sys.argv[2]))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "static"), str(tmp_path / "vendor")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    npm = tmp_path / "static" / "npm"
    for target in ("html-manager/embed.js", "mathjax/tex-chtml.js", "mathjax/ui", "mathjax/input/tex/extensions"):
        assert (npm / target).exists(), target
    assert list((npm / "html-manager").glob("*.woff2"))
    # The licences travel with the code they cover.
    assert json.loads((npm / "html-manager" / "package.json").read_text())["license"] == "BSD-3-Clause"
    assert "Apache License" in (npm / "mathjax" / "LICENSE").read_text()
    assert (npm / "html-manager" / "embed.js.LICENSE.txt").stat().st_size > 0
