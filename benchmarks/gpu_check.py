"""GPU speed check at the paper's size: training and evaluation at 192 px, per precision and layout.

    PYTHONPATH=. python3 benchmarks/gpu_check.py --out gpu-results   # on a CUDA machine: ~6-8 min on one H200

Runs ``python -m srlib.bench`` (the paper's network, 192 px, batch 16 as the
paper trains) once per variant below, each in a process of its own so that a
failed compilation or memory left over cannot spoil the next, and writes
``gpu_check.json`` into ``--out`` after every variant (a run cut short keeps
what it measured): each variant's bench results, and the hours the paper's
MVTec AD schedule (3000 epochs over each category's training images) would
take at its training rate. Prints a table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {  # name: the bench's options for srlib's side (the plain baseline is always fp32, contiguous)
    "fp32 contiguous": ["--precision", "fp32", "--no-channels-last"],
    "fp32 channels_last": ["--precision", "fp32", "--channels-last"],
    "tf32 channels_last": ["--precision", "tf32", "--channels-last"],
    "bf16 contiguous": ["--precision", "bf16", "--no-channels-last"],
    "bf16 channels_last": ["--precision", "bf16", "--channels-last"],
    "fp32 channels_last compiled": ["--precision", "fp32", "--channels-last", "--compile"],
    "bf16 channels_last compiled": ["--precision", "bf16", "--channels-last", "--compile"],
    "bf16 contiguous compiled": ["--precision", "bf16", "--no-channels-last", "--compile"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json and the logs")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--timeout", type=float, default=240, help="seconds allowed to one variant")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    summary = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "variants": {}}
    for name in args.variants:
        with tempfile.TemporaryDirectory() as scratch:
            result = Path(scratch) / "bench.json"
            command = [sys.executable, "-m", "srlib.bench", "--device", args.device, "--sizes", "192", "--width", "64",
                       "--batch", str(args.batch), "--repeats", str(args.repeats), "--json", str(result), *VARIANTS[name]]
            started = time.perf_counter()
            try:
                done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
                failure = None if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()[-2000:]}"
                log = done.stdout + done.stderr
            except subprocess.TimeoutExpired as err:
                failure, log = f"timed out after {args.timeout:.0f} s", str(err.stdout or "")
            (args.out / f"{name.replace(' ', '_')}.log").write_text(log)
            entry = {"options": VARIANTS[name], "seconds": time.perf_counter() - started, "failure": failure}
            if failure is None:
                entry["bench"] = json.loads(result.read_text())
                summary["device"] = entry["bench"]["machine"]["device"]
                summary["torch"] = entry["bench"]["machine"]["torch"]
        summary["variants"][name] = entry
        (args.out / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"{name}: {'ok' if failure is None else failure} ({entry['seconds']:.0f} s)", flush=True)
    print(table(summary))
    return 0


def table(summary: dict) -> str:
    lines = [f"{summary.get('device', '?')}, torch {summary.get('torch', '?')}, {summary['date']}; 192 px, width 64",
             f"{'variant':<30} {'train img/s':>11} {'x plain':>8} {'MVTec h':>8} {'eval img/s':>10} {'x plain':>8} "
             f"{'map diff':>9} {'eval TFLOP/s':>12}"]
    for name, entry in summary["variants"].items():
        if entry.get("failure"):
            lines.append(f"{name:<30} {entry['failure'][:80]}")
            continue
        size = entry["bench"]["sizes"][0]
        train, evaluation = size["training"], size["evaluation"]
        lines.append(
            f"{name:<30} {train['srlib_images_per_s']:>11.1f} {train['speedup']:>7.2f}x "
            f"{train['mvtec_schedule_hours']['srlib']:>8.1f} {evaluation['srlib_images_per_s']:>10.1f} "
            f"{evaluation['speedup']:>7.2f}x {evaluation['max_map_difference']:>9.1e} {evaluation['srlib_gflops'] / 1e3:>12.1f}"
        )
    first = next((e for e in summary["variants"].values() if not e.get("failure")), None)
    if first:  # the baseline is the same in every variant: the authors' loop, fp32, contiguous
        plain = first["bench"]["sizes"][0]["training"]
        lines.append(f"{'plain (fp32, contiguous, loop)':<30} {plain['plain_images_per_s']:>11.1f} {'':>8} "
                     f"{plain['mvtec_schedule_hours']['plain']:>8.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
