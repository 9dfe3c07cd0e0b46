"""Every bad input gets one clear line naming the path and the fix; nothing is written.

Each case is refused twice: by building the dataset (SrlibError, one line) and
by ``srlib data check`` (exit 2, ``srlib: error:`` lines, no traceback).
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srlib.cli import main
from srlib.data import folder_dataset
from srlib.errors import SrlibError
from tiny_datasets import snapshot, write_category


def refused(capsys, root, category="bottle", dataset="mvtec", split="test"):
    """The dataset's error and the CLI's error lines for one bad folder."""
    before = snapshot(root) if root.is_dir() else None
    with pytest.raises(SrlibError) as raised:
        folder_dataset(dataset, root, category, split)
    capsys.readouterr()
    assert main(["data", "check", "--dataset", dataset, "--root", str(root), "--category", category]) == 2
    out = capsys.readouterr()
    errors = [line.removeprefix("srlib: error: ") for line in out.err.splitlines() if line.startswith("srlib: error: ")]
    assert errors and "Traceback" not in out.err
    assert (snapshot(root) if root.is_dir() else None) == before, "checking must not write"
    message = str(raised.value)
    assert "\n" not in message and message.split(" (")[0] in "\n".join(errors)
    return message, errors


def test_root_missing(tmp_path, capsys):
    message, _ = refused(capsys, tmp_path / "nowhere")
    assert message.startswith(f"dataset root {tmp_path / 'nowhere'} does not exist; pass the folder that holds")


def test_root_is_a_file(tmp_path, capsys):
    (tmp_path / "root.zip").write_bytes(b"PK")
    message, _ = refused(capsys, tmp_path / "root.zip")
    assert "is a file, not a folder" in message


def test_category_missing_lists_what_is_there(tmp_path, capsys):
    write_category(tmp_path, "bottle")
    write_category(tmp_path, "carpet")
    message, _ = refused(capsys, tmp_path, "cable")
    assert f"{tmp_path / 'cable'} does not exist; the root holds: bottle, carpet" in message


def test_root_that_is_a_category_folder_points_at_its_parent(tmp_path, capsys):
    folder = write_category(tmp_path, "bottle")
    message, _ = refused(capsys, folder, "bottle")
    assert message == f"{folder} is itself a category folder (it holds train/ and test/); pass its parent {tmp_path} as the root"


def test_unknown_category_lists_the_valid_ones(tmp_path, capsys):
    write_category(tmp_path, "bottle")
    message, _ = refused(capsys, tmp_path, "botle")
    assert "unknown MVTec AD category 'botle'" in message
    assert "valid: bottle, cable, capsule, carpet, grid" in message and "the root holds: bottle" in message


def test_category_is_a_file(tmp_path, capsys):
    (tmp_path / "bottle").write_text("not a folder")
    message, _ = refused(capsys, tmp_path)
    assert f"{tmp_path / 'bottle'} is a file where the category folder should be" in message


def test_empty_train_good(tmp_path, capsys):
    folder = write_category(tmp_path, "bottle")
    for image in (folder / "train" / "good").iterdir():
        image.unlink()
    message, _ = refused(capsys, tmp_path, split="train")
    assert message.startswith(f"{folder / 'train' / 'good'} holds no images; put the defect-free training images there")


def test_defective_image_without_mask(tmp_path, capsys):
    folder = write_category(tmp_path, "bottle")
    mask = folder / "ground_truth" / "crack" / "001_mask.png"
    mask.unlink()
    message, _ = refused(capsys, tmp_path)
    assert message.startswith(f"defective image {folder / 'test' / 'crack' / '001.png'} has no mask; expected {mask}")


def test_mask_without_image(tmp_path, capsys):
    folder = write_category(tmp_path, "bottle")
    (folder / "test" / "scratch" / "000.png").unlink()
    message, _ = refused(capsys, tmp_path)
    assert message.startswith(f"mask {folder / 'ground_truth' / 'scratch' / '000_mask.png'} has no image")


def test_mask_of_another_size_is_resized_with_a_warning(tmp_path, capsys):
    folder = write_category(tmp_path, "bottle", size=(8, 8))
    small = np.zeros((4, 4), np.uint8)
    small[:2, :2] = 255
    Image.fromarray(small).save(folder / "ground_truth" / "crack" / "000_mask.png")
    assert main(["data", "check", "--dataset", "mvtec", "--root", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert f"srlib: warning: mask {folder / 'ground_truth' / 'crack' / '000_mask.png'} is 4x4 but its image is 8x8" in err
    item = folder_dataset("mvtec", tmp_path, "bottle", "test", image_size=8, mask_size=16)[0]
    want = torch.zeros(1, 16, 16)
    want[:, :8, :8] = 1
    assert item["path"].endswith("crack/000.png") and torch.equal(item["mask"], want)


def test_truncated_image(tmp_path, capsys):
    folder = write_category(tmp_path, "bottle")
    path = folder / "test" / "crack" / "000.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    message, _ = refused(capsys, tmp_path)
    assert message.startswith(f"{path} cannot be decoded (image file is truncated") and "replace it with an intact copy" in message


def test_corrupt_image(tmp_path, capsys):
    folder = write_category(tmp_path, "bottle")
    path = folder / "train" / "good" / "001.png"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8).tobytes())
    message, _ = refused(capsys, tmp_path, split="train")
    assert message.startswith(f"{path} is not an image Pillow can read")


def test_non_image_file_among_the_images(tmp_path, capsys):
    folder = write_category(tmp_path, "bottle")
    (folder / "test" / "crack" / "notes.txt").write_text("scratches on 000?")
    (folder / "test" / "crack" / ".DS_Store").write_bytes(b"\0")  # hidden files are ignored
    message, errors = refused(capsys, tmp_path)
    assert message.startswith(f"{folder / 'test' / 'crack' / 'notes.txt'} is not an image")
    assert f"move it out of {folder / 'test' / 'crack'}" in message and len(errors) == 1


def test_btad_folder_passed_as_mvtec_and_back(tmp_path, capsys):
    write_category(tmp_path, "01", layout="btad", suffix=".bmp")
    message, _ = refused(capsys, tmp_path, "01", dataset="mvtec")
    assert "looks like the BTAD layout (train/ok), not MVTec AD; pass dataset='btad' (--dataset btad)" in message
    write_category(tmp_path, "bottle")
    message, _ = refused(capsys, tmp_path, "bottle", dataset="btad")
    assert "looks like the MVTec AD / MPDD layout (train/good), not BTAD; pass dataset='mvtec'" in message


@pytest.mark.parametrize("where", ["test", "train/good", "ground_truth", "ground_truth/crack"])
def test_file_where_a_folder_should_be(tmp_path, capsys, where):
    folder = write_category(tmp_path, "bottle")
    shutil.rmtree(folder / where)
    (folder / where).write_text("oops")
    message, errors = refused(capsys, tmp_path, split="train" if where == "train/good" else "test")
    assert f"{folder / where} is a file where a folder should be" in "\n".join(errors)


@contextlib.contextmanager
def unprivileged():
    """Run the body as user 'nobody' when the tests run as root (root reads any file)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def world_readable_dir():
    # Not tmp_path: pytest's base folder is private to root, so 'nobody' could not enter it.
    folder = Path(tempfile.mkdtemp(prefix="srlib-perm-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_image_unreadable_for_permissions(world_readable_dir, capsys):
    folder = write_category(world_readable_dir, "bottle")
    path = folder / "test" / "good" / "001.png"
    path.chmod(0)
    with unprivileged():
        if os.access(path, os.R_OK, effective_ids=os.access in os.supports_effective_ids):
            pytest.skip("this user can read a file with mode 000")
        message, _ = refused(capsys, world_readable_dir)
    assert message == f"{path} cannot be read (permission denied); make it readable: chmod a+r '{path}'"


def test_cli_prints_counts_and_exits_zero_on_a_good_folder(tmp_path, capsys):
    write_category(tmp_path, "bottle")
    write_category(tmp_path, "01", layout="btad")
    assert main(["data", "check", "--dataset", "mvtec", "--root", str(tmp_path), "--category", "bottle"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["bottle: train: good 3 | test: crack 2, good 2, scratch 2 | masks 4", "1 category, 9 images: no problems"]


def test_cli_lists_every_problem_and_no_traceback(tmp_path):
    folder = write_category(tmp_path, "bottle")
    (folder / "ground_truth" / "crack" / "000_mask.png").unlink()
    (folder / "test" / "scratch" / "junk.txt").write_text("")
    run = subprocess.run(
        [sys.executable, "-m", "srlib", "data", "check", "--dataset", "mvtec", "--root", str(tmp_path)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("srlib: error: ")]
    assert len(errors) == 2 and "has no mask" in errors[0] + errors[1] and "junk.txt is not an image" in errors[0] + errors[1]
    assert run.stdout.splitlines()[-1] == "1 category, 9 images: 2 problem(s), listed above"
