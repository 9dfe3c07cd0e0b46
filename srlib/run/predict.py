"""Score a plain folder of new images with a trained model: ``srlib predict``.

Every image is read as training read it (RGB, Lanczos-resized to the
model's square size), its anomaly map computed by Algorithm 1 on the
evaluation's path (:mod:`srlib.run.scoring`, at ``MAP_SIZE``, the benchmarks'
mask size, so the 31-pixel mean filter covers what it covers there) and its
score is the map's maximum. Each image's perturbations are drawn from a
generator seeded with the evaluation's seed, as if it were scored alone (the
``"image"`` noise convention): an image's map does not depend on which other
images share its folder or batch, and equals ``restoration_error(model, x,
generator=torch.Generator().manual_seed(seed))`` for that image.

The output folder receives (every file written atomically):

``scores.csv``
    One row per file: ``image`` (path relative to ``--images``), ``score``,
    ``anomalous`` (yes/no at the threshold) and ``error`` (why a file could
    not be scored; its score is then empty).
``maps/<image>.npy``
    The (256, 256) float32 anomaly map, over the image squashed to a square.
``overlays/<image>.png``
    The image | the map over it, stretched back to the image's shape
    (longest side at most ``OVERLAY_SIDE``); colours run from 0 to the
    threshold, so the brightest pixels are those that alone reach it.
``prediction.json`` and ``README.txt``
    The threshold, its rule, the evaluation settings, the checkpoint, counts.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from srlib import __version__
from srlib.atomic import atomic_write, output_folder, write_bytes, write_text
from srlib.errors import SrlibError
from srlib.run.files import HOLDOUT, MAPS, OVERLAYS, PREDICTION, SCORES
from srlib.run.holdout import DEFAULT_QUANTILE, Threshold, given_threshold, quantile_threshold, read_holdout
from srlib.run.scoring import MAP_SIZE, PER_IMAGE, Scorer

OVERLAY_SIDE = 512
README = "README.txt"
COLUMNS = ("image", "score", "anomalous", "error")


def score_files(scorer: Scorer, paths: list[Path], desc: str = "scoring", progress: bool = True):
    """Yield ``(path, map or None, problem or None)`` for every path, in order, a batch at a time.

    ``scorer`` is a :class:`srlib.run.scoring.Scorer` whose configuration
    gives the image size and the batch. A file that cannot be read yields its
    one-line problem and no map; the others are still scored.
    """
    from srlib.data.plain import decode_images

    evaluation = scorer.config
    with tqdm(total=len(paths), desc=desc, unit="image", disable=not progress or None, dynamic_ncols=True) as bar:
        for start in range(0, len(paths), evaluation.batch_size):
            chunk = paths[start:start + evaluation.batch_size]
            decoded = decode_images(chunk, evaluation.image_size, desc)
            good = [pixels for pixels, _ in decoded if pixels is not None]
            x = torch.from_numpy(np.stack(good)).float().div(255).mul(2).sub(1) if good else None  # as training: [-1, 1]
            maps = iter(scorer(x) if good else ())
            for path, (pixels, problem) in zip(chunk, decoded):
                yield path, None if problem else next(maps)[0].numpy(), problem
            bar.update(len(chunk))


def holdout_threshold(checkpoint: Path, scorer: Scorer, quantile: float, progress: bool) -> Threshold:
    """The threshold from the held-out scores beside ``checkpoint``, re-scored if ``scorer``'s settings differ from theirs."""
    from srlib.run.config import EvalConfig

    evaluation = scorer.config
    record = read_holdout(checkpoint.with_name(HOLDOUT))
    saved = EvalConfig.from_dict(record["evaluation"])
    differences = saved.replace(batch_size=evaluation.batch_size).differences(evaluation)
    scores = record["scores"]
    if differences:
        paths = [Path(p) for p in record["images"]]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise SrlibError(
                f"the held-out scores in {checkpoint.with_name(HOLDOUT)} were computed with other settings "
                f"({', '.join(differences)}) and {missing[0]} is gone, so they cannot be recomputed: "
                "use the training's settings or pass --threshold"
            )
        print(f"srlib: re-scoring the {len(paths)} held-out good images with these settings ({', '.join(differences)})",
              file=sys.stderr)
        scores = []
        for path, anomaly, problem in score_files(scorer, paths, "held-out images", progress):
            if problem:
                raise SrlibError(f"held-out image: {problem}")
            scores.append(float(anomaly.max()))
    return quantile_threshold(scores, quantile)


def predict_folder(checkpoint, images, out, evaluation, device: str = "auto", threshold: float | None = None,
                   quantile: float = DEFAULT_QUANTILE, progress: bool = True) -> dict:
    """Score every image under ``images`` and write the outputs listed above into ``out``; returns the summary.

    ``evaluation`` is an :class:`srlib.run.config.EvalConfig`; its
    ``image_size`` None means the checkpoint's training size.
    """
    from srlib.data.layouts import refuse_inside_root
    from srlib.data.plain import list_images
    from srlib.run.checkpoint import AUTHORS_IMAGE_SIZE, describe_checkpoint, load_score_model
    from srlib.run.device import memory_format, pick_device

    checkpoint, out = Path(checkpoint), Path(out)
    folder = list_images(images)
    refuse_inside_root(folder.root, out, f"--out {out}")  # a later run would read its overlays as images
    output_folder(out)
    device = pick_device(device)
    model = load_score_model(checkpoint).to(device, memory_format=memory_format(device, None))
    kind, config = describe_checkpoint(checkpoint)
    if evaluation.image_size is None:
        evaluation = evaluation.replace(image_size=config.image_size if config else AUTHORS_IMAGE_SIZE)
    scorer = Scorer(model, evaluation, MAP_SIZE, noise=PER_IMAGE)
    if threshold is not None:
        rule = given_threshold(threshold)
    else:
        rule = holdout_threshold(checkpoint, scorer, quantile, progress)
    if folder.others:
        print(f"srlib: left alone {len(folder.others)} file(s) that are not images by their extension "
              f"(e.g. {folder.others[0]})", file=sys.stderr)
    rows = []
    names = dict(zip(folder.paths, folder.names()))
    for path, anomaly, problem in score_files(scorer, folder.paths, "predicting", progress):
        name = names[path]
        if problem:
            print(f"srlib: skipped: {problem}", file=sys.stderr)
            rows.append(dict(image=name, score="", anomalous="", error=problem))
            continue
        score = float(anomaly.max())
        _save_map(out / MAPS / f"{name}.npy", anomaly)
        _save_overlay(out / OVERLAYS / f"{name}.png", path, anomaly, rule.value)
        rows.append(dict(image=name, score=repr(score), anomalous="yes" if rule.decide(score) else "no", error=""))
    summary = {
        "images": str(folder.root.resolve()),
        "checkpoint": str(checkpoint.resolve()),
        "checkpoint_kind": kind,
        "threshold": rule.value,
        "rule": rule.rule,
        "evaluation": evaluation.to_dict(),
        "scored": sum(1 for r in rows if not r["error"]),
        "anomalous": sum(1 for r in rows if r["anomalous"] == "yes"),
        "failed": sum(1 for r in rows if r["error"]),
        "device": str(device),
        "srlib_version": __version__,
    }
    _write_csv(out / SCORES, rows)
    write_text(out / PREDICTION, json.dumps(summary, indent=2) + "\n")
    write_text(out / README, _readme(summary))
    return summary


def _save_map(path: Path, anomaly: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: np.save(f, anomaly.astype(np.float32)))


def _save_overlay(path: Path, source: Path, anomaly: np.ndarray, threshold: float) -> None:
    """The image | the map (0 to the threshold, inferno) blended over it, at the image's shape."""
    from matplotlib import colormaps
    from PIL import Image

    from srlib.data.images import read_image
    from srlib.run.pictures import BLEND, scaled

    image = read_image(source, "RGB")
    image.thumbnail((OVERLAY_SIDE, OVERLAY_SIDE), Image.Resampling.LANCZOS)
    stretched = np.asarray(Image.fromarray(anomaly).resize(image.size, Image.Resampling.BILINEAR))
    colours = Image.fromarray((colormaps["inferno"](scaled(stretched, 0.0, threshold))[..., :3] * 255).astype(np.uint8))
    strip = Image.new("RGB", (2 * image.width, image.height))
    strip.paste(image, (0, 0))
    strip.paste(Image.blend(image, colours, BLEND), (image.width, 0))
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, buffer.getvalue())


def _write_csv(path: Path, rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, text.getvalue())


def _readme(summary: dict) -> str:
    settings = ", ".join(f"{k} {v}" for k, v in summary["evaluation"].items())
    return (
        f"srlib predict {summary['srlib_version']}: {summary['scored']} images scored, {summary['anomalous']} anomalous, "
        f"{summary['failed']} could not be read\n"
        f"images:     {summary['images']}\n"
        f"checkpoint: {summary['checkpoint']}\n"
        f"settings:   {settings}\n"
        f"threshold:  {summary['threshold']!r} ({summary['rule']})\n\n"
        f"{SCORES}: image, score (the maximum of its anomaly map), anomalous (yes/no), error (why it was not scored)\n"
        f"{MAPS}/<image>.npy: the {MAP_SIZE}x{MAP_SIZE} float32 anomaly map, over the image squashed to a square\n"
        f"{OVERLAYS}/<image>.png: the image | its map over it; colours from 0 to the threshold\n"
    )
