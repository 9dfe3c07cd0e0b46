"""Issue 19, the data layer: nothing a user put in a folder is removed, mixed in or silently skipped."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srlib.cli import main
from srlib.data import TEXTURE_CATEGORIES, make_textures
from srlib.data.plain import list_images
from srlib.errors import SrlibError
from tiny_datasets import snapshot


@pytest.fixture(scope="module")
def written(tmp_path_factory, textures_root):
    """A copy of the session's bundled categories, as ``srlib data textures`` left them."""
    out = tmp_path_factory.mktemp("written") / "textures"
    shutil.copytree(textures_root, out)  # copies change the files' times, not their contents
    return out


def test_textures_run_again_keeps_what_the_user_added_or_changed(written, capsys):
    """Case 1: an image added to brick/train/good, a notes file in brick/, a changed image: refused, nothing removed."""
    added = written / "brick" / "train" / "good" / "mine.png"
    shutil.copy(written / "brick" / "train" / "good" / "000.png", added)
    (written / "cup" / "notes.txt").write_text("my notes\n")
    changed = written / "coin" / "test" / "good" / "003.png"
    original = changed.read_bytes()
    changed.write_bytes((written / "coin" / "test" / "good" / "004.png").read_bytes())
    before = snapshot(written)
    assert main(["data", "textures", str(written)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("srlib: error: ") and "nothing was written" in err
    assert f"brick, coin, cup in {written} hold what srlib data textures did not write" in err
    assert all(str(path) in err for path in (added, written / "cup" / "notes.txt", changed))
    assert snapshot(written) == before  # nothing written, nothing removed
    with pytest.raises(SrlibError, match=r"brick, coin, cup in .* hold"):
        make_textures(written)
    # Moved out of the way, the categories are written again; the user's files are theirs to keep.
    added.unlink()
    (written / "cup" / "notes.txt").unlink()
    changed.write_bytes(original)
    assert main(["data", "textures", str(written)]) == 0
    assert sorted(p.name for p in written.iterdir()) == sorted([*TEXTURE_CATEGORIES, ".srlib-textures.lock"])


def test_textures_refuse_a_category_folder_that_is_a_link(tmp_path, written):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "brick").symlink_to(written / "brick")
    with pytest.raises(SrlibError, match=r"brick exists and was not written by srlib data textures"):
        make_textures(tmp_path / "out")


def noise_png(path: Path, seed: int, size=(20, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_linked_folders_are_followed_once_and_hidden_names_said(tmp_path):
    """Case 6: a linked sub-folder's images are used; a link back is not followed twice; dot-names are said."""
    elsewhere = tmp_path / "elsewhere"
    for i in range(5):
        noise_png(elsewhere / f"e{i}.png", i)
    good = tmp_path / "good"
    noise_png(good / "a.png", 9)
    (good / "more").symlink_to(elsewhere, target_is_directory=True)
    (good / "again").symlink_to(elsewhere, target_is_directory=True)  # the same folder by a second link
    (elsewhere / "loop").symlink_to(good, target_is_directory=True)  # and a way back
    noise_png(good / ".hidden.png", 10)
    noise_png(good / ".thumbs" / "t.png", 11)
    found = list_images(good)
    assert found.names() == ["a.png"] + [f"again/e{i}.png" for i in range(5)]  # each image once
    lines = " ".join(found.skipped)
    assert "2 linked folder(s) under" in lines and "already searched by another path: again/loop/, more/" in lines
    assert "2 hidden name(s)" in lines
    assert ".hidden.png" in lines and ".thumbs/" in lines


def test_a_pdf_is_not_an_image_and_a_quoted_tilde_is_home(tmp_path, monkeypatch):
    """Case 9: Pillow writes PDFs but cannot read them: left alone, not 'corrupt'; '~/good' is expanded."""
    good = tmp_path / "good"
    noise_png(good / "a.png", 1)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(good / "report.pdf")
    found = list_images(good)
    assert [p.name for p in found.paths] == ["a.png"] and [p.name for p in found.others] == ["report.pdf"]
    monkeypatch.setenv("HOME", str(tmp_path))
    assert list_images("~/good").paths == [good / "a.png"]


def test_textures_refuse_a_seed_numpy_cannot_take(tmp_path, capsys):
    assert main(["data", "textures", str(tmp_path / "t"), "--seed", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "srlib: error: --seed must be a whole number from 0 to 2**63 - 1, got -1"
    assert not (tmp_path / "t").exists()


def test_textures_killed_midway_leave_nothing_behind_at_the_next_run(tmp_path, monkeypatch):
    """A run killed while it writes a category leaves its staging folder; the next run removes it (and only it)."""
    import srlib.data.textures as textures

    def killed(folder, category, seed):
        (folder / "train" / "good").mkdir(parents=True)
        raise SystemExit("killed")  # stands for SIGKILL: the staging folder is not cleaned up

    monkeypatch.setattr(textures.shutil, "rmtree", lambda *a, **k: None)
    monkeypatch.setattr(textures, "_write_category", killed)
    with pytest.raises(SystemExit):
        make_textures(tmp_path)
    monkeypatch.undo()
    (left,) = [p for p in tmp_path.iterdir() if p.name.startswith(".brick-")]
    (tmp_path / ".brick-notes").mkdir()  # someone's own hidden folder, named alike
    make_textures(tmp_path)
    assert not left.exists() and (tmp_path / ".brick-notes").exists()
