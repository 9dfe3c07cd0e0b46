"""Evaluation in bf16 against fp32: the paper's three metrics and the speed, in one process.

For every category folder under ``--root`` with a trained model in
``--runs/<category>/model.pt`` (e.g. ``srlib train --preset cpu`` on
``srlib data textures`` output), evaluates the test split with the same
settings and the same perturbations in fp32 and in bf16 (autocast), reports
image AUROC, pixel AUROC and AUPRO of each, then times the two in
alternating rounds (the order swapped every round; median seconds of the
maps, the metrics excluded) and prints the speed ratio. Ratios, not seconds, are what to read on a
shared machine. bf16 needs a GPU or a CPU with AVX512-BF16 or AMX.

``--also 64x192`` adds the speed (only) of an untrained network of that
width at that size on ``--also-images`` test images of the first category,
evenly spread: bf16's gain grows with the network, so it is measured per size.

Usage::

    python benchmarks/bf16_eval.py --root textures --runs runs [--rounds 5] [--also 64x192] [--json bf16.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import torch
from torch.utils.data import Subset

from srlib.data import folder_dataset
from srlib.run.checkpoint import describe_checkpoint, load_score_model
from srlib.run.config import EvalConfig
from srlib.run.device import memory_format, pick_device
from srlib.method.unet import ScoreUNet
from srlib.run.evaluate import evaluate_model

PRECISIONS = ("fp32", "bf16")


def measure(model, test, base: EvalConfig, rounds: int) -> dict:
    """Metrics of each precision, and each precision's seconds per evaluation in alternating rounds."""
    configs = {p: base.replace(precision=p) for p in PRECISIONS}
    metrics = {p: evaluate_model(model, test, c, progress=False).metrics() for p, c in configs.items()}
    seconds = {p: [] for p in PRECISIONS}
    for r in range(rounds):
        for p in PRECISIONS if r % 2 == 0 else PRECISIONS[::-1]:
            seconds[p].append(evaluate_model(model, test, configs[p], progress=False).seconds)  # maps, not metrics
    median = {p: statistics.median(s) for p, s in seconds.items()}
    return {"metrics": metrics, "seconds": seconds, "median_seconds": median,
            "speed_ratio": median["fp32"] / median["bf16"]}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="folder of categories in the MVTec AD layout")
    parser.add_argument("--runs", required=True, help="folder holding <category>/model.pt")
    parser.add_argument("--rounds", type=int, default=5, help="timed evaluations per precision (default 5)")
    parser.add_argument("--also", nargs="*", default=[], metavar="WIDTHxSIZE",
                        help="untrained networks to time as well, e.g. 64x192 (the paper's)")
    parser.add_argument("--also-images", type=int, default=8, help="test images timed for --also (default 8)")
    parser.add_argument("--json", help="also write every figure here")
    args = parser.parse_args()
    device = pick_device("auto")
    rows = []
    for run in sorted(p.parent for p in Path(args.runs).glob("*/model.pt")):
        category = run.name
        model = load_score_model(run / "model.pt").to(device, memory_format=memory_format(device, None))
        _, config = describe_checkpoint(run / "model.pt")
        base = EvalConfig(image_size=config.image_size)
        test = folder_dataset("mvtec", args.root, category, "test", image_size=config.image_size)
        result = measure(model, test, base, args.rounds)
        rows.append({"category": category, "image_size": config.image_size, "width": config.width,
                     "epochs": config.epochs, "images": len(test), **result})
        m = result["metrics"]
        print(f"{category}: " + "; ".join(
            f"{p} image {m[p]['image_auroc']:.4f} pixel {m[p]['pixel_auroc']:.4f} AUPRO {m[p]['aupro']:.4f}"
            for p in PRECISIONS) + f"; fp32/bf16 time {result['speed_ratio']:.2f}x", flush=True)
    speeds = []
    for spec in args.also:
        width, size = (int(v) for v in spec.split("x"))
        torch.manual_seed(0)
        model = ScoreUNet(width=width).eval().to(device, memory_format=memory_format(device, None))
        first = rows[0]["category"] if rows else sorted(p.name for p in Path(args.root).iterdir() if p.is_dir())[0]
        test = folder_dataset("mvtec", args.root, first, "test", image_size=size)
        test = Subset(test, range(0, len(test), max(1, len(test) // args.also_images))[:args.also_images])  # good and defective
        result = measure(model, test, EvalConfig(image_size=size), args.rounds)
        speeds.append({"width": width, "image_size": size, "images": len(test), "median_seconds": result["median_seconds"],
                       "seconds": result["seconds"], "speed_ratio": result["speed_ratio"]})
        print(f"untrained width {width} at {size} px, {len(test)} images: fp32/bf16 time {result['speed_ratio']:.2f}x", flush=True)
    machine = {"processor": _cpu_name(), "avx512_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
               "amx": bool(torch.cpu._is_amx_tile_supported()), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "device": str(device)}
    print(f"\n{machine}\n")
    print("| category | size, width, epochs | precision | image AUROC | pixel AUROC | AUPRO | s per evaluation (median) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        for p in PRECISIONS:
            m = row["metrics"][p]
            print(f"| {row['category']} | {row['image_size']} px, {row['width']}, {row['epochs']} | {p} | "
                  f"{m['image_auroc']:.4f} | {m['pixel_auroc']:.4f} | {m['aupro']:.4f} | {row['median_seconds'][p]:.2f} |")
    print("\n" + ", ".join([f"{row['category']} fp32/bf16 {row['speed_ratio']:.2f}x" for row in rows]
                            + [f"width {s['width']} at {s['image_size']} px {s['speed_ratio']:.2f}x" for s in speeds]))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "rows": rows, "speeds": speeds}, indent=2) + "\n")


if __name__ == "__main__":
    main()
