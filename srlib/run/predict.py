"""Score a plain folder of new images with a trained model: ``srlib predict``.

Every image is read as training read it (RGB, Lanczos-resized to the
model's square size), its anomaly map computed by Algorithm 1 on the
evaluation's path (:mod:`srlib.run.scoring`, at ``MAP_SIZE``, the benchmarks'
mask size, so the 31-pixel mean filter covers what it covers there) and its
score is the map's maximum. Each image's perturbations are drawn from a
generator seeded with the evaluation's seed, as if it were scored alone (the
``"image"`` noise convention): an image's map does not depend on which other
images share its folder or batch: it is the map of that image scored alone,
with a generator ``torch.Generator().manual_seed(seed)``.

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

A folder holds one prediction, complete or visibly not: the new one is
written aside (``.srlib-predict.partial`` inside the folder) and swapped in
when complete, ``prediction.json`` last, so a folder without it holds an
interrupted swap; an interrupted prediction leaves the earlier one as it was.
The folder is locked while srlib writes into it (a second ``srlib predict``
into it is refused). Files in it that srlib predict did not write are left
alone, and a file of its names (``maps/``, ``scores.csv``...) that it did not
write refuses the run. Output names are the images' relative paths, with
bytes that are not UTF-8 written as ``\\xNN``; an image whose output name
would be too long for the file system, or taken by another image's, gets
one line and an error in ``scores.csv``, and the others are scored.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from srlib import __version__
from srlib.atomic import atomic_write, exclusive, output_folder, write_bytes, write_text
from srlib.errors import SrlibError, printable
from srlib.run.files import (HOLDOUT, MAPS, OVERLAYS, PREDICT_OLD, PREDICT_PARTIAL, PREDICT_README, PREDICTING,
                             PREDICTION, SCORES, refuse_predict_outputs, written_by)
from srlib.run.holdout import DEFAULT_QUANTILE, Threshold, given_threshold, quantile_threshold, read_holdout
from srlib.run.scoring import MAP_SIZE, PER_IMAGE, Scorer

OVERLAY_SIDE = 512
README = PREDICT_README
COLUMNS = ("image", "score", "anomalous", "error")
# What srlib predict writes into its folder, in the order a new prediction is swapped in: prediction.json last.
OUTPUTS = (MAPS, OVERLAYS, SCORES, README, PREDICTION)
SUFFIXES = {MAPS: ".npy", OVERLAYS: ".png"}


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


def holdout_threshold(checkpoint: Path, scorer: Scorer, quantile: float, progress: bool, config=None) -> Threshold:
    """The threshold from the held-out scores beside ``checkpoint``, re-scored if ``scorer``'s settings differ from theirs.

    Refused when they are another model's: other weights than ``scorer``'s,
    or another training configuration than ``config`` (the checkpoint's).
    """
    from srlib.run.holdout import weights_digest

    evaluation = scorer.config
    where = checkpoint.with_name(HOLDOUT)
    record = read_holdout(where)
    if record.get("weights_sha256") and record["weights_sha256"] != weights_digest(scorer.model):
        raise SrlibError(f"the held-out scores in {where} are of other weights than {checkpoint}'s (one of the two "
                         "was copied from another run or replaced): use the files one srlib train wrote together, "
                         "or pass --threshold")
    if record.get("config") and config is not None:
        from srlib.run.config import config_from

        differences = config_from(record["config"], f"the configuration in {where}").differences(config)
        if differences:
            raise SrlibError(f"{where} and the configuration of {checkpoint} disagree (the held-out scores' "
                             f"training -> the checkpoint's: {', '.join(differences)}): one of the files was edited "
                             "or copied from another run; restore it, or pass --threshold")
    saved = record["evaluation"]
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
                   quantile: float | None = None, progress: bool = True) -> dict:
    """Score every image under ``images`` and write the outputs listed above into ``out``; returns the summary.

    ``evaluation`` is an :class:`srlib.run.config.EvalConfig`; its
    ``image_size`` None means the checkpoint's training size. The threshold
    is ``threshold``, or the ``quantile`` (default 1) of the held-out scores:
    one rule, not both.
    """
    from srlib.data.layouts import refuse_inside_root
    from srlib.data.plain import list_images

    if threshold is not None and quantile is not None:
        raise SrlibError(f"--threshold {threshold:g} and --quantile {quantile:g} are two rules for one threshold: "
                         "give one of them")
    rule = given_threshold(threshold) if threshold is not None else None  # checked before any work
    if quantile is not None and not 0 < quantile <= 1:
        quantile_threshold([0.0], quantile)  # its one-line refusal
    checkpoint, out = Path(checkpoint).expanduser(), Path(out).expanduser()
    refuse_predict_outputs(Path(images))
    folder = list_images(images, skip=written_by)
    refuse_inside_root(folder.root, out, f"--out {out}")  # a later run would read its overlays as images
    output_folder(out)
    with exclusive(out / PREDICTING, f"another srlib predict is writing into {out} now ({out / PREDICTING} is "
                                     "locked): wait for it to end, or choose another --out"):
        earlier = _earlier_prediction(out)
        partial = out / PREDICT_PARTIAL
        shutil.rmtree(partial, ignore_errors=True)  # left by a killed run: ours, and the lock is ours
        try:
            summary = _predict_into(partial, checkpoint, folder, evaluation, device, rule,
                                    DEFAULT_QUANTILE if quantile is None else quantile, progress)
            _swap_in(partial, out, earlier)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return summary


def _predict_into(partial: Path, checkpoint: Path, folder, evaluation, device, rule, quantile, progress) -> dict:
    """Score ``folder``'s images and write every output into the new folder ``partial``; returns the summary."""
    from srlib.run.checkpoint import AUTHORS_IMAGE_SIZE, describe_checkpoint, load_score_model
    from srlib.run.device import memory_format, pick_device

    device = pick_device(device)
    model = load_score_model(checkpoint).to(device, memory_format=memory_format(device, None))
    kind, config = describe_checkpoint(checkpoint)
    if evaluation.image_size is None:
        evaluation = evaluation.replace(image_size=config.image_size if config else AUTHORS_IMAGE_SIZE)
    scorer = Scorer(model, evaluation, MAP_SIZE, noise=PER_IMAGE)
    if rule is None:
        rule = holdout_threshold(checkpoint, scorer, quantile, progress, config)
    for line in folder.skipped:
        print(f"srlib: {printable(line)}", file=sys.stderr)
    partial.mkdir()
    names = dict(zip(folder.paths, folder.names()))
    refused = _unwritable_names(partial, names)
    rows = {}
    for path, problem in refused.items():
        print(f"srlib: skipped: {printable(problem)}", file=sys.stderr)
        rows[path] = dict(image=names[path], score="", anomalous="", error=printable(problem))
    scored = [path for path in folder.paths if path not in refused]
    for path, anomaly, problem in score_files(scorer, scored, "predicting", progress):
        name = names[path]
        if problem:
            print(f"srlib: skipped: {printable(problem)}", file=sys.stderr)
            rows[path] = dict(image=name, score="", anomalous="", error=printable(problem))
            continue
        score = float(anomaly.max())
        _save_map(partial / MAPS / f"{name}.npy", anomaly)
        _save_overlay(partial / OVERLAYS / f"{name}.png", path, anomaly, rule.value)
        rows[path] = dict(image=name, score=repr(score), anomalous="yes" if rule.decide(score) else "no", error="")
    rows = [rows[path] for path in folder.paths]
    summary = {
        "images": printable(str(folder.root.resolve())),
        "checkpoint": printable(str(checkpoint.resolve())),
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
    _write_csv(partial / SCORES, rows)
    write_text(partial / README, _readme(summary))
    write_text(partial / PREDICTION, json.dumps(summary, indent=2) + "\n")
    return summary


def _unwritable_names(out: Path, names: dict) -> dict[Path, str]:
    """The images whose map or overlay name is too long for the file system, or taken by another image's: path -> problem."""
    try:
        longest = os.pathconf(out, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # Windows, or a file system that does not say
        longest = 255
    (out / ".Aa").touch()
    blind = (out / ".aA").exists()  # a file system that does not tell A from a (macOS's, Windows')
    (out / ".Aa").unlink()
    problems, taken = {}, {}
    for path, name in names.items():
        same = name.casefold() if blind else name
        if same in taken:
            problems[path] = (f"{path}: its output name {name} is also that of {taken[same]}; rename one of them "
                              f"(bytes that are not UTF-8 are written as \\xNN{', and case does not count here' if blind else ''})")
            continue
        taken[same] = path
        part = max(name.split("/"), key=lambda p: len(p.encode()))
        if len(part.encode()) + len(".npy") > longest:
            problems[path] = (f"{path}: its name is too long for its map file ({len(part.encode()) + 4} bytes with "
                              f".npy; this file system allows {longest}); shorten it")
    return problems


def _earlier_prediction(out: Path) -> list[Path]:
    """The outputs of an earlier srlib predict in ``out``, to be replaced; refuses when one of them is not srlib's.

    Its maps and overlays are those its ``scores.csv`` lists. After a swap
    that was interrupted (``.srlib-predict.old`` is there), whatever is in
    srlib predict's names is its own.
    """
    present = [out / name for name in OUTPUTS if (out / name).exists() or (out / name).is_symlink()]
    old = out / PREDICT_OLD
    if old.exists():
        shutil.rmtree(old)  # the earlier prediction of an interrupted swap: this run replaces it
        return present
    foreign, listed = [], None
    for path in present:
        if path.is_symlink() or path.is_dir() != (path.name in SUFFIXES):
            foreign.append(path)
        elif path.name == SCORES:
            listed = _listed_images(path)
            if listed is None:
                foreign.append(path)
        elif path.name == README:
            if not path.read_text(errors="replace").startswith("srlib predict"):
                foreign.append(path)
        elif path.name == PREDICTION:
            try:
                ours = {"threshold", "rule", "srlib_version"} <= set(json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                ours = False
            if not ours:
                foreign.append(path)
    for path in present:
        if path.name in SUFFIXES and path not in foreign:
            for here, _, files in os.walk(path):
                for name in files:
                    output = Path(here) / name
                    image = output.relative_to(path).as_posix().removesuffix(SUFFIXES[path.name])
                    if listed is None or not name.endswith(SUFFIXES[path.name]) or image not in listed:
                        foreign.append(output)
    if foreign:
        shown = ", ".join(str(p) for p in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise SrlibError(f"--out {out} holds what srlib predict did not write in the names it writes ({shown}); "
                         "a new prediction would replace it: move it away, or choose another --out; nothing was written")
    return present


def _listed_images(scores: Path) -> set[str] | None:
    """The image names of an earlier prediction's ``scores.csv``; None if it is not one."""
    try:
        with open(scores, newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                return None
            return {row["image"] for row in reader}
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def _swap_in(partial: Path, out: Path, earlier: list[Path]) -> None:
    """Replace the earlier prediction in ``out`` by the complete one in ``partial``: renames, prediction.json last."""
    old = out / PREDICT_OLD
    old.mkdir()
    for path in sorted(earlier, key=lambda p: p.name != PREDICTION):  # its prediction.json first: no longer complete
        os.replace(path, old / path.name)
    for name in OUTPUTS:
        if (partial / name).exists():
            os.replace(partial / name, out / name)
    shutil.rmtree(old)


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
        f"{summary['failed']} could not be scored\n"
        f"images:     {summary['images']}\n"
        f"checkpoint: {summary['checkpoint']}\n"
        f"settings:   {settings}\n"
        f"threshold:  {summary['threshold']!r} ({summary['rule']})\n\n"
        f"{SCORES}: image, score (the maximum of its anomaly map), anomalous (yes/no), error (why it was not scored)\n"
        f"{MAPS}/<image>.npy: the {MAP_SIZE}x{MAP_SIZE} float32 anomaly map, over the image squashed to a square\n"
        f"{OVERLAYS}/<image>.png: the image | its map over it; colours from 0 to the threshold\n"
        f"{PREDICTION}: the same as JSON; written last, so a folder without it holds no complete prediction\n"
    )
