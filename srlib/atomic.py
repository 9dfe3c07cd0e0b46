"""Atomic file writes: a reader sees the old file or the new one, never half.

The bytes go to a temporary file in the target's folder, which is flushed,
fsync'ed and renamed over the target; the folder is then fsync'ed so the
rename itself survives a power cut. A crash at any moment leaves at worst a
stray ``.<name>.*.tmp`` beside an intact target (``remove_stale_temporaries``
clears them).

``SRLIB_TEST_PAUSE_MID_WRITE`` (seconds) makes every write pause half-way,
with the first half flushed to disk: the crash tests kill the process there.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

PAUSE_ENV = "SRLIB_TEST_PAUSE_MID_WRITE"


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a temporary file, then move it onto ``path``."""
    path = Path(path)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # mkstemp's 0600 would make results private to their owner
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as raw:
            file = _PausingWriter(raw, float(os.environ[PAUSE_ENV])) if os.environ.get(PAUSE_ENV) else raw
            write(file)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def save_torch(obj, path: str | Path) -> None:
    """``torch.save`` made atomic."""
    import torch

    atomic_write(path, lambda f: torch.save(obj, f))


def remove_stale_temporaries(path: str | Path) -> None:
    """Delete temporaries a killed writer of ``path`` left behind."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


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


class _PausingWriter:
    """A file wrapper that flushes and sleeps once, after the first half (test hook)."""

    def __init__(self, raw: BinaryIO, seconds: float):
        self.raw, self.seconds, self.paused = raw, seconds, False

    def write(self, data) -> int:
        if self.paused or len(data) < 2:
            return self.raw.write(data)
        half = len(data) // 2
        written = self.raw.write(data[:half])
        self.raw.flush()
        os.fsync(self.raw.fileno())
        self.paused = True
        time.sleep(self.seconds)
        return written + self.raw.write(data[half:])

    def flush(self) -> None:
        self.raw.flush()
