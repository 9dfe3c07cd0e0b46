"""Issue 19: srlib predict keeps one prediction per folder, every file name scores, a run folder's files are checked."""

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import srlib.run.predict
from srlib.atomic import exclusive
from srlib.cli import main
from srlib.run.files import PREDICTING
from tiny_datasets import snapshot

TINY = ["--preset", "cpu", "--epochs", "1", "--image-size", "16", "--width", "8", "--batch-size", "4",
        "--device", "cpu", "--no-progress"]


def noise_png(path: Path, seed: int, size=(20, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny model trained on 10 noise images (2 held out), and two folders of new ones."""
    root = tmp_path_factory.mktemp("predict_out")
    for i in range(10):
        noise_png(root / "good" / f"g{i}.png", i)
    for i in range(4):
        noise_png(root / "a" / f"a{i}.png", 100 + i)
    for i in range(2):
        noise_png(root / "b" / f"b{i}.png", 200 + i)
    assert main(["train", "--images", str(root / "good"), "--out", str(root / "run"), *TINY]) == 0
    return root


def predict(run, images, out, *more):
    return main(["predict", "--checkpoint", str(run / "run" / "model.pt"), "--images", str(images), "--out", str(out),
                 "--no-progress", *more])


def rows(out):
    with open(out / "scores.csv", newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def outputs(out):
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("srlib: error: ") and "Traceback" not in err, err
    return err


def test_a_reused_out_holds_exactly_the_new_prediction(run, tmp_path):
    """Case 2: an earlier prediction's maps and overlays do not stay beside the new ones; the user's files do."""
    out = tmp_path / "out"
    assert predict(run, run / "a", out) == 0
    (out / "notes.txt").write_text("mine\n")
    assert predict(run, run / "b", out) == 0
    assert outputs(out) == ["README.txt", "maps/b0.png.npy", "maps/b1.png.npy", "notes.txt", "overlays/b0.png.png",
                            "overlays/b1.png.png", "prediction.json", "scores.csv"]
    assert [r["image"] for r in rows(out)] == ["b0.png", "b1.png"]
    assert (out / "notes.txt").read_text() == "mine\n"


def test_what_srlib_did_not_write_in_its_names_refuses_the_run(run, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict(run, run / "a", out) == 0
    for planted in (out / "maps" / "mine.npy", out / "README.txt", out / "overlays" / "x" / "y.png"):
        original = planted.read_bytes() if planted.exists() else None
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_text("the user's\n")
        before = snapshot(out)
        capsys.readouterr()
        assert predict(run, run / "b", out) == 2
        err = one_error_line(capsys)
        assert f"--out {out} holds what srlib predict did not write" in err and str(planted) in err
        assert snapshot(out) == before
        planted.unlink() if original is None else planted.write_bytes(original)
    assert predict(run, run / "b", out) == 0


def test_an_interrupted_prediction_leaves_the_earlier_one_as_it_was(run, tmp_path, capsys, monkeypatch):
    """Case 2: Ctrl-C half-way: the earlier prediction is untouched, no new map beside it, nothing half-written."""
    out = tmp_path / "out"
    assert predict(run, run / "a", out) == 0
    before = snapshot(out)
    calls = []
    real = srlib.run.predict._save_overlay

    def interrupted(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(srlib.run.predict, "_save_overlay", interrupted)
    assert predict(run, run / "b", out) == 130
    assert capsys.readouterr().err.strip().endswith("srlib: interrupted")
    assert snapshot(out) == before  # the first new map and overlay were written aside, and are gone


def test_two_predictions_into_one_folder_at_once_the_second_is_refused(run, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with exclusive(out / PREDICTING, "held by this test"):  # what the first srlib predict holds while it runs
        assert predict(run, run / "b", out) == 2
    assert f"another srlib predict is writing into {out} now" in one_error_line(capsys)
    assert outputs(out) == []
    assert predict(run, run / "b", out) == 0  # the lock goes with the process that held it


def test_every_file_name_is_scored_or_gets_its_own_line(run, tmp_path, capsys):
    """Case 3: a name that is not UTF-8, a 248-character one, one too long for its map, two that collide."""
    images = tmp_path / "names"
    source = noise_png(images / "plain.png", 1).read_bytes()
    names = [os.fsencode(images) + b"/bad\xff.png", os.fsencode(images / ("x" * 244 + ".png")),
             os.fsencode(images / ("y" * 248 + ".png")), os.fsencode(images) + b"/bad\\xff.png"]
    for name in names:
        with open(name, "wb") as file:
            file.write(source)
    out = tmp_path / "out"
    assert predict(run, images, out) == 0
    err = capsys.readouterr().err
    assert sorted(r["image"] for r in rows(out)) == sorted(  # valid UTF-8 throughout, one row per file
        ["bad\\xff.png", "bad\\xff.png", "plain.png", "x" * 244 + ".png", "y" * 248 + ".png"])
    scored = [r for r in rows(out) if not r["error"]]
    assert len(scored) == 3 and len(rows(out)) == 5
    assert (out / "maps" / "bad\\xff.png.npy").exists() and (out / "maps" / ("x" * 244 + ".png.npy")).exists()
    long = [r for r in rows(out) if r["image"] == "y" * 248 + ".png"][0]
    assert long["score"] == "" and "too long for its map file" in long["error"]
    clash = [r for r in rows(out) if "also that of" in r["error"]]
    assert len(clash) == 1 and clash[0]["score"] == ""
    assert len([line for line in err.splitlines() if line.startswith("srlib: skipped:")]) == 2
    summary = json.loads((out / "prediction.json").read_text())
    assert (summary["scored"], summary["failed"]) == (3, 2)


def test_a_missing_or_damaged_config_json_is_named_and_never_guessed(run, tmp_path, capsys):
    """Case 7: model.pt of an --images run without config.json: refused, not read as the authors' 192 px format."""
    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    (copy / "config.json").unlink()
    command = ["predict", "--checkpoint", str(copy / "model.pt"), "--images", str(run / "b"), "--out",
               str(tmp_path / "out"), "--no-progress"]
    assert main(command) == 2
    err = one_error_line(capsys)
    assert f"{copy / 'config.json'} is missing" in err and "never guesses" in err and "checkpoint.pt" in err
    config = json.loads((run / "run" / "config.json").read_text())
    for key, value, says in (("image_size", 32.5, "image_size must be a whole number, got 32.5"),
                             ("sigma", "25", "sigma must be a number, got '25'")):
        (copy / "config.json").write_text(json.dumps({**config, key: value}))
        assert main(command) == 2
        err = one_error_line(capsys)
        assert str(copy / "config.json") in err and says in err and "delete" not in err
    assert not (tmp_path / "out").exists() or outputs(tmp_path / "out") == []


@pytest.mark.parametrize("change, says", [
    (lambda r: {**r, "scores": ["a"] * len(r["scores"])}, "'scores' must be a list of finite numbers"),
    (lambda r: {**r, "evaluation": {**r["evaluation"], "n_draws": "3"}}, "n_draws must be a whole number, got '3'"),
    (lambda r: {**r, "images": "all of them"}, "'images' must be a list of paths"),
    (lambda r: {k: v for k, v in r.items() if k != "evaluation"}, "no 'evaluation' key"),
    (lambda r: [r], "expected a JSON object, got list"),
], ids=["scores", "n_draws", "images", "no evaluation", "not an object"])
def test_a_damaged_holdout_json_is_one_line(run, tmp_path, capsys, change, says):
    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    record = json.loads((copy / "holdout.json").read_text())
    (copy / "holdout.json").write_text(json.dumps(change(record)))
    assert main(["predict", "--checkpoint", str(copy / "model.pt"), "--images", str(run / "b"), "--out",
                 str(tmp_path / "out"), "--no-progress"]) == 2
    err = one_error_line(capsys)
    assert f"{copy / 'holdout.json'} is damaged" in err and says in err and "--resume" in err


def test_held_out_scores_missing_after_an_interrupted_training_say_resume(run, tmp_path, capsys):
    """Case 9: predict after Ctrl-C stopped the held-out scoring: --resume, not --holdout."""
    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    (copy / "holdout.json").unlink()
    assert main(["predict", "--checkpoint", str(copy / "model.pt"), "--images", str(run / "b"), "--out",
                 str(tmp_path / "out"), "--no-progress"]) == 2
    err = one_error_line(capsys)
    assert "though the run held out 0.2 of its images" in err and "--resume" in err and "--holdout" not in err


@pytest.mark.parametrize("options, says", [
    (["--threshold", "0.002", "--quantile", "1.5"], "--threshold 0.002 and --quantile 1.5 are two rules"),
    (["--threshold", "0.002", "--quantile", "1"], "are two rules for one threshold: give one of them"),
    (["--threshold", "-inf"], "--threshold must be a finite number, got -inf"),
    (["--threshold", "nan"], "--threshold must be a finite number, got nan"),
    (["--quantile", "1.5"], "--quantile must be in (0, 1], got 1.5"),
], ids=["both, one invalid", "both", "-inf", "nan", "quantile"])
def test_threshold_options_get_one_line(run, tmp_path, capsys, options, says):
    assert predict(run, run / "b", tmp_path / "out", *options) == 2
    assert says in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_an_earlier_prediction_among_the_new_images_is_left_alone(run, tmp_path, capsys):
    """Case 4 for predict: overlays of a prediction moved in among the new images are not scored as images."""
    images = tmp_path / "new"
    shutil.copytree(run / "b", images)
    assert predict(run, run / "a", tmp_path / "first") == 0
    shutil.move(tmp_path / "first", images / "first")
    capsys.readouterr()
    assert predict(run, images, tmp_path / "out") == 0
    assert "first/ (srlib predict's output)" in capsys.readouterr().err
    assert [r["image"] for r in rows(tmp_path / "out")] == ["b0.png", "b1.png"]


# --- found by the second campaign -------------------------------------------------------


def test_held_out_scores_of_another_model_are_refused(run, tmp_path, capsys):
    """holdout.json or model.pt copied by hand from another run: the threshold would be another model's."""
    for i in range(10):
        noise_png(tmp_path / "other_good" / f"o{i}.png", 300 + i)
    assert main(["train", "--images", str(tmp_path / "other_good"), "--out", str(tmp_path / "other"), "--seed", "5",
                 *TINY]) == 0
    for copied in ("holdout.json", "model.pt"):
        mixed = tmp_path / f"mixed_{copied}"
        shutil.copytree(run / "run", mixed)
        shutil.copy(tmp_path / "other" / copied, mixed / copied)
        capsys.readouterr()
        assert main(["predict", "--checkpoint", str(mixed / "model.pt"), "--images", str(run / "b"), "--out",
                     str(tmp_path / "out"), "--no-progress"]) == 2
        assert "are of other weights than" in one_error_line(capsys)
    edited = tmp_path / "edited"
    shutil.copytree(run / "run", edited)
    config = json.loads((edited / "config.json").read_text())
    (edited / "config.json").write_text(json.dumps({**config, "image_size": 64}))
    assert main(["predict", "--checkpoint", str(edited / "model.pt"), "--images", str(run / "b"), "--out",
                 str(tmp_path / "out"), "--no-progress"]) == 2
    assert "disagree (the held-out scores' training -> the checkpoint's: image_size 16 -> 64)" in one_error_line(capsys)
    assert main(["predict", "--checkpoint", str(edited / "model.pt"), "--images", str(run / "b"), "--out",
                 str(tmp_path / "out"), "--no-progress", "--threshold", "0.1"]) == 0  # a threshold of one's own


def test_a_typo_in_config_json_is_named_with_the_key_it_may_mean(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    config = json.loads((copy / "config.json").read_text())
    config["imagesize"] = config.pop("image_size")
    (copy / "config.json").write_text(json.dumps(config))
    assert predict(run, run / "b", tmp_path / "out", "--threshold", "1") == 0  # the run's own files are fine
    assert main(["predict", "--checkpoint", str(copy / "model.pt"), "--images", str(run / "b"), "--out",
                 str(tmp_path / "out"), "--no-progress"]) == 2
    err = one_error_line(capsys)
    assert "unknown configuration keys 'imagesize' (did you mean 'image_size'?)" in err and "upgrade" not in err


def test_a_newline_in_a_file_name_stays_on_its_line(run, tmp_path, capsys):
    images = tmp_path / "new"
    noise_png(images / "fine.png", 1)
    (images / "two\nlines.png").write_bytes(b"not a png")
    assert predict(run, images, tmp_path / "out") == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [line for line in err if line.startswith("srlib: ")] and any("two\\nlines.png" in line for line in err)
    assert [r["image"] for r in rows(tmp_path / "out")] == ["fine.png", "two\\nlines.png"]


def test_the_overlays_of_a_prediction_are_not_images_to_score_or_train_on(run, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict(run, run / "b", out) == 0
    before = snapshot(out)
    for command in (["predict", "--checkpoint", str(run / "run" / "model.pt"), "--images", str(out / "overlays"),
                     "--out", str(out), "--no-progress"],
                    ["train", "--images", str(out / "maps"), "--out", str(tmp_path / "run"), *TINY]):
        capsys.readouterr()
        assert main(command) == 2
        assert "of srlib predict's output" in one_error_line(capsys)
    assert snapshot(out) == before and not (tmp_path / "run").exists()
