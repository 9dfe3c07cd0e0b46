"""Training-step speed on this machine: memory format and precision, as ratios.

    PYTHONPATH=. python benchmarks/train_step.py [--width 32] [--image-size 64] [--rounds 5]

Each variant trains a fresh ScoreUNet for a few steps; the variants take
turns, round after round, and each variant's median step time is compared
with the fp32/contiguous baseline measured in the same rounds, so machine
load (other processes on shared cores) affects all of them alike.

Measured on the project's 2-core CPU (torch 2.13, batch 16, load average 2-3):
width 16 at 128 px (the cpu preset): channels_last x1.02 (2 threads) and
x1.00 (1 thread), bf16 autocast x0.77 and x0.78; width 16 at 64 px, 1 thread:
channels_last x1.14, bf16 x0.80. So channels_last stays on for CPUs, and at
these small sizes fp32 beats bf16 autocast even on this AMX-capable Xeon (at
the paper's 192 px and width 64 bf16 pays: see ``python -m srlib.bench``).
"""

import argparse
import statistics
import time

import torch

from srlib.method.sde import dsm_loss
from srlib.method.unet import ScoreUNet

VARIANTS = {
    "fp32, contiguous (baseline)": (torch.contiguous_format, None),
    "fp32, channels_last": (torch.channels_last, None),
    "bf16 autocast, channels_last": (torch.channels_last, torch.bfloat16),
}


def step_seconds(model, optimizer, x, dtype, generator):
    started = time.perf_counter()
    with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
        loss = dsm_loss(model, x, model.sde, generator=generator)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant and round")
    args = parser.parse_args()
    x = torch.rand(args.batch_size, 3, args.image_size, args.image_size) * 2 - 1
    setups = {}
    for name, (memory, dtype) in VARIANTS.items():
        torch.manual_seed(0)
        model = ScoreUNet(width=args.width).to(memory_format=memory)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
        setups[name] = (model, optimizer, x.contiguous(memory_format=memory), dtype, torch.Generator().manual_seed(0))
        step_seconds(*setups[name])  # warm-up
    times = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, setup in setups.items():
            times[name] += [step_seconds(*setup) for _ in range(args.steps)]
    base = statistics.median(times["fp32, contiguous (baseline)"])
    print(f"width {args.width}, {args.image_size} px, batch {args.batch_size}, {torch.get_num_threads()} threads")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        spread = (max(seconds) - min(seconds)) / median
        print(f"{name:32s} {median:7.3f} s/step  {args.batch_size / median:6.1f} img/s  "
              f"x{base / median:4.2f} speed  (spread {spread:.0%})")


if __name__ == "__main__":
    main()
