"""Training runs on the bundled textures with a tiny U-Net: outputs, exact resumption, refusals."""

import json
import math
import os
import re
import shutil
import signal

import pytest
import torch
from PIL import Image

import srlib.run.train
from srlib.run.checkpoint import load_score_model
from srlib.cli import main
from srlib.run.config import TrainConfig
from srlib.errors import SrlibError
from srlib.results.tables import read_result
from srlib.run.train import CHECKPOINT, CONFIG, LOG, TRAINING, WEIGHTS, train

TINY = dict(epochs=3, image_size=32, width=8, batch_size=16, checkpoint_every=1, device="cpu")  # 80 images: 5 steps/epoch


def tiny(root, **changes):
    return TrainConfig.preset_for("cpu", "mvtec", root, "brick", **{**TINY, **changes})


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_training_state(a, b):
    """Model, EMA and optimizer of two checkpoints are bit-identical."""
    a, b = load(a), load(b)
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    moments = zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values())
    assert all(torch.equal(x[key], y[key]) for x, y in moments for key in x)
    assert (a["step"], a["epoch"], a["ema_n_averaged"]) == (b["step"], b["epoch"], b["ema_n_averaged"])


@pytest.fixture(scope="module")
def straight(textures_root, tmp_path_factory):
    """An uninterrupted 3-epoch run: the reference of the resumption tests."""
    out = tmp_path_factory.mktemp("straight")
    outcome = train(tiny(textures_root), out, progress=False)
    assert outcome.finished and (outcome.epoch, outcome.step) == (3, 15)
    return out


def test_outputs_of_a_run(straight, textures_root):
    state = load(straight / CHECKPOINT)
    assert state["format"] == "srlib-train-v1" and TrainConfig.from_dict(state["config"]) == tiny(textures_root)
    assert (state["epoch"], state["batch"], state["step"], state["ema_n_averaged"]) == (3, 0, 15, 16)
    weights = load(straight / WEIGHTS)  # plain state dict of the EMA
    assert weights.keys() == state["ema"].keys()
    assert all(torch.equal(weights[k], state["ema"][k]) for k in weights)
    assert not all(torch.equal(state["model"][k], state["ema"][k]) for k in weights)
    assert load_score_model(straight / WEIGHTS).width == 8
    log = [json.loads(line) for line in (straight / LOG).read_text().splitlines()]
    assert [(r["epoch"], r["step"]) for r in log] == [(1, 5), (2, 10), (3, 15)]
    assert all(r["loss"] > 0 and r["images_per_s"] > 0 and r["seconds"] > 0 and r["lr"] == 1e-3 for r in log)
    assert json.loads((straight / CONFIG).read_text()) == tiny(textures_root).to_dict()


def test_images_given_in_memory_train_exactly_as_the_same_images_from_the_folder(straight, textures_root, tmp_path):
    config = tiny(textures_root)
    images, _ = srlib.run.train.load_images(config, torch.device("cpu"))
    outcome = train(config, tmp_path, images=images, progress=False)
    assert outcome.finished
    assert_same_training_state(straight / CHECKPOINT, tmp_path / CHECKPOINT)
    with pytest.raises(SrlibError, match=r"expected \(N, 3, 32, 32\)"):
        train(tiny(textures_root), tmp_path / "other", images=images[:, :, :16, :16], progress=False)


def test_a_longer_schedule_resumed_equals_one_run(straight, textures_root, tmp_path):
    train(tiny(textures_root, epochs=2), tmp_path, progress=False)
    with open(tmp_path / LOG, "a") as log:  # a line cut short by a kill
        log.write('{"epoch": 3, "st')
    outcome = train(tiny(textures_root), tmp_path, resume=True, progress=False)
    assert outcome.finished
    assert_same_training_state(straight / CHECKPOINT, tmp_path / CHECKPOINT)
    assert [json.loads(line)["epoch"] for line in (tmp_path / LOG).read_text().splitlines()] == [1, 2, 3]


def test_sigterm_saves_after_the_current_step_and_resume_is_exact(straight, textures_root, tmp_path, monkeypatch):
    seed_of_step = srlib.run.train.noise_seed

    def signal_at_step_7(seed, rank, step):  # SIGTERM arrives while step 7 (0-based) is computed
        if step == 7:
            os.kill(os.getpid(), signal.SIGTERM)
        return seed_of_step(seed, rank, step)

    monkeypatch.setattr(srlib.run.train, "noise_seed", signal_at_step_7)
    outcome = train(tiny(textures_root), tmp_path, progress=False)
    assert (outcome.finished, outcome.stopped_by, outcome.step) == (False, "SIGTERM", 8)
    state = load(tmp_path / CHECKPOINT)
    assert (state["epoch"], state["batch"], state["step"]) == (1, 3, 8)  # in the middle of epoch 2
    assert not (tmp_path / WEIGHTS).exists()
    monkeypatch.setattr(srlib.run.train, "noise_seed", seed_of_step)
    assert train(tiny(textures_root), tmp_path, resume=True, progress=False).finished
    assert_same_training_state(straight / CHECKPOINT, tmp_path / CHECKPOINT)
    assert (tmp_path / LOG).read_text().count("\n") == 3


def test_resume_with_another_configuration_is_refused(straight, textures_root):
    with pytest.raises(SrlibError, match=r"--resume refused: .*\(saved -> requested: width 8 -> 16, lr 0\.001 -> 0\.002\)") as err:
        train(tiny(textures_root, lr=2e-3, width=16), straight, resume=True)
    assert "\n" not in str(err.value)
    with pytest.raises(SrlibError, match="already holds a training run: add --resume"):
        train(tiny(textures_root), straight)
    with pytest.raises(SrlibError, match="--epochs 2 is fewer than the 3 epochs .* already trained: pass --epochs 3 or more"):
        train(tiny(textures_root, epochs=2), straight, resume=True)


def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(textures_root, tmp_path):
    # lr 1e30: the first step is finite and checkpointed (one step per epoch); the next loss overflows.
    config = tiny(textures_root, lr=1e30, batch_size=80)
    with pytest.raises(SrlibError, match=r"training stopped: the loss is (nan|inf) at epoch 2, step 2; the last good checkpoint .* is kept"):
        train(config, tmp_path, progress=False)
    state = load(tmp_path / CHECKPOINT)
    assert (state["epoch"], state["step"]) == (1, 1)
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert not (tmp_path / WEIGHTS).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [TRAINING, CHECKPOINT, CONFIG, LOG]  # the lock stays, empty


@pytest.mark.slow
def test_commands_end_to_end(textures_root, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--dataset", "mvtec", "--root", str(textures_root), "--category", "brick"]
    assert main(["train", *common, "--preset", "cpu", "--out", str(out), "--epochs", "2", "--image-size", "32",
                 "--width", "8", "--batch-size", "16", "--checkpoint-every", "1", "--device", "cpu",
                 "--no-progress"]) == 0
    printed = capsys.readouterr()
    assert "done: 2 epochs, 10 steps" in printed.out  # 80 images in batches of 16
    assert "paper preset" not in printed.err  # its cost is stated for the paper preset only
    results = {}
    for name in (WEIGHTS, CHECKPOINT):
        assert main(["evaluate", "--checkpoint", str(out / name), *common, "--out", str(tmp_path / name),
                     "--device", "cpu", "--no-progress"]) == 0
        results[name] = json.loads((tmp_path / name / "result.json").read_text())
    record = results[WEIGHTS]
    assert all(0 <= record[m] <= 1 for m in ("image_auroc", "pixel_auroc", "aupro"))
    assert (record["image_size"], record["width"], record["k"], record["n_draws"]) == (32, 8, 1e-3, 3)
    assert record["config"]["epochs"] == 2 and record["data_source"].startswith("bundled textures")
    assert read_result(tmp_path / WEIGHTS / "result.json").dataset == "textures"  # never beside the paper's MVTec AD
    assert (record["images"], record["defective_images"]) == (60, 40)
    assert record["checkpoint_kind"] == "srlib final weights"
    # The training checkpoint's EMA is the same model: the same maps, the same numbers.
    assert results[CHECKPOINT]["checkpoint_kind"] == "srlib training checkpoint"
    assert [results[CHECKPOINT][m] for m in ("image_auroc", "pixel_auroc", "aupro")] == [
        record[m] for m in ("image_auroc", "pixel_auroc", "aupro")]
    overlays = sorted((tmp_path / WEIGHTS / "overlays").iterdir())
    assert len(overlays) == 8 and Image.open(overlays[0]).size == (3 * 256, 256)


def test_command_errors_are_one_line(textures_root, tmp_path, capsys):
    status = main(["train", "--dataset", "mvtec", "--root", str(textures_root), "--category", "marble", "--preset", "cpu",
                   "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("srlib: error: ") and "marble" in err


def test_sigma_travels_from_the_configuration_to_the_restoration_error(textures_root, tmp_path):
    from srlib.method.restoration import restoration_error

    train(tiny(textures_root, epochs=1, sigma=9.0), tmp_path, progress=False)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    noise = torch.randn(1, *x.shape)
    k = 0.3
    for path in (tmp_path / CHECKPOINT, tmp_path / WEIGHTS):  # the checkpoint, and model.pt beside config.json
        model = load_score_model(path)
        assert model.sde.sigma == 9.0
        # Algorithm 1 by hand with base 9: r = s(x + n) * std^2 + n.
        std = ((9.0 ** (2 * k) - 1) / (2 * math.log(9.0))) ** 0.5
        with torch.no_grad():
            r = model(x + noise[0] * std, torch.full((2,), k)) * std**2 + noise[0] * std
        torch.testing.assert_close(restoration_error(model, x, k=k, n_draws=1, noise=noise), r.pow(2).mean(1, keepdim=True),
                                   rtol=1e-4, atol=1e-7)
    (tmp_path / CONFIG).unlink()  # beside the run's other files, its settings are never guessed
    with pytest.raises(SrlibError, match=r"config.json is missing: .*model.pt was written by srlib train"):
        load_score_model(tmp_path / WEIGHTS)
    (tmp_path / "alone").mkdir()  # final weights alone: the authors' format, the paper's schedule
    shutil.copy(tmp_path / WEIGHTS, tmp_path / "alone" / WEIGHTS)
    assert load_score_model(tmp_path / "alone" / WEIGHTS).sde.sigma == 25.0


def test_the_cost_of_the_paper_preset_is_stated_from_a_rate():
    # 12 s a step over the 3000 epochs of a 60-image category (4 steps each): 12 * 12000 / 3600 = 40 hours.
    note = srlib.run.train.cost_note(12.0, 12000)
    assert "12 s a step, so the 12000 steps left take about 40 hours (1.7 days)" in note
    assert "--preset cpu" in note and "\n" not in note


def test_the_paper_preset_on_a_cpu_states_its_cost_after_a_few_steps(textures_root, tmp_path, capsys):
    config = TrainConfig.preset_for("paper", "mvtec", textures_root, "brick", **{**TINY, "epochs": 1})  # 5 steps
    train(config, tmp_path, progress=False)
    notes = [line for line in capsys.readouterr().err.splitlines() if "the paper preset on this CPU" in line]
    assert len(notes) == 1
    seconds, steps, hours = re.search(r"([\d.e+-]+) s a step, so the (\d+) steps left take about (\d+) hours", notes[0]).groups()
    assert int(steps) == 5 - (1 + srlib.run.train.COST_STEPS)  # a warm-up step, then the timed ones
    assert int(hours) == round(float(seconds) * int(steps) / 3600)
