"""Chapter 4's autoencoders (srlib.run.autoencoder): shipped with their recipe, loaded only for that recipe,
evaluating to their recorded metrics, and trained again by the recipe weight for weight."""

import json
from pathlib import Path

import pytest
import torch

from srlib.data import TEXTURE_CATEGORIES
from srlib.run.autoencoder import AERecipe, ae_name, load_ae, save_ae, shipped_ae, train_ae
from srlib.run.comparison import autoencoders, category_images, method_metrics, reconstruction_maps
from srlib.run.pretrained import pretrained_info

WEIGHTS = Path(__file__).resolve().parents[2] / "notebooks" / "weights"
SEEDS = (0, 1, 2)  # chapter 4's: seed 0 and n_seeds 3


def chapter4_recipe(category, seed):
    """Chapter 4's default recipe: the shipped score model's budget, width 16, 8 latent channels."""
    return AERecipe.on_the_budget_of(pretrained_info(WEIGHTS, category)["config"], category, seed, 16, 8)


@pytest.mark.parametrize("category", TEXTURE_CATEGORIES)
def test_every_category_and_seed_ships_an_autoencoder_of_chapter_4s_recipe(category):
    for seed in SEEDS:
        recipe = chapter4_recipe(category, seed)
        path, info = shipped_ae(WEIGHTS, recipe)
        assert path == WEIGHTS / f"{ae_name(category, seed)}.pt"
        assert info["command"] == (f"python -m srlib.cli.pretrained --autoencoders --root textures "
                                   f"--categories {category} --seeds {seed}")
        assert set(info["metrics"]) == {"image_auroc", "pixel_auroc", "aupro"} and info["train_seconds"] > 0
        # The score model's budget: 25 epochs of batch 4 at 128 px, lr 1e-3 (the cpu preset).
        assert (recipe.epochs, recipe.batch_size, recipe.image_size, recipe.lr) == (25, 4, 128, 1e-3)


def test_the_autoencoders_keep_the_repository_small():
    sizes = [p.stat().st_size for p in WEIGHTS.glob("*-ae-seed*.pt")]
    assert len(sizes) == len(TEXTURE_CATEGORIES) * len(SEEDS)
    assert sum(sizes) < 5e6, f"{sum(sizes) / 1e6:.1f} MB"


def test_a_shipped_model_is_used_for_its_own_recipe_only(tmp_path):
    images = torch.rand(6, 3, 16, 16) * 2 - 1
    recipe = AERecipe("c", 16, epochs=1, batch_size=4, lr=1e-3, width=2, levels=2, latent_channels=1, seed=3)
    model, seconds = train_ae(recipe, images)
    save_ae(model, recipe, {"train_seconds": 1.5, "trained_on": "a test"}, tmp_path)
    loaded = load_ae(tmp_path / f"{ae_name('c', 3)}.pt")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    other = AERecipe(**{**recipe.to_dict(), "epochs": 2})
    assert shipped_ae(tmp_path, other) is None and shipped_ae(tmp_path / "none", recipe) is None
    # Shipped for the first recipe, trained here for the second: the time says which.
    models, took = autoencoders([recipe, other], images, tmp_path)
    assert torch.equal(models[0](images), loaded(images))
    assert took.endswith(" s here and of training steps on a test")
    trained, _ = train_ae(other, images)  # the same recipe trains the same weights
    assert torch.equal(models[1](images), trained(images))


@pytest.mark.slow
def test_the_shipped_autoencoders_evaluate_to_their_recorded_metrics(textures_root):
    """One category's three (the book's chapter 4 checks all fifteen: tests/chapters/test_chapters_part2.py)."""
    category = "grass"
    images = category_images(textures_root, category, 128)
    for seed in SEEDS:
        path, info = shipped_ae(WEIGHTS, chapter4_recipe(category, seed))
        maps = reconstruction_maps(load_ae(path), images.test, images.masks.shape[-1])
        # Sums over many pixels may round differently with the thread count; the book shows 3 decimals.
        assert method_metrics(maps, images.masks, images.labels) == pytest.approx(info["metrics"], abs=1e-6)


@pytest.mark.slow
def test_the_recipe_trains_a_shipped_autoencoder_again(textures_root):
    recipe = chapter4_recipe("coin", 1)
    images = category_images(textures_root, "coin", recipe.image_size)
    model, _ = train_ae(recipe, images.train)
    shipped = load_ae(shipped_ae(WEIGHTS, recipe)[0])
    for name, value in shipped.state_dict().items():
        # Bit for bit with the thread count it was made with; other kernels may round a last bit differently.
        assert torch.allclose(model.state_dict()[name], value, rtol=0, atol=1e-5), name
    described = json.loads((WEIGHTS / f"{ae_name('coin', 1)}.json").read_text())
    maps = reconstruction_maps(model, images.test, images.masks.shape[-1])
    assert method_metrics(maps, images.masks, images.labels) == pytest.approx(described["metrics"], abs=1e-4)
