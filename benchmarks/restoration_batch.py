"""How many restoration draws to evaluate per forward pass on this machine.

    PYTHONPATH=. python benchmarks/restoration_batch.py [--sizes 64 192] [--images 1] [--repeats 5]

Times ``restoration_error`` (width-64 ScoreUNet, N = 3 draws) for each draw
batch size, interleaved so that load from other processes spreads evenly, and
prints the median time per image and its ratio to one draw per pass.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from srlib.restoration import restoration_error
from srlib.unet import ScoreUNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 192])
    parser.add_argument("--images", type=int, default=1, help="images per call (B)")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = ScoreUNet(width=args.width).eval().to(device)
    batch_sizes = sorted({1, args.draws} | {d for d in range(2, args.draws)})
    print(f"device {device}, threads {torch.get_num_threads()}, width {args.width}, "
          f"B={args.images}, N={args.draws}, median of {args.repeats}")
    for layout in (torch.contiguous_format, torch.channels_last):
        model.to(memory_format=layout)
        for size in args.sizes:
            x = torch.randn(args.images, 3, size, size, device=device)
            restoration_error(model, x, n_draws=args.draws, batch_size=args.draws)  # warm-up
            times = {b: [] for b in batch_sizes}
            for _ in range(args.repeats):
                for b in batch_sizes:
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                    restoration_error(model, x, n_draws=args.draws, batch_size=b)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    times[b].append((time.perf_counter() - start) / args.images)
            base = statistics.median(times[1])
            for b in batch_sizes:
                med = statistics.median(times[b])
                print(f"{str(layout).split('.')[-1]:18s} {size:4d}px  draws/pass {b}:  "
                      f"{med * 1e3:8.1f} ms/image  ratio to 1 draw/pass {med / base:.2f}")


if __name__ == "__main__":
    main()
