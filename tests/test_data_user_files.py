"""Issue 19, the data layer: nothing a user put in a folder is removed, mixed in or silently skipped."""

import shutil
from pathlib import Path

import pytest

from srlib.cli import main
from srlib.data import TEXTURE_CATEGORIES, make_textures
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
    assert sorted(p.name for p in written.iterdir()) == sorted(TEXTURE_CATEGORIES)


def test_textures_refuse_a_category_folder_that_is_a_link(tmp_path, written):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "brick").symlink_to(written / "brick")
    with pytest.raises(SrlibError, match=r"brick exists and was not written by srlib data textures"):
        make_textures(tmp_path / "out")
