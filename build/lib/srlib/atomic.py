"""Atomic file writes: a reader sees the old file or the new one, never half.

The bytes go to a temporary file in the target's folder, which is flushed,
fsync'ed and renamed over the target; the folder is then fsync'ed so the
rename itself survives a power cut. A crash at any moment leaves at worst a
stray ``.<name>.*.tmp`` beside an intact target (``remove_stale_temporaries``
clears them). A write that fails (a full disk, a read-only folder) raises
one ``SrlibError`` naming the file; the previous file stays as it was.

``SRLIB_TEST_PAUSE_MID_WRITE`` (seconds) makes every write pause half-way,
with the first half flushed to disk: the crash tests kill the process there.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from srlib.errors import SrlibError

PAUSE_ENV = "SRLIB_TEST_PAUSE_MID_WRITE"


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a temporary file, then move it onto ``path``."""
    path = Path(path)
    temp = file = None
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path), suffix=".tmp")
        if hasattr(os, "fchmod"):  # mkstemp's 0600 would make results private to their owner
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as raw:
            file = _Writer(raw, float(os.environ.get(PAUSE_ENV) or 0))
            write(file)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temp, path)
    except BaseException as err:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
        # torch.save reports a failed write as a RuntimeError of its own: the OSError is kept by the writer.
        failed = err if isinstance(err, OSError) else getattr(file, "error", None)
        if failed is None:
            raise
        raise _cannot_write(path, failed, "the previous version is kept") from None
    _fsync_dir(path.parent)


@contextlib.contextmanager
def exclusive(lock: str | Path, busy: str):
    """Hold the lock file ``lock`` for the block (``filelock``: released even if the process is killed).

    Raises ``SrlibError(busy)`` at once if another process holds it. The
    file stays behind, empty; it is what says a folder is in use.
    """
    from filelock import FileLock, Timeout

    held = FileLock(str(lock), timeout=0)
    try:
        held.acquire()
    except Timeout:
        raise SrlibError(busy) from None
    except OSError as err:
        raise _cannot_write(Path(lock), err, "nothing was written") from None
    try:
        yield
    finally:
        held.release()


def append_text(path: str | Path, text: str) -> None:
    """Append to a log file (not atomic: a reader of logs skips a last line without its newline)."""
    try:
        with open(path, "a") as file:
            file.write(text)
    except OSError as err:
        raise _cannot_write(Path(path), err, "the lines before are kept") from None


def _cannot_write(path: Path, err: OSError, kept: str) -> SrlibError:
    full = err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    kept = f"{kept}; " if path.exists() else ""
    return SrlibError(f"cannot write {path} ({err.strerror or err}); {kept}"
                      f"{'free some space or ' if full else ''}choose another output folder")


def output_folder(path: str | Path, what: str = "--out") -> Path:
    """``path`` as a folder this process can write into, created if need be; one clear error if it cannot be."""
    path = Path(path).expanduser()
    blocker = next((p for p in (path, *path.parents) if _is_file(p)), None)
    if blocker is not None:
        inside = "" if blocker == path else f" (inside the file {blocker})"
        raise SrlibError(f"{what} {path} is not a folder{inside}; pass a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SrlibError(f"{what} {path} cannot be created ({err.strerror or err}); choose a folder you can write to") from None
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".srlib-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise SrlibError(f"{what} {path} cannot be written to ({err.strerror or err}); choose a folder you can write to") from None
    return path


def write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def save_torch(obj, path: str | Path) -> None:
    """``torch.save`` made atomic."""
    import torch

    atomic_write(path, lambda f: torch.save(obj, f))


def _temporary_prefix(path: Path) -> str:
    """``.<name>.`` for a temporary beside ``path``; a long name is cut, so that the temporary's name is never too long."""
    return f".{os.fsdecode(os.fsencode(path.name)[:100])}."  # bytes: file names are limited in bytes


def remove_stale_temporaries(path: str | Path) -> None:
    """Delete temporaries a killed writer of ``path`` left behind."""
    path = Path(path)
    for stale in path.parent.glob(f"{glob.escape(_temporary_prefix(path))}*.tmp"):
        stale.unlink(missing_ok=True)


def _is_file(path: Path) -> bool:
    try:
        return path.exists() and not path.is_dir()
    except OSError:  # a folder on the way cannot be searched: mkdir will say so
        return False


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its rename is durable enough
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Writer:
    """The temporary file as ``write`` sees it: keeps the first OSError; pauses half-way if asked (test hook)."""

    def __init__(self, raw: BinaryIO, pause: float):
        self.raw, self.pause, self.error = raw, pause, None

    def write(self, data) -> int:
        try:
            if not self.pause or len(data) < 2:
                return self.raw.write(data)
            half = len(data) // 2
            written = self.raw.write(data[:half])
            self.raw.flush()
            os.fsync(self.raw.fileno())
            seconds, self.pause = self.pause, 0.0
            time.sleep(seconds)
            return written + self.raw.write(data[half:])
        except OSError as err:
            self.error = self.error or err
            raise

    def __getattr__(self, name):  # tell, seek, read...: writers such as numpy's zip files want a whole file
        return getattr(self.raw, name)
