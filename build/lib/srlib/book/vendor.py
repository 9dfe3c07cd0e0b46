"""The JavaScript the book serves itself: pinned npm packages, downloaded once, checked, unpacked.

The pages load the ipywidgets embed manager and MathJax. They are downloaded
from the npm registry at the first build, checked against the sha512 pinned
below, and cached (``_build/vendor``): they are several MB, too large to keep
in the repository, and they must be served by the book itself so that the
HTML works offline. Python does the download, so the build needs no Node.js.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path, PurePosixPath

from srlib.book import say
from srlib.errors import SrlibError

NPM_REGISTRY = "https://registry.npmjs.org"
# tarfile's safe "data" extraction filter exists from Python 3.10.12, 3.11.4 and 3.12 on: Debian 12's
# python3 (3.11.2) lacks it. There, the same refusals are made here before a plain extractall.
DATA_FILTER = hasattr(tarfile, "data_filter")
# The "dist.integrity" of each package's registry metadata (what npm itself checks).
INTEGRITY = {
    "@jupyter-widgets/html-manager@1.0.15":
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
    "mathjax@3.2.2":
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
}
# npm package -> {path inside the package: path under book/_static/npm/}.
VENDORED = {
    "@jupyter-widgets/html-manager@1.0.15": {
        "dist/embed.js": "html-manager/embed.js",
        "dist/embed.js.LICENSE.txt": "html-manager/embed.js.LICENSE.txt",
        # Font Awesome, which the widgets' stylesheet (inside embed.js) loads from beside it.
        "dist/*.woff2": "html-manager",
        "package.json": "html-manager/package.json",  # names the licence (BSD-3-Clause)
    },
    "mathjax@3.2.2": {
        "es5/tex-chtml.js": "mathjax/tex-chtml.js",
        "es5/input/tex/extensions": "mathjax/input/tex/extensions",
        "es5/output/chtml/fonts/woff-v2": "mathjax/output/chtml/fonts/woff-v2",
        "es5/ui": "mathjax/ui",
        "es5/a11y": "mathjax/a11y",
        "LICENSE": "mathjax/LICENSE",
    },
}


def npm_tarball(spec: str) -> str:
    """The registry URL of a pinned package's tarball: ``@scope/name@1.0`` -> ``.../@scope/name/-/name-1.0.tgz``."""
    name, version = spec.rsplit("@", 1)
    return f"{NPM_REGISTRY}/{name}/-/{name.split('/')[-1]}-{version}.tgz"


def download(url: str) -> bytes:
    """The bytes at ``url``, with a progress bar (honours ``https_proxy``)."""
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=60) as response, \
            tqdm(total=int(response.headers.get("Content-Length") or 0) or None, unit="B", unit_scale=True,
                 desc=url.rsplit("/", 1)[-1], leave=False) as bar:
        chunks = []
        while chunk := response.read(1 << 16):
            chunks.append(chunk)
            bar.update(len(chunk))
    return b"".join(chunks)


def fetch_npm(spec: str, dest: Path) -> Path:
    """Unpack the pinned npm package ``spec`` into ``dest``; returns ``dest``.

    The tarball is refused unless its sha512 is the one pinned in ``INTEGRITY``.
    """
    url = npm_tarball(spec)
    try:
        data = download(url)
    except OSError as err:  # urllib's URLError and timeouts are OSErrors
        raise SrlibError(f"cannot download {url} ({getattr(err, 'reason', err)}): the book serves {spec} "
                         "itself and takes it once from the npm registry; connect to the internet "
                         "(or set https_proxy) and build again") from None
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY[spec]:
        raise SrlibError(f"{url} is not the pinned {spec} (its sha512 is {digest}, expected {INTEGRITY[spec]}); "
                         "nothing was unpacked: check the network or proxy and build again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        unpack(data, Path(tmp), url)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(Path(tmp) / "package", dest)
    return dest


def unpack(data: bytes, folder: Path, source: str) -> None:
    """Unpack the tarball ``data`` (from ``source``) into ``folder``: plain files and folders only, each inside it.

    Anything else (a link, a device, an absolute path, a ``..``) refuses the
    whole tarball before a byte is written, on every Python: with tarfile's
    ``data`` filter where it exists, by the checks below where it does not.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = tar.getmembers()
            for member in members:
                name = PurePosixPath(member.name)
                if not (member.isfile() or member.isdir()) or name.is_absolute() or ".." in name.parts:
                    raise SrlibError(f"{source} holds {member.name!r}, which is not a plain file or folder inside "
                                     "the package; nothing was unpacked: build again, and report it if it persists")
            if DATA_FILTER:
                tar.extractall(folder, filter="data")
            else:
                tar.extractall(folder, members=members)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise SrlibError(f"cannot unpack {source} into {folder} ({err}): check the free space and build again") from None


def vendor_assets(static: Path, vendor: Path) -> None:
    """Copy the pinned JavaScript into ``static/npm`` (fetched once into ``vendor``)."""
    for spec, files in VENDORED.items():
        package = vendor / spec.replace("/", "__")
        if not package.exists():
            say(f"downloading {spec} from the npm registry (once; cached in {vendor})")
            fetch_npm(spec, package)
        for source, target in files.items():
            # A pattern copies its matches into the target folder.
            pairs = ([(src, static / "npm" / target / src.name) for src in package.glob(source)]
                     if "*" in source else [(package / source, static / "npm" / target)])
            if not pairs or not all(src.exists() for src, _ in pairs):
                raise SrlibError(f"{spec} has no {source}: delete {package} to fetch it again")
            for src, dst in pairs:
                dst.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, dst, dirs_exist_ok=True)
                else:
                    shutil.copy2(src, dst)


def check_unpacking() -> None:
    """Unpack a small tarball as the build unpacks the real ones: what ``python -m srlib.make`` checks first."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("package/dist/a.js", b"1\n"), ("package/LICENSE", b"MIT\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with tempfile.TemporaryDirectory() as tmp:
        unpack(buffer.getvalue(), Path(tmp), "a test tarball")
        if (Path(tmp) / "package" / "dist" / "a.js").read_bytes() != b"1\n":
            raise SrlibError("a test tarball unpacked to other bytes")


if __name__ == "__main__":  # python -m srlib.book.vendor: the check alone, with this Python
    try:
        check_unpacking()
    except SrlibError as err:
        raise SystemExit(f"srlib.book.vendor: error: {err}") from None
