"""srlib reproduce: checkpoint discovery, devices, skipping, and the whole batch on the bundled data."""

import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from srlib.cli import main
from srlib.run.config import TrainConfig
from srlib.errors import SrlibError
from srlib.notebook.records import read_records
from srlib.reproduce.folders import CHAPTER6, clear_run_folder, find_checkpoint
from srlib.run.config import EvalConfig
from srlib.run.files import CHAPTER5, CHAPTER5_CONFIG, FAILED, RESULT, TABLES
from srlib.reproduce.plan import Job, plan, result_matches, worker_devices
from srlib.reproduce.supervise import notebook_error
from srlib.run.sweeps import K_GRID, K_SWEEP


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


@pytest.mark.parametrize("files,category,expected", [
    (["bottle.pth", "cable.pth"], "bottle", "bottle.pth"),
    (["bottle.pt", "bottle_old.txt"], "bottle", "bottle.pt"),
    (["bottle/model.pt", "bottle/other.pth"], "bottle", "bottle/model.pt"),
    (["bottle/ema_3000.pth"], "bottle", "bottle/ema_3000.pth"),
    (["bottle/train/model.pt", "bottle/train/checkpoint.pt"], "bottle", "bottle/train/model.pt"),
    (["mvtec_metal_nut_ema.pth", "mvtec_hazelnut_ema.pth"], "metal_nut", "mvtec_metal_nut_ema.pth"),
    (["mvtec_metal_nut_ema.pth", "mvtec_hazelnut_ema.pth"], "hazelnut", "mvtec_hazelnut_ema.pth"),
    (["SPR-Bottle-3000.ckpt"], "bottle", "SPR-Bottle-3000.ckpt"),
])
def test_checkpoints_are_found_in_every_accepted_layout(tmp_path, files, category, expected):
    for name in files:
        touch(tmp_path / name)
    assert find_checkpoint(tmp_path, category) == tmp_path / expected


@pytest.mark.parametrize("files,category,message", [
    (["cable.pth"], "bottle", "no checkpoint for 'bottle'"),
    (["bottles.pth"], "bottle", "no checkpoint for 'bottle'"),  # a word, not a substring
    (["a_bottle.pth", "b_bottle.pth"], "bottle", "several checkpoints"),
    (["bottle/a.pth", "bottle/b.pth"], "bottle", "holds 2 checkpoint files"),
])
def test_missing_or_ambiguous_checkpoints_are_named(tmp_path, files, category, message):
    for name in files:
        touch(tmp_path / name)
    with pytest.raises(SrlibError, match=message):
        find_checkpoint(tmp_path, category)


def test_devices_give_one_worker_each(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert worker_devices("0,2") == [("cuda", {"CUDA_VISIBLE_DEVICES": "0"}), ("cuda", {"CUDA_VISIBLE_DEVICES": "2"})]
    assert worker_devices("cpu") == [("cpu", {})]
    with pytest.raises(SrlibError, match="device numbers"):
        worker_devices("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # no GPU: say so, with reproduce's own option
    with pytest.raises(SrlibError) as raised:
        worker_devices("0")
    assert str(raised.value) == ("--devices 0: PyTorch sees no CUDA GPU on this machine; pass --devices cpu, "
                                 "or leave --devices out to use what there is")


def config(root, **changes):
    return TrainConfig.preset_for("cpu", "mvtec", root, "brick", **changes)


def finished_folder(folder, record, ks):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESULT).write_text(json.dumps(record))
    rows = ["dataset,category,subset,k,n_draws,image_auroc,pixel_auroc,aupro"]
    rows += [f"textures,brick,all,{k!r},3,0.5,0.5,0.5" for k in ks]
    (folder / K_SWEEP).write_text("\n".join(rows) + "\n")


def test_a_result_matches_only_the_same_configuration(tmp_path):
    folder = tmp_path / "textures" / "brick"
    saved = config(tmp_path / "old_root", device="cuda", checkpoint_every=7, compile=True)
    finished_folder(folder, dict(k=1e-3, n_draws=3, config=saved.to_dict()), K_GRID)

    def matches(expected, evaluation=EvalConfig(), k_grid=()):
        return result_matches(Job("brick", folder, expected=expected, evaluation=evaluation, k_grid=k_grid))

    assert matches(config(tmp_path))  # root, device, checkpoint_every and compile may differ
    assert not matches(config(tmp_path, width=8))
    assert not matches(config(tmp_path, epochs=41))  # a longer run is another result
    assert not matches(config(tmp_path), EvalConfig(k=1e-2))
    assert not matches(config(tmp_path), EvalConfig(n_draws=5))
    assert not matches(config(tmp_path), EvalConfig(kernel=15))
    assert not matches(config(tmp_path), k_grid=(1e-3, 1e-2))
    (folder / RESULT).write_text("{not json")
    assert not matches(config(tmp_path))


def test_a_released_checkpoint_result_matches_its_file_and_size(tmp_path):
    folder = tmp_path / "mvtec" / "bottle"
    finished_folder(folder, dict(k=1e-3, n_draws=3, checkpoint="/ckpt/bottle.pth", image_size=192,
                                 config={"checkpoint": "/ckpt/bottle.pth"}), [1e-3])
    job = Job("bottle", folder, checkpoint="/ckpt/bottle.pth", k_grid=(1e-3,))
    assert result_matches(job)
    assert result_matches(dataclasses.replace(job, evaluation=EvalConfig(image_size=192)))
    assert not result_matches(dataclasses.replace(job, evaluation=EvalConfig(image_size=256)))
    assert not result_matches(dataclasses.replace(job, checkpoint="/ckpt/other.pth"))


def test_plan_checks_categories_and_records_missing_checkpoints(textures_root, tmp_path):
    jobs = plan("mvtec", textures_root, tmp_path, None, "cpu", {"epochs": 2, "lr": 1e-4, "device": "cpu"},
                None, EvalConfig(k=1e-2))
    assert [j.category for j in jobs] == ["brick", "coin", "cup", "grass", "tissue"]
    assert jobs[0].folder == tmp_path.resolve() / "textures" / "brick"  # the bundled data, never 'mvtec'
    assert jobs[0].expected == config(textures_root.resolve(), epochs=2, lr=1e-4)
    assert jobs[0].evaluation == EvalConfig(k=1e-2)
    # What chapter 5 is handed: the configurations as planned, on the worker's device.
    handed = jobs[0].chapter5_config("cpu")
    assert TrainConfig.from_dict(handed["train"]) == config(textures_root.resolve(), epochs=2, lr=1e-4, device="cpu")
    assert EvalConfig.from_dict(handed["evaluation"]) == EvalConfig(k=1e-2)
    assert (handed["category"], handed["checkpoint"], handed["k_grid"]) == ("brick", "", [])
    with pytest.raises(SrlibError, match="unknown MVTec AD category 'botle'"):
        plan("mvtec", textures_root, tmp_path, ["botle"], "cpu", {}, None)
    touch(tmp_path / "ckpt" / "brick.pth")
    jobs = plan("mvtec", textures_root, tmp_path, None, "paper", {"image_size": 128}, tmp_path / "ckpt")
    assert jobs[0].evaluation == EvalConfig(image_size=128)  # a released checkpoint is evaluated at the size asked
    assert jobs[0].checkpoint == str((tmp_path / "ckpt" / "brick.pth").resolve())
    assert jobs[0].chapter5_config("cuda")["train"] is None
    assert jobs[0].error is None and "no checkpoint for 'coin'" in jobs[1].error


def test_clearing_a_run_folder_removes_only_what_chapter5_writes(tmp_path):
    folder = tmp_path / "brick"
    for name in (RESULT, "train/checkpoint.pt", "n_draws_1/result.json", CHAPTER5, K_SWEEP):
        touch(folder / name)
    clear_run_folder(folder)
    assert folder.is_dir() and not any(folder.iterdir())
    touch(folder / "thesis.tex")
    with pytest.raises(SrlibError, match="thesis.tex"):
        clear_run_folder(folder)
    assert (folder / "thesis.tex").exists()


def test_the_first_error_of_an_executed_notebook_is_named(tmp_path):
    cells = [{"cell_type": "code", "source": "x = 1\n", "outputs": []},
             {"cell_type": "code", "source": ["train(config)\n", "more\n"],
              "outputs": [{"output_type": "error", "ename": "SrlibError", "evalue": "no  training\nimages"}]}]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    assert notebook_error(path) == "SrlibError: no training images (cell 1: train(config))"
    assert notebook_error(tmp_path / "missing.ipynb") is None


# --- the whole batch ---------------------------------------------------------------

# Batches of 16: 5 steps an epoch of the 80 training images (the cpu preset's batch of 4 would make 20).
SMALL = ["--preset", "cpu", "--image-size", "32", "--width", "8", "--batch-size", "16", "--devices", "cpu",
         "--k-grid", "0.001", "--no-progress"]


@pytest.fixture
def data_with_a_broken_category(textures_root, tmp_path):
    root = tmp_path / "data"
    for category in ("brick", "coin"):
        shutil.copytree(textures_root / category, root / category)
    shutil.copytree(textures_root / "brick", root / "broken")
    shutil.rmtree(root / "broken" / "train" / "good")
    (root / "broken" / "train" / "good").mkdir()
    return root


def read_csv(path):
    with open(path, newline="") as file:
        return {row["category"]: row for row in csv.DictReader(file)}


@pytest.mark.slow
def test_reproduce_end_to_end_on_the_bundled_data_stopped_and_resumed(data_with_a_broken_category, tmp_path, capsys):
    root, out = data_with_a_broken_category, tmp_path / "out"
    command = ["reproduce", "--dataset", "mvtec", "--root", str(root), "--out", str(out), *SMALL,
               "--epochs", "200", "--checkpoint-every", "50"]
    # Stopped (SIGTERM) in the middle of the first category's training.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "srlib", *command], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not [log for log in out.glob("textures/*/train/log.jsonl")
                                               if len(log.read_text().splitlines()) >= 2]:
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output
    assert "Run the same command again to resume" in output
    (log,) = out.glob("textures/*/train/log.jsonl")
    stopped = log.parents[1]
    assert (stopped / "train" / "checkpoint.pt").is_file() and not (stopped / RESULT).exists()
    assert not (stopped / FAILED).exists()
    stopped_at = len(log.read_text().splitlines())
    assert 2 <= stopped_at < 200
    # The same command with a shorter schedule (epochs may change on resume) finishes the batch.
    epochs = stopped_at + 1
    command[command.index("200")] = str(epochs)
    assert main(command) == 1
    first = capsys.readouterr()
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == list(range(1, epochs + 1))
    results = {c: json.loads((out / "textures" / c / RESULT).read_text()) for c in ("brick", "coin")}
    for category, record in results.items():
        folder = out / "textures" / category
        assert record["dataset"] == "textures" and record["config"]["epochs"] == epochs
        assert (folder / CHAPTER5).is_file() and not (folder / FAILED).exists()
        assert read_records(folder / CHAPTER5)["result_image_auroc"] == {category: record["image_auroc"]}
        assert json.loads((folder / "n_draws_1" / RESULT).read_text())["n_draws"] == 1
        handed = json.loads((folder / CHAPTER5_CONFIG).read_text())  # chapter 5 ran what it was handed
        assert TrainConfig.from_dict(handed["train"]) == TrainConfig.from_dict(record["config"])
        assert EvalConfig.from_result(record) == EvalConfig.from_dict(handed["evaluation"]).replace(image_size=32)
    # The broken category failed alone, with its error, and left no result behind.
    broken = out / "textures" / "broken"
    assert not (broken / RESULT).exists()
    assert "broken failed before starting: " in (broken / FAILED).read_text()  # its data was checked first
    assert "train/good holds no images" in (broken / FAILED).read_text() and not (broken / CHAPTER5).exists()
    assert "broken failed" in first.err
    # Tables: ours from the result files, the paper's numbers beside them.
    ours = read_csv(out / TABLES / "textures_image_auroc.csv")
    assert set(ours) == {"brick", "coin"}
    for category, record in results.items():
        assert ours[category]["ours"] == f"{100 * record['image_auroc']:.1f}" and ours[category]["paper"] == ""
        assert f"epochs {epochs} (paper 3000)" in ours[category]["note"]
    table1 = read_csv(out / TABLES / "table1_mvtec_pixel_auroc.csv")
    assert (table1["carpet"]["paper"], table1["carpet"]["note"]) == ("96.4", "not run")
    assert table1["average"]["paper"] == "97.4"
    assert "| 97.7 |" in (out / TABLES / "table4_mvtec_image_auroc.md").read_text()
    chapter6 = read_records(out / CHAPTER6)
    assert chapter6["textures_image_auroc_coin"] == pytest.approx(100 * results["coin"]["image_auroc"])
    assert notebook_error(out / CHAPTER6) is None

    # Again: both finished categories are skipped, the broken one fails again.
    stamps = {c: (out / "textures" / c / RESULT).stat().st_mtime_ns for c in results}
    assert main(command) == 1
    again = capsys.readouterr()
    assert "3 categories, 2 already done with this configuration, 1 to run" in again.out
    assert stamps == {c: (out / "textures" / c / RESULT).stat().st_mtime_ns for c in results}
    assert (broken / FAILED).exists()


@pytest.mark.slow
def test_released_checkpoints_are_evaluated_without_training_at_k_auto_too(textures_root, tmp_path, capsys):
    import torch

    from srlib.method.unet import ScoreUNet

    torch.manual_seed(0)
    (tmp_path / "ckpt").mkdir()
    torch.save(ScoreUNet(width=8).state_dict(), tmp_path / "ckpt" / "spr_coin_ema.pth")  # a plain state dict
    out = tmp_path / "out"
    # --k auto: chapter 5 chooses k from held-out training images and records its evidence.
    command = ["reproduce", "--dataset", "mvtec", "--root", str(textures_root), "--out", str(out), "--categories", "coin",
               "--checkpoints", str(tmp_path / "ckpt"), "--image-size", "32", "--devices", "cpu",
               "--k", "auto", "--k-grid", "0.001", "0.1", "--n-draws", "1", "--no-progress"]
    assert main(command) == 0
    folder = out / "textures" / "coin"
    result = json.loads((folder / RESULT).read_text())
    assert result["checkpoint"] == str((tmp_path / "ckpt" / "spr_coin_ema.pth").resolve())
    assert result["image_size"] == 32 and result["width"] == 8 and not (folder / "train").exists()
    assert result["k"] in (0.001, 0.1) and result["k_selection"]["k"] == result["k"]
    assert [c["k"] for c in result["k_selection"]["candidates"]] == [0.001, 0.1]
    note = read_csv(out / TABLES / "textures_image_auroc.csv")["coin"]["note"]
    assert "checkpoint spr_coin_ema.pth" in note
    capsys.readouterr()
    assert main(command) == 0  # the auto result counts as done for --k auto
    assert "1 categories, 1 already done" in capsys.readouterr().out
