"""Every bad input gets one clear line naming the path and the fix; nothing is written.

Each case is refused twice: by building the dataset (SrlibError, one line) and
by ``srlib data check`` (exit 2, ``srlib: error:`` lines, no traceback).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srlib.cli import main
from srlib.data import folder_dataset
from srlib.errors import SrlibError
from tiny_datasets import snapshot, unprivileged, write_category


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
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("srlib: error: ")]
    assert len(errors) == 2 and "has no mask" in errors[0] + errors[1] and "junk.txt is not an image" in errors[0] + errors[1]
    assert run.stdout.splitlines()[-1] == "1 category, 9 images: 2 problem(s), listed above"


# --- what only decoding shows, and splits the metrics are undefined on -------------------------------------------


def check_lines(capsys, root):
    """(exit status, warning lines, error lines) of ``srlib data check`` on ``root``."""
    status = main(["data", "check", "--dataset", "mvtec", "--root", str(root)])
    err = capsys.readouterr().err.splitlines()
    assert "Traceback" not in "\n".join(err)
    return (status, [line.removeprefix("srlib: warning: ") for line in err if line.startswith("srlib: warning: ")],
            [line.removeprefix("srlib: error: ") for line in err if line.startswith("srlib: error: ")])


def test_a_jpeg_mask_is_warned_about_and_read_without_its_noise(tmp_path, capsys):
    folder = write_category(tmp_path, "bottle", size=(64, 64))
    drawn = np.zeros((64, 64), np.uint8)
    drawn[10:40, 12:30] = 255
    (folder / "ground_truth" / "crack" / "000_mask.png").unlink()
    jpeg = folder / "ground_truth" / "crack" / "000_mask.jpg"
    Image.fromarray(drawn).save(jpeg, quality=75)
    assert check_lines(capsys, tmp_path) == (0, [
        f"mask {jpeg} is a JPEG, whose lossy compression turns its edges grey (srlib binarises masks at mid-grey); "
        "save masks as PNG"], [])
    item = folder_dataset("mvtec", tmp_path, "bottle", "test", image_size=16, mask_size=64)[0]
    assert item["path"].endswith("crack/000.png") and torch.equal(item["mask"][0], torch.from_numpy(drawn > 0).float())


def test_an_empty_mask_of_a_defective_image_is_flagged(tmp_path, capsys):
    folder = write_category(tmp_path, "bottle")
    mask = folder / "ground_truth" / "crack" / "000_mask.png"
    Image.new("L", (8, 8), 100).save(mask)  # dim grey: below mid-grey, so no defect pixel
    assert check_lines(capsys, tmp_path) == (0, [
        f"mask {mask} is empty (no pixel at mid-grey or above) although its image is in test/crack; "
        "draw the defect in it, or move 000.png to the good test images"], [])


def test_every_mask_empty_is_refused_before_any_work(tmp_path, capsys):
    folder = write_category(tmp_path, "bottle")
    for mask in (folder / "ground_truth").rglob("*.png"):
        Image.new("L", (8, 8), 0).save(mask)
    status, warned, errors = check_lines(capsys, tmp_path)
    message = (f"every mask in {folder / 'ground_truth'} is empty (no pixel at mid-grey or above), so pixel AUROC "
               "and AUPRO are undefined; draw each defect in its mask, white on black")
    assert (status, len(warned), errors) == (2, 4, [message])
    with pytest.raises(SrlibError) as raised:
        folder_dataset("mvtec", tmp_path, "bottle", "test")
    assert str(raised.value) == message
    assert len(folder_dataset("mvtec", tmp_path, "bottle", "train")) == 3  # training needs no masks


@pytest.mark.parametrize("case", ["only good", "only defective", "empty"])
def test_a_test_split_the_metrics_are_undefined_on_is_refused_naming_it(tmp_path, capsys, case):
    folder = write_category(tmp_path, "bottle")
    if case != "only defective":
        for defect in ("crack", "scratch"):
            shutil.rmtree(folder / "test" / defect)
        shutil.rmtree(folder / "ground_truth")
    if case != "only good":
        for image in (folder / "test" / "good").iterdir():
            image.unlink()
    message, errors = refused(capsys, tmp_path)
    test = folder / "test"
    assert errors == [message] and message == {
        "only good": f"{test} holds only good images; the metrics need defective ones: add {test}/<defect> folders "
                     f"of images with masks in {folder / 'ground_truth'}/<defect>",
        "only defective": f"{test / 'good'} holds no images; image AUROC needs defect-free test images: add some there",
        "empty": f"{test} holds no test images; the metrics need defect-free images in {test / 'good'} and defective "
                 f"ones in {test}/<defect> with masks in {folder / 'ground_truth'}/<defect>",
    }[case]
    assert len(folder_dataset("mvtec", tmp_path, "bottle", "train")) == 3


@pytest.mark.parametrize("where, mode", [
    ("test/crack", 0), ("ground_truth/crack", 0), ("ground_truth", 0), ("test", 0), ("train/good", 0), ("", 0),
    ("test/crack", 0o644), ("ground_truth", 0o644),  # readable but not searchable: names without files
])
def test_a_folder_that_cannot_be_listed_is_one_line(world_readable_dir, capsys, where, mode):
    folder = write_category(world_readable_dir, "bottle")
    target = folder / where
    target.chmod(mode)
    try:
        with unprivileged():
            if os.access(target / ".", os.X_OK, effective_ids=os.access in os.supports_effective_ids):
                pytest.skip("this user can search a folder without permission")
            status, warned, errors = check_lines(capsys, world_readable_dir)
    finally:
        target.chmod(0o755)
    assert (status, warned) == (2, [])
    assert errors == [f"{target} cannot be listed (permission denied); make it readable: chmod a+rx '{target}'"]


def test_a_category_given_as_a_path_is_the_folder_it_names(tmp_path, monkeypatch):
    from srlib.data.layouts import category_name

    folder = write_category(tmp_path / "data", "bottle")
    monkeypatch.chdir(tmp_path)
    for given in (str(folder), str(folder) + "/", "data/bottle", "./data/../data/bottle/"):
        assert category_name(tmp_path / "data", given) == "bottle"
        assert folder_dataset("mvtec", tmp_path / "data", given, "train").paths == \
            folder_dataset("mvtec", tmp_path / "data", "bottle", "train").paths
    other = write_category(tmp_path / "elsewhere", "bottle")
    with pytest.raises(SrlibError) as raised:
        category_name(tmp_path / "data", str(other))
    assert str(raised.value) == (f"category {str(other)!r} is a path to {other}, which is not a folder directly inside "
                                 f"the root {tmp_path / 'data'}; pass the category's folder name (e.g. bottle), "
                                 "or make its parent the root")


def test_an_exif_orientation_is_warned_about(tmp_path, capsys):
    folder = write_category(tmp_path, "bottle")
    image = folder / "test" / "crack" / "001.png"
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    Image.open(image).convert("RGB").save(image, exif=exif.tobytes())
    assert check_lines(capsys, tmp_path) == (0, [
        f"{image} carries an EXIF orientation (6: viewers show it turned or mirrored); srlib reads its pixels as "
        "stored, so a mask drawn on the turned view will not fit: save the image as it is shown "
        "(e.g. PIL.ImageOps.exif_transpose)"], [])
