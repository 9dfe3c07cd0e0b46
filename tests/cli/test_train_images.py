"""Issue 19, training on a plain folder: every image the user gave is used once, nothing of srlib's is."""

import json
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import srlib.run.holdout
from srlib.cli import main
from srlib.data.plain import list_images, read_folder
from srlib.errors import SrlibError
from srlib.run.files import written_by

TINY = ["--preset", "cpu", "--epochs", "1", "--image-size", "16", "--width", "8", "--batch-size", "4",
        "--device", "cpu", "--no-progress"]


def noise_png(path: Path, seed: int, size=(20, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def train(good, out, *more):
    return main(["train", "--images", str(good), "--out", str(out), *TINY, *more])


def held_out(out) -> list[str]:
    return json.loads((Path(out) / "holdout.json").read_text())["images"]


def test_a_prediction_inside_the_good_folder_is_not_trained_on(tmp_path, capsys):
    """Case 4: an earlier srlib predict --out inside --images: its overlays are left alone, with one line."""
    good = tmp_path / "good"
    for i in range(6):
        noise_png(good / f"g{i}.png", i)
    earlier = good / "checked"  # what `srlib predict --out good/checked` leaves
    for i in range(4):
        noise_png(earlier / "overlays" / f"n{i}.png.png", 100 + i, (40, 20))
    (earlier / "scores.csv").write_text("image,score,anomalous,error\n")
    (earlier / "prediction.json").write_text("{}\n")
    assert train(good, tmp_path / "run") == 0
    err = capsys.readouterr().err
    assert "left alone what srlib wrote under" in err and "checked/ (srlib predict's output)" in err
    assert not any("checked" in p for p in held_out(tmp_path / "run"))
    pixels, paths, _ = read_folder(good, 16, skip=written_by, progress=False)
    assert len(paths) == 6 and all(p.parent == good for p in paths)
    # An earlier run folder, an evaluation, and the prediction pointed at directly.
    assert written_by(tmp_path / "run") == "srlib train" and written_by(good) is None
    with pytest.raises(SrlibError, match=r"no image files under .*checked.*left alone what srlib wrote"):
        list_images(earlier, skip=written_by)


def test_resume_refuses_a_changed_image_folder(tmp_path, capsys):
    """Case 5: --resume after images were added, removed or changed names what changed; nothing trained."""
    good = tmp_path / "good"
    for i in range(10):
        noise_png(good / f"g{i}.png", i)
    out = tmp_path / "run"
    assert train(good, out, "--epochs", "1") == 0
    before = (out / "checkpoint.pt").read_bytes()
    noise_png(good / "new.png", 50)
    (good / "g3.png").unlink()
    noise_png(good / "g4.png", 51)
    capsys.readouterr()
    assert train(good, out, "--epochs", "2", "--resume") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--resume refused: the training images under" in err
    assert "1 added: new.png; 1 removed: g3.png; 1 changed: g4.png" in err
    assert (out / "checkpoint.pt").read_bytes() == before
    # Put back as they were, the run continues.
    (good / "new.png").unlink()
    noise_png(good / "g3.png", 3)
    noise_png(good / "g4.png", 4)
    assert train(good, out, "--epochs", "2", "--resume") == 0


def test_ctrl_c_while_scoring_the_held_out_images_says_resume(tmp_path, capsys, monkeypatch):
    """Case 9: Ctrl-C after the last epoch, during the held-out scoring: the --resume hint, and --resume scores them."""
    good = tmp_path / "good"
    for i in range(8):
        noise_png(good / f"g{i}.png", i)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    real = srlib.run.holdout.score_holdout
    monkeypatch.setattr(srlib.run.holdout, "score_holdout", interrupted)
    assert train(good, tmp_path / "run") == 128 + signal.SIGINT
    err = capsys.readouterr().err
    assert "while scoring the held-out images" in err and "Continue with:" in err and "--resume" in err
    assert not (tmp_path / "run" / "holdout.json").exists() and (tmp_path / "run" / "model.pt").exists()
    monkeypatch.setattr(srlib.run.holdout, "score_holdout", real)
    assert train(good, tmp_path / "run", "--resume") == 0
    assert len(held_out(tmp_path / "run")) == 2


def test_no_progress_shows_no_reading_bar(tmp_path, capfd):
    """Case 9: --no-progress silences the bar of reading 100 images or more too."""
    good = tmp_path / "good"
    for i in range(100):
        noise_png(good / f"g{i:03d}.png", i, (8, 8))
    assert train(good, tmp_path / "run", "--epochs", "1", "--batch-size", "16") == 0
    err = capfd.readouterr().err
    assert "reading" not in err and "it/s" not in err, err


def test_a_category_of_ones_own_in_the_mvtec_layout_is_recorded_under_its_folders_name(tmp_path, capsys):
    """Case 9: `srlib reproduce` on one's own MVTec-layout folder: the result is recorded (not refused after training)."""
    from srlib.results.tables import all_comparisons, load_results
    from srlib.run.evaluate import data_source
    from tiny_datasets import write_category

    root = tmp_path / "widgets"
    write_category(root, "widget", size=(24, 24), n_train=6)
    assert main(["train", "--dataset", "mvtec", "--root", str(root), "--category", "widget", "--out",
                 str(tmp_path / "run"), *TINY]) == 0
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run" / "model.pt"), "--dataset", "mvtec", "--root",
                 str(root), "--category", "widget", "--out", str(tmp_path / "eval"), "--no-progress"]) == 0
    (result,) = load_results(tmp_path / "eval", pattern="result.json")
    assert (result.dataset, result.category) == ("widgets", "widget")
    assert {c.name for c in all_comparisons([result])} >= {"widgets_image_auroc", "widgets_pixel_auroc"}
    assert data_source("mvtec", tmp_path / "mvtec", "widget")[0] == "mvtec_own"  # never the benchmark's name
    assert data_source("mvtec", tmp_path / "mvtec", "bottle")[0] == "mvtec"


# --- found by the second campaign -------------------------------------------------------


def test_two_trainings_into_one_out_the_second_is_refused(tmp_path, capsys):
    from srlib.atomic import exclusive
    from srlib.run.files import TRAINING

    good = tmp_path / "good"
    for i in range(6):
        noise_png(good / f"g{i}.png", i)
    (tmp_path / "run").mkdir()
    with exclusive(tmp_path / "run" / TRAINING, "held by this test"):  # what the first srlib train holds
        assert train(good, tmp_path / "run") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"another srlib train is writing into {tmp_path / 'run'} now" in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    assert train(good, tmp_path / "run") == 0


def test_files_that_are_not_images_are_counted_in_one_line(tmp_path, capsys):
    good = tmp_path / "good"
    for i in range(6):
        noise_png(good / f"g{i}.png", i)
    for name in ("notes.txt", "scan.raw", "sub/more.csv"):
        (good / name).parent.mkdir(exist_ok=True)
        (good / name).write_text("x")
    assert train(good, tmp_path / "run") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "not images" in line]
    assert len(lines) == 1 and "left alone 3 file(s) under" in lines[0]
