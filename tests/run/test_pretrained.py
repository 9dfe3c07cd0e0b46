"""The book's shipped weights: each command rebuilds its config, each model evaluates to its stated numbers."""

import json
from pathlib import Path

import pytest

from srlib.data import TEXTURE_CATEGORIES, folder_dataset
from srlib.run.config import EvalConfig, TrainConfig
from srlib.run.evaluate import evaluate_model
from srlib.cli.pretrained import config_of_command, train_command
from srlib.run.pretrained import load_pretrained, shipped_checkpoint, weights_name

WEIGHTS = Path(__file__).resolve().parents[2] / "notebooks" / "weights"


def described():
    return {c: json.loads((WEIGHTS / f"{weights_name(c)}.json").read_text()) for c in TEXTURE_CATEGORIES}


def test_every_bundled_category_has_small_weights_and_a_description():
    assert set(described()) == set(TEXTURE_CATEGORIES)
    total = sum(p.stat().st_size for p in WEIGHTS.glob("*.pt"))
    assert total < 20e6, f"{total / 1e6:.1f} MB of weights"


@pytest.mark.parametrize("category", TEXTURE_CATEGORIES)
def test_the_command_rebuilds_the_saved_configuration(category):
    info = described()[category]
    assert info["command"].startswith(f"srlib train --dataset mvtec --root textures --category {category} --preset cpu")
    assert config_of_command(info["command"]).to_dict() == TrainConfig.from_dict(info["config"]).to_dict()
    # Trained with the cpu preset as it stands: chapter 5 loads it for the preset's configuration.
    preset = TrainConfig.preset_for("cpu", "mvtec", "elsewhere", category, seed=info["config"]["seed"])
    assert shipped_checkpoint(WEIGHTS, preset)[0] == WEIGHTS / f"{weights_name(category)}.pt"
    assert shipped_checkpoint(WEIGHTS, preset.__class__(**{**preset.to_dict(), "epochs": 3})) is None


def test_a_command_round_trips_through_srlibs_own_parser():
    config = TrainConfig.preset_for("cpu", "mvtec", "textures", "coin", epochs=7, lr=3e-4, milestones=(2, 5),
                                    channels_last=False, seed=4)
    command = train_command(config, "runs/coin")
    assert "--epochs 7" in command and "--milestones 2 5" in command and "--no-channels-last" in command
    assert config_of_command(command).to_dict() == config.to_dict()


@pytest.mark.slow
@pytest.mark.parametrize("category", TEXTURE_CATEGORIES)
def test_the_weights_evaluate_to_their_stated_metrics(textures_root, category):
    model, info = load_pretrained(WEIGHTS, category)
    test = folder_dataset("mvtec", textures_root, category, "test", image_size=info["config"]["image_size"])
    result = evaluate_model(model, test, EvalConfig(), progress=False)
    # Sums over millions of pixels round differently with the thread count (seen: 2.4e-9); the book shows 3 decimals.
    assert result.metrics().keys() == info["metrics"].keys()
    for key, value in result.metrics().items():
        assert value == pytest.approx(info["metrics"][key], abs=1e-6), key
