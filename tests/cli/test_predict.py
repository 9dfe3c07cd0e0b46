"""Your own images: ``srlib train --images`` and ``srlib predict`` end to end on a plain folder.

The folder is cut from the bundled textures (grey PNGs), with a colour JPEG
of another size and a sub-folder mixed in. Every number is checked against a
second computation: the maps against ``restoration_error`` + ``anomaly_map``
called on the image alone, the threshold against the held-out images scored
again here, the decisions against that threshold.
"""

import csv
import json
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from srlib.cli import main
from srlib.data.images import image_pixels
from srlib.data.plain import list_images
from srlib.errors import SrlibError
from srlib.method.restoration import anomaly_map, restoration_error
from srlib.run.checkpoint import load_score_model
from srlib.run.holdout import quantile_threshold, split_holdout

SIZE, WIDTH, EPOCHS = 32, 8, 2


def reference_map(model, path, n_draws=3, seed=0, k=1e-3):
    """The 256x256 map of one image, computed from the method's functions directly."""
    x = torch.from_numpy(image_pixels(path, SIZE)).float()[None] / 255 * 2 - 1
    raw = restoration_error(model, x, k=k, n_draws=n_draws, generator=torch.Generator().manual_seed(seed))
    return anomaly_map(raw, out_size=256)[0, 0].numpy()


@pytest.fixture(scope="module")
def plain(textures_root, tmp_path_factory):
    """good/ (20 images: 12 at the top, 7 in a sub-folder, one colour JPEG of 100x60) and new/ (test images, one corrupt)."""
    root = tmp_path_factory.mktemp("plain")
    brick = textures_root / "brick"
    (root / "good" / "line2").mkdir(parents=True)
    for i in range(19):
        shutil.copy(brick / "train" / "good" / f"{i:03d}.png", root / "good" / ("line2" if i >= 12 else "") / f"g{i:02d}.png")
    grey = Image.open(brick / "train" / "good" / "019.png").convert("RGB").resize((100, 60))
    Image.merge("RGB", [c.point(lambda v, s=s: min(255, int(v * s))) for c, s in zip(grey.split(), (1.0, 0.9, 0.8))]).save(
        root / "good" / "colour.jpg", quality=95)
    (root / "new").mkdir()
    for split, defect, i in [("good", "good", 0), ("good", "good", 1), ("scratch", "scratch", 0), ("hole", "hole", 1)]:
        shutil.copy(brick / "test" / defect / f"{i:03d}.png", root / "new" / f"{split}_{i}.png")
    whole = (brick / "test" / "stain" / "002.png").read_bytes()
    (root / "new" / "cut.png").write_bytes(whole[: len(whole) // 3])  # truncated
    (root / "new" / "notes.txt").write_text("not an image\n")
    return root


@pytest.fixture(scope="module")
def run(plain, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--images", str(plain / "good"), "--preset", "cpu", "--epochs", str(EPOCHS),
                 "--image-size", str(SIZE), "--width", str(WIDTH), "--batch-size", "16", "--out", str(out),
                 "--no-progress"]) == 0
    return out


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_training_holds_out_a_fifth_of_the_good_images(plain, run):
    held = json.loads((run / "holdout.json").read_text())
    everything = [str(p.resolve()) for p in list_images(plain / "good").paths]
    assert len(everything) == 20 and len(held["images"]) == 4 and set(held["images"]) <= set(everything)
    # 16 images left at batch 16: one step per epoch (20 would take two).
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, EPOCHS + 1))
    model = load_score_model(run / "model.pt")
    again = [reference_map(model, p).max() for p in held["images"]]
    assert np.allclose(held["scores"], again, rtol=1e-5)


def test_predict_scores_maps_and_decides_by_the_stated_rule(plain, run, tmp_path, capsys):
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(run / "model.pt"), "--images", str(plain / "new"),
                 "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "cut.png" in line]) == 1  # one line for the bad file
    rows = {r["image"]: r for r in read_rows(out / "scores.csv")}
    assert sorted(rows) == ["cut.png", "good_0.png", "good_1.png", "hole_1.png", "scratch_0.png"]
    assert rows["cut.png"]["score"] == "" and "truncated" in rows["cut.png"]["error"]

    # The threshold, computed here: the largest held-out score, each held-out image scored alone.
    model = load_score_model(run / "model.pt")
    held = json.loads((run / "holdout.json").read_text())["images"]
    threshold = max(reference_map(model, p).max() for p in held)
    summary = json.loads((out / "prediction.json").read_text())
    assert summary["threshold"] == pytest.approx(threshold, rel=1e-5)
    assert "largest of 4 held-out" in summary["rule"] and summary["rule"] in (out / "README.txt").read_text()
    assert (summary["scored"], summary["failed"]) == (4, 1)
    for name in ["good_0.png", "good_1.png", "hole_1.png", "scratch_0.png"]:
        expected = reference_map(model, plain / "new" / name)
        saved = np.load(out / "maps" / f"{name}.npy")
        assert saved.shape == (256, 256) and saved.dtype == np.float32
        assert np.allclose(saved, expected, rtol=1e-5, atol=1e-9)
        score = float(rows[name]["score"])
        assert score == pytest.approx(float(expected.max()), rel=1e-5)
        assert rows[name]["anomalous"] == ("yes" if score > summary["threshold"] else "no")
        assert Image.open(out / "overlays" / f"{name}.png").size == (256, 128)  # image | overlay, 128 px each


def test_other_settings_rescore_the_held_out_images_and_a_threshold_overrides(plain, run, tmp_path):
    model = load_score_model(run / "model.pt")
    held = json.loads((run / "holdout.json").read_text())["images"]
    scores = sorted(reference_map(model, p, n_draws=1, seed=5).max() for p in held)
    assert main(["predict", "--checkpoint", str(run / "model.pt"), "--images", str(plain / "new"), "--n-draws", "1",
                 "--seed", "5", "--quantile", "0.5", "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "a" / "prediction.json").read_text())
    assert summary["threshold"] == pytest.approx((scores[1] + scores[2]) / 2, rel=1e-5)  # the median of 4, by hand

    assert main(["predict", "--checkpoint", str(run / "model.pt"), "--images", str(plain / "new"),
                 "--threshold", "0", "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    rows = read_rows(tmp_path / "b" / "scores.csv")
    assert [r["anomalous"] for r in rows if not r["error"]] == ["yes"] * 4  # every score is above 0


def test_the_colour_jpeg_of_another_size_is_read_like_a_benchmark_image(plain, run, tmp_path):
    out = tmp_path / "out"
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(plain / "good" / "colour.jpg", folder)
    assert main(["predict", "--checkpoint", str(run / "model.pt"), "--images", str(folder), "--threshold", "1",
                 "--out", str(out), "--no-progress"]) == 0
    expected = reference_map(load_score_model(run / "model.pt"), folder / "colour.jpg")
    assert np.allclose(np.load(out / "maps" / "colour.jpg.npy"), expected, rtol=1e-5, atol=1e-9)
    assert Image.open(out / "overlays" / "colour.jpg.png").size == (200, 60)  # the image's own shape, twice


def test_bad_folders_and_options_get_one_line(plain, run, tmp_path, capsys):
    model, new, out = str(run / "model.pt"), str(plain / "new"), str(tmp_path / "o")
    cases = [
        (["--images", str(tmp_path / "missing"), "--out", out], "does not exist"),
        (["--images", new, "--out", str(plain / "new" / "out")], "would write into the dataset root"),
        (["--images", new, "--out", out, "--quantile", "0"], "--quantile must be in (0, 1]"),
    ]
    for extra, message in cases:
        assert main(["predict", "--checkpoint", model, "--no-progress"] + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (plain / "new" / "out").exists()
    (tmp_path / "no_holdout").mkdir()
    shutil.copy(run / "model.pt", tmp_path / "no_holdout" / "model.pt")
    assert main(["predict", "--checkpoint", str(tmp_path / "no_holdout" / "model.pt"), "--images", str(plain / "new"),
                 "--out", str(tmp_path / "p"), "--no-progress"]) == 2
    assert "no held-out scores" in capsys.readouterr().err


@pytest.mark.parametrize("k, says, never", [
    ("auto", "srlib evaluate --k auto", "invalid float"),  # what to do instead, not argparse's float error
    ("2", "'2' is not a time in (0, 1]", "auto"),  # no offer of what predict refuses
])
def test_predict_k_is_evaluates_option_without_auto(k, says, never, tmp_path, capsys):
    argv = ["predict", "--checkpoint", str(tmp_path / "model.pt"), "--images", str(tmp_path), "--out",
            str(tmp_path / "out"), "--k", k]
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    assert code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and says in err[0] and never not in err[0], err


def test_list_images_is_recursive_and_skips_hidden_and_other_files(tmp_path):
    for name in ["b.png", "sub/a.PNG", "sub/deeper/c.tif", ".hidden.png", ".git/x.png", "readme.md"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = list_images(tmp_path)
    assert found.names() == ["b.png", "sub/a.PNG", "sub/deeper/c.tif"]
    assert [p.name for p in found.others] == ["readme.md"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(SrlibError, match="no image files under"):
        list_images(tmp_path / "empty")


@pytest.mark.parametrize("n, share, held", [(20, 0.2, 4), (5, 0.2, 1), (3, 0.01, 1), (10, 0.0, 0)])
def test_split_holdout_sizes_and_disjointness(n, share, held):
    keep, out = split_holdout(n, share, seed=7)
    assert len(out) == held and sorted(np.concatenate([keep, out]).tolist()) == list(range(n))
    assert np.array_equal(split_holdout(n, share, seed=7)[1], out)


def test_split_holdout_refuses_to_leave_nothing_to_train_on():
    with pytest.raises(SrlibError, match="leaves none to train on"):
        split_holdout(1, 0.5, seed=0)


def test_quantile_threshold_by_hand():
    assert quantile_threshold([3.0, 1.0, 4.0, 2.0]).value == 4.0
    assert quantile_threshold([3.0, 1.0, 4.0, 2.0], 0.5).value == 2.5  # halfway between 2 and 3
    assert quantile_threshold([1.0, 2.0, 3.0, 4.0, 5.0], 0.9).value == pytest.approx(4.6)  # 4 + 0.6 * (5 - 4)
    with pytest.raises(SrlibError):
        quantile_threshold([1.0, math.nan])
