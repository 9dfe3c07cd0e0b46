"""TrainConfig: the presets carry the authors' settings; JSON round trip; what resume compares."""

import json
import subprocess
import sys

import pytest

from srlib.method.sde import VESDE
from srlib.run.config import RESUMABLE_FIELDS, RUNTIME_FIELDS, TrainConfig, load_config, save_config
from srlib.errors import SrlibError


def test_paper_preset_is_the_authors_schedule():
    # Facts from shared/reference/authors-implementation.md, typed in independently.
    c = TrainConfig.preset_for("paper", "mvtec", "/data", "bottle")
    assert (c.epochs, c.image_size, c.width, c.batch_size) == (3000, 192, 64, 16)
    assert (c.lr, c.betas, c.weight_decay) == (1e-4, (0.9, 0.999), 1e-3)
    assert (c.milestones, c.gamma, c.ema_decay, c.seed) == ((1000, 2000), 0.1, 0.9999, 7777)
    assert c.precision == "fp32"


@pytest.mark.parametrize("dataset", ["btad", "mpdd"])
def test_btad_and_mpdd_keep_the_learning_rate_constant(dataset):
    assert TrainConfig.preset_for("paper", dataset, "/data", "01").milestones == ()


def test_overrides_win_and_none_means_the_preset_value():
    c = TrainConfig.preset_for("cpu", "mvtec", "/data", "brick", epochs=7, lr=None, milestones=[3])
    cpu = TrainConfig.preset_for("cpu", "mvtec", "/data", "brick")
    assert (c.epochs, c.lr, c.milestones, c.preset) == (7, cpu.lr, (3,), "cpu")
    assert cpu.width < 64 and cpu.image_size < 192


def test_json_round_trip(tmp_path):
    c = TrainConfig.preset_for("cpu", "btad", tmp_path, "02", seed=3, channels_last=False)
    save_config(c, tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 3
    assert load_config(tmp_path / "config.json") == c


def test_differences_name_each_field_except_the_runtime_ones():
    a = TrainConfig.preset_for("cpu", "mvtec", "/data", "brick")
    b = TrainConfig.preset_for("cpu", "mvtec", "/elsewhere", "brick", lr=0.5, width=8, epochs=999, device="cpu",
                               compile=True, sigma=9.0)
    assert a.differences(b) == [f"width {a.width} -> 8", f"lr {a.lr} -> 0.5", "sigma 25.0 -> 9.0"]
    assert a.differences(a) == []
    # A result of a longer run is another result; resuming may lengthen a run.
    assert a.differences(b, ignore=RUNTIME_FIELDS) == [f"epochs {a.epochs} -> 999", *a.differences(b)[:2],
                                                      "sigma 25.0 -> 9.0"]
    assert set(RESUMABLE_FIELDS) - set(RUNTIME_FIELDS) == {"epochs"}


def test_the_default_sigma_is_the_schedules():
    assert TrainConfig("mvtec", "/data", "brick").sigma == VESDE().sigma == 25.0


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(epochs=0), "epochs must be at least 1"),
        (dict(image_size=8), "image_size must be at least 16"),
        (dict(precision="fp16"), "unknown precision 'fp16'"),
        (dict(lr=-1.0), "lr must be a positive number (the paper: 1e-4), got -1.0"),
        (dict(lr=float("inf")), "lr must be a positive number (the paper: 1e-4), got inf"),
        (dict(weight_decay=float("nan")), "weight_decay must be a number >= 0 (the paper: 1e-3), got nan"),
        (dict(weight_decay=-0.1), "weight_decay must be a number >= 0 (the paper: 1e-3), got -0.1"),
        (dict(seed=-1), "seed must be a whole number from 0 to 2**63 - 1 (the paper: 7777), got -1"),
        (dict(milestones=(20, 10)), "milestones must be increasing epochs >= 1 (the paper: 1000 2000), got [20, 10]"),
        (dict(milestones=(0,)), "milestones must be increasing epochs >= 1"),
        (dict(betas=(0.9, 1.0)), "betas must be two numbers in [0, 1)"),
        (dict(gamma=0.0), "gamma (the lr factor at each milestone) must be in (0, 1], got 0.0"),
        (dict(milestones=(5, 5000)), "milestones 5000 lie outside the 25-epoch schedule, so the lr would never drop "
                                     "there; give epochs from 1 to 25, or more --epochs"),
        (dict(ema_decay=1.0), "ema_decay must be in [0, 1)"),
        (dict(ema_decay=float("nan")), "ema_decay must be in [0, 1), got nan"),
        (dict(sigma=1.0), "sigma must be greater than 1"),
    ],
)
def test_bad_values_are_refused_with_their_name(change, words):
    with pytest.raises(SrlibError) as raised:
        TrainConfig.preset_for("cpu", "mvtec", "/data", "brick", **change)
    assert words in str(raised.value)


def test_a_presets_milestones_may_lie_beyond_a_shorter_schedule():
    # Only milestones given explicitly are checked: --preset paper --epochs 50 is a short trial of the paper's run.
    assert TrainConfig.preset_for("paper", "mvtec", "/data", "bottle", epochs=50).milestones == (1000, 2000)


def test_unknown_preset_and_keys_are_refused():
    with pytest.raises(SrlibError, match="unknown preset 'gpu'"):
        TrainConfig.preset_for("gpu", "mvtec", "/data", "brick")
    values = TrainConfig.preset_for("cpu", "mvtec", "/data", "brick").to_dict() | {"colour": "red"}
    with pytest.raises(SrlibError, match="unknown configuration keys 'colour'; the known ones: dataset, "):
        TrainConfig.from_dict(values)


@pytest.mark.parametrize("command, names", [
    ("train", ["checkpoint.pt", "model.pt", "config.json", "log.jsonl", "--resume", "--epochs", "--image-size",
               "--width", "--batch-size", "--lr", "--seed", "--checkpoint-every", "--device", "--precision"]),
    ("evaluate", ["result.json", "overlays/", "--k", "--n-draws", "--resize", "--image-size"]),
])
def test_help_documents_the_options_and_files(command, names):
    out = subprocess.run([sys.executable, "-m", "srlib", command, "--help"], capture_output=True, text=True, check=True)
    missing = [name for name in names if name not in out.stdout]
    assert not missing
