"""The book's shipped weights: the ``srlib train`` command of each, and the script that trains them.

    python -m srlib.cli.pretrained --root textures --categories brick grass tissue coin cup

trains each category with its own ``srlib train`` command (the ``cpu``
preset), evaluates the weights and writes them with their description into
``notebooks/weights`` (see :mod:`srlib.run.pretrained`);

    python -m srlib.cli.pretrained --autoencoders --root textures --categories brick grass tissue coin cup

trains chapter 4's autoencoder baselines (seeds 0, 1, 2) on the budget of
each category's shipped score model, and writes them the same way (see
:mod:`srlib.run.autoencoder`).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import torch

from srlib.cli import build_parser, main
from srlib.cli.train import OVERRIDE_OPTIONS, overrides_from
from srlib.errors import SrlibError
from srlib.run.config import RUNTIME_FIELDS, TrainConfig
from srlib.run.pretrained import TEXTURES_ROOT, load_pretrained, save_pretrained, weights_name


def train_command(config: TrainConfig, out: str) -> str:
    """The ``srlib train`` command line that builds ``config`` (options only where it leaves the preset)."""
    preset = TrainConfig.preset_for(config.preset, config.dataset, config.root, config.category)
    words = ["srlib", "train", "--dataset", config.dataset, "--root", config.root, "--category", config.category,
             "--preset", config.preset]
    for name in OVERRIDE_OPTIONS:
        value, default = getattr(config, name), getattr(preset, name)
        if value == default or name in RUNTIME_FIELDS and name != "epochs":
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, tuple):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words + ["--out", out])


def config_of_command(command: str) -> TrainConfig:
    """The TrainConfig that ``srlib train`` builds from ``command`` (parsed by srlib's own parser)."""
    words = shlex.split(command)
    if words[:2] != ["srlib", "train"]:
        raise SrlibError(f"not an srlib train command: {command!r}")
    args = build_parser().parse_args(words[1:])
    return TrainConfig.preset_for(args.preset, args.dataset, args.root, args.category, **overrides_from(args))


def make_pretrained(root: str | Path, folder: str | Path, category: str, seed: int = 0, work: str | Path = "runs",
                    **overrides) -> dict:
    """Train one shipped model with its own ``srlib train`` command, then evaluate and save it.

    ``root`` is where ``srlib data textures`` wrote the data (the command
    names it ``textures``); ``overrides`` are TrainConfig fields beyond the
    ``cpu`` preset and ``seed``.
    """
    import time

    from srlib.data import folder_dataset
    from srlib.run.config import EvalConfig
    from srlib.run.evaluate import evaluate_model
    from srlib.run.files import LOG, WEIGHTS

    config = TrainConfig.preset_for("cpu", "mvtec", TEXTURES_ROOT, category, seed=seed, **overrides)
    out = Path(work) / weights_name(category, seed)
    words = shlex.split(train_command(config, str(out)))
    words[words.index("--root") + 1] = str(root)
    started = time.perf_counter()
    # A run already in ``work`` (stopped, or finished by a study with this very configuration) is continued.
    resume = ["--resume"] if (out / "checkpoint.pt").exists() else []
    if main(words[1:] + ["--no-progress"] + resume) != 0:
        raise SrlibError(f"training {category} failed: {shlex.join(words)}")
    wall = time.perf_counter() - started
    logged = sum(json.loads(line)["seconds"] for line in (out / LOG).read_text().splitlines())
    name = weights_name(category, seed)
    # The wall time of a resumed run is only its last part: then the logged steps alone are stated.
    wall_note = "" if resume else f" ({wall:.0f} s wall)"
    save_pretrained(out / WEIGHTS, config, train_command(config, f"runs/{category}"), {},
                    f"{logged:.0f} s of training steps{wall_note} on a shared 2-core CPU, "
                    f"{torch.get_num_threads()} thread(s)", Path(folder), name)
    model, info = load_pretrained(folder, category, seed)
    test = folder_dataset("mvtec", root, category, "test", image_size=config.image_size)
    result = evaluate_model(model, test, EvalConfig(), progress=False)
    info["metrics"] = result.metrics()
    from srlib.atomic import write_text

    write_text(Path(folder) / f"{name}.json", json.dumps(info, indent=2) + "\n")
    return info


def make_pretrained_autoencoders(root: str | Path, folder: str | Path, category: str, seeds=(0, 1, 2)) -> list[dict]:
    """Train chapter 4's autoencoders of ``category`` (one per seed) with its recipe, evaluate and save them.

    The recipe is :meth:`AERecipe.on_the_budget_of` the category's shipped
    score model in ``folder`` (chapter 4's defaults: width 16, 8 latent
    channels); the metrics are chapter 4's, on the test split of ``root``.
    """
    from srlib.run.autoencoder import AERecipe, save_ae, train_ae
    from srlib.run.comparison import category_images, method_metrics, reconstruction_maps
    from srlib.run.pretrained import pretrained_info

    config = pretrained_info(folder, category)["config"]
    images = category_images(root, category, config["image_size"])
    infos = []
    for seed in seeds:
        recipe = AERecipe.on_the_budget_of(config, category, seed)
        model, seconds = train_ae(recipe, images.train)
        maps = reconstruction_maps(model, images.test, images.masks.shape[-1])
        info = {"command": f"python -m srlib.cli.pretrained --autoencoders --root {TEXTURES_ROOT} "
                           f"--categories {category} --seeds {seed}",
                "metrics": method_metrics(maps, images.masks, images.labels), "train_seconds": round(seconds, 1),
                "trained_on": f"a shared 2-core CPU, {torch.get_num_threads()} thread(s)"}
        save_ae(model, recipe, info, folder)
        infos.append(info)
    return infos


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Train, evaluate and save the book's shipped weights.")
    parser.add_argument("--root", required=True, help="the folder srlib data textures wrote (seed 0)")
    parser.add_argument("--folder", default="notebooks/weights")
    parser.add_argument("--categories", nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs")
    parser.add_argument("--autoencoders", action="store_true",
                        help="train chapter 4's autoencoder baselines instead (on the shipped score models' budget)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the autoencoders' training seeds")
    args = parser.parse_args()
    for category in args.categories:
        if args.autoencoders:
            for info in make_pretrained_autoencoders(args.root, args.folder, category, args.seeds):
                print(category, info["metrics"], f"{info['train_seconds']} s", flush=True)
        else:
            info = make_pretrained(args.root, args.folder, category, args.seed, args.work)
            print(category, info["metrics"], info["train_seconds"], flush=True)
