"""One category's run folder (shared with chapter 5) and where released checkpoints are found."""

from __future__ import annotations

import re
from pathlib import Path

from srlib.errors import SrlibError
from srlib.run.files import CHAPTER5, FAILED, GALLERY, K_SWEEP, LOCK, OVERLAYS, RESULT, TRAIN, WEIGHTS, n_draws_folder

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
CHAPTER6 = "06_results.ipynb"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


def run_folder(out_dir: str | Path, dataset: str, root: str | Path, category: str) -> Path:
    """``out_dir/<dataset name>/<category>``; the bundled textures are filed under ``textures``."""
    from srlib.run.evaluate import data_source

    return Path(out_dir) / data_source(dataset, root, category)[0] / category


def clear_run_folder(folder: Path) -> None:
    """Empty a category folder written by chapter 5, to start over; refuse any other folder."""
    import shutil

    if not folder.exists():
        return
    ours = {RESULT, FAILED, LOCK, TRAIN, K_SWEEP, GALLERY, OVERLAYS}
    foreign = [p.name for p in folder.iterdir()
               if p.name not in ours and not p.name.startswith((n_draws_folder(""), Path(CHAPTER5).stem))]
    if foreign:
        raise SrlibError(f"{folder} holds files chapter 5 did not write ({', '.join(sorted(foreign)[:3])}); "
                         "choose another out_dir or move them away")
    for path in folder.iterdir():
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def find_checkpoint(folder: str | Path, category: str) -> Path:
    """The released checkpoint of ``category`` in ``folder``.

    Accepted, in this order: ``<category>.pt`` (or .pth, .ckpt, .bin);
    ``<category>/`` holding ``model.pt``, exactly one checkpoint file, or
    ``train/model.pt`` (an srlib run folder); a single file whose name
    contains the category as a word (``mvtec_bottle_ema.pth``, ``bottle-3000.pt``).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SrlibError(f"checkpoint folder {folder} does not exist; pass the folder that holds the released checkpoints")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
    exact = [p for p in files if p.stem == category]
    if len(exact) == 1:
        return exact[0]
    inside = folder / category
    if inside.is_dir():
        candidates = sorted(p for p in inside.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
        single = candidates if len(candidates) == 1 else []
        for preferred in (inside / WEIGHTS, *single, inside / TRAIN / WEIGHTS):
            if preferred.is_file():
                return preferred
        if candidates:
            raise SrlibError(f"{inside} holds {len(candidates)} checkpoint files ({', '.join(p.name for p in candidates)}); "
                             "keep one, or name the one to use model.pt")
    word = re.compile(rf"(^|[^a-z0-9]){re.escape(category.lower())}($|[^a-z0-9])")
    named = [p for p in files if word.search(p.stem.lower())]
    if len(named) == 1:
        return named[0]
    if named:
        raise SrlibError(f"several checkpoints in {folder} name {category!r}: {', '.join(p.name for p in named)}; "
                         f"keep one, or rename the one to use {category}.pth")
    raise SrlibError(f"no checkpoint for {category!r} in {folder}: expected {category}.pth (or .pt), "
                     f"a folder {category}/ with one checkpoint in it, or a file whose name contains {category!r}")
