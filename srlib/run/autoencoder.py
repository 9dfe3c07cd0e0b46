"""The book's autoencoder baseline of a bundled category: its recipe, its training, its shipped weights.

Chapter 4 sets SPR beside an autoencoder trained on the same budget as the
score model (epochs, batch size, learning rate, image size), once per
training seed. Fifteen of them (five categories, three seeds) would take
most of the chapter's build time on two CPU cores, so, like the score models
(:mod:`srlib.run.pretrained`), they ship in ``notebooks/weights`` and are
trained again on request (chapter 4's ``retrain_ae``). For each
``<name>.pt`` (the state dict in float32: a few hundred kB, and the chapter's
numbers unchanged) a ``<name>.json`` beside it holds

``command``
    the command that trained it (``python -m srlib.cli.pretrained
    --autoencoders``), on the data of ``srlib data textures textures`` (seed 0);
``recipe``
    the :class:`AERecipe` it was trained with;
``metrics``
    image AUROC, pixel AUROC and AUPRO of its maps on that data's test split,
    computed as chapter 4 computes them;
``train_seconds`` and ``trained_on``
    the training time, and where it was measured.

``tests/run/test_autoencoder.py`` checks that every shipped model evaluates
to its metrics and that the recipe trains one of them again, weight for weight.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from srlib.errors import SrlibError


@dataclass(frozen=True)
class AERecipe:
    """How one autoencoder baseline is trained (:func:`train_ae`): its network, budget and seed.

    ``seed`` seeds both the initial weights and the order of the batches.
    """

    category: str
    image_size: int
    epochs: int
    batch_size: int
    lr: float
    width: int = 16
    levels: int = 3
    latent_channels: int = 8
    seed: int = 0

    @classmethod
    def on_the_budget_of(cls, score_config: dict, category: str, seed: int, width: int = 16,
                         latent_channels: int = 8) -> AERecipe:
        """The recipe with the score model's budget: its ``TrainConfig`` dict gives size, epochs, batch and lr."""
        return cls(category, score_config["image_size"], score_config["epochs"], score_config["batch_size"],
                   score_config["lr"], width=width, latent_channels=latent_channels, seed=seed)

    def to_dict(self) -> dict:
        return asdict(self)

    def network(self):
        """The untrained :class:`srlib.method.baselines.ConvAutoencoder` of this recipe (random initial weights)."""
        from srlib.method.baselines import ConvAutoencoder

        return ConvAutoencoder(width=self.width, levels=self.levels, latent_channels=self.latent_channels)


def train_ae(recipe: AERecipe, images: torch.Tensor, device: str = "cpu"):
    """Train the recipe's autoencoder on ``images`` (the category's good training images at its size).

    Returns the model (eval mode) and the training time in seconds.
    """
    from srlib.method.baselines import train_autoencoder

    torch.manual_seed(recipe.seed)  # the initial weights; the batches' order is drawn from the seed too
    model = recipe.network().to(device)
    history = train_autoencoder(model, images.to(device), epochs=recipe.epochs, batch_size=recipe.batch_size,
                                lr=recipe.lr, seed=recipe.seed, progress=False)
    return model, history["seconds"]


def ae_name(category: str, seed: int = 0) -> str:
    return f"textures-{category}-ae-seed{seed}"


def save_ae(model, recipe: AERecipe, info: dict, folder: str | Path) -> Path:
    """Write ``model``'s state dict (float32) and ``info`` with the recipe beside it; returns the weights' path."""
    from srlib.atomic import save_torch, write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ae_name(recipe.category, recipe.seed)}.pt"
    save_torch({k: v.detach().cpu().float() for k, v in model.state_dict().items()}, path)
    write_text(path.with_suffix(".json"), json.dumps({**info, "recipe": recipe.to_dict()}, indent=2) + "\n")
    return path


def shipped_ae(folder: str | Path, recipe: AERecipe) -> tuple[Path, dict] | None:
    """The shipped autoencoder trained with exactly ``recipe`` and its description; None when there is none."""
    path = Path(folder) / f"{ae_name(recipe.category, recipe.seed)}.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    return (path.with_suffix(".pt"), info) if info.get("recipe") == recipe.to_dict() else None


def load_ae(path: str | Path):
    """A shipped autoencoder (float32, eval mode): its recipe's network with the weights of ``path``."""
    path = Path(path)
    try:
        recipe = AERecipe(**json.loads(path.with_suffix(".json").read_text())["recipe"])
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SrlibError(f"cannot read the autoencoder {path} and its description: {err}") from None
    model = recipe.network()
    model.load_state_dict(state)
    return model.eval()
