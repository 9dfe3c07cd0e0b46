"""Per-epoch cost of the folder dataset with its decode-once cache, against decoding per item.

Writes N photographs-like 1024x1024 RGB PNGs (smooth structure plus grain,
so they compress like real photos) in the MVTec AD layout in a temporary
folder, then times, in this one process:

- building ``folder_dataset`` (decode + Lanczos once, into memory);
- one epoch over it with a DataLoader (batch 16);
- one epoch over a dataset that decodes and resizes in ``__getitem__``.

Prints seconds and ratios; the ratio is what to read (other processes on the
machine change the seconds). Usage: ``python benchmarks/data_cache.py [N]``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from srlib.data import folder_dataset
from srlib.data.images import image_pixels

SIDE, IMAGE_SIZE, BATCH = 1024, 192, 16


class DecodeEveryTime(Dataset):
    """The baseline: the same decode and resize, done on every access."""

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return {"image": torch.from_numpy(image_pixels(self.paths[i], IMAGE_SIZE)).float().div(255).mul(2).sub(1)}


def write_images(folder: Path, n: int, unique: int = 20) -> list[Path]:
    """``n`` PNGs in train/good (``unique`` distinct ones, copied: encoding is slow), one in test/good."""
    rng = np.random.default_rng(0)
    good = folder / "bench" / "train" / "good"
    good.mkdir(parents=True)
    paths = []
    for i in range(n):
        paths.append(good / f"{i:03d}.png")
        if i >= unique:
            shutil.copyfile(paths[i % unique], paths[-1])
            continue
        coarse = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
        grain = rng.integers(-6, 7, (SIDE, SIDE, 3))
        pixels = np.clip(np.asarray(coarse, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(paths[-1])
    (folder / "bench" / "test" / "good").mkdir(parents=True)
    shutil.copyfile(paths[0], folder / "bench" / "test" / "good" / "000.png")
    return paths


def epoch_seconds(dataset) -> float:
    start = time.perf_counter()
    for batch in DataLoader(dataset, batch_size=BATCH, shuffle=True):
        batch["image"].sum()
    return time.perf_counter() - start


def main(n: int = 200) -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        paths = write_images(root, n)
        mb = sum(p.stat().st_size for p in paths) / 2**20
        print(f"wrote {n} PNGs of {SIDE}x{SIDE} ({mb:.0f} MB) in {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        cached = folder_dataset("mvtec", root, "bench", "train", image_size=IMAGE_SIZE)
        build = time.perf_counter() - t
        cached_epoch = min(epoch_seconds(cached) for _ in range(3))
        uncached_epoch = epoch_seconds(DecodeEveryTime(paths))

    print(f"cache build (decode + Lanczos once, threaded): {build:.2f} s")
    print(f"epoch from the cache:                          {cached_epoch:.3f} s")
    print(f"epoch decoding every item:                     {uncached_epoch:.2f} s")
    print(f"ratio decode-every-epoch / cached epoch:       {uncached_epoch / cached_epoch:.0f}x")
    for epochs in (100, 3000):
        ratio = (epochs * uncached_epoch) / (build + epochs * cached_epoch)
        print(f"{epochs} epochs of data loading: {epochs * uncached_epoch / 60:.1f} min without the cache, "
              f"{(build + epochs * cached_epoch) / 60:.2f} min with it ({ratio:.0f}x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
