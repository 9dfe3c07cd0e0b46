"""How many restoration draws to evaluate per forward pass on this machine.

    PYTHONPATH=. python benchmarks/restoration_batch.py [--shapes 1x64 1x192] [--threads 1 --clock cpu]

Times ``restoration_error`` (width-64 ScoreUNet, N = 3 draws) for each number
of draws per pass, interleaved so that load from other processes spreads
evenly, and prints the fastest time per image and its ratio to one draw per
pass. On a shared machine, ``--threads 1 --clock cpu`` (process CPU time) is
the measurement least disturbed by other processes.
"""

from __future__ import annotations

import argparse
import time

import torch

from srlib.restoration import restoration_error
from srlib.unet import ScoreUNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["1x64", "1x192"], help="images x side, e.g. 4x64")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--contiguous", action="store_true", help="plain layout instead of channels_last")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = ScoreUNet(width=args.width).eval().to(device)
    if not args.contiguous:
        model.to(memory_format=torch.channels_last)
    print(f"{device}, {args.threads} threads, {args.clock} clock, width {args.width}, N={args.draws}, "
          f"{'contiguous' if args.contiguous else 'channels_last'}, best of {args.repeats}")
    for shape in args.shapes:
        images, side = (int(v) for v in shape.split("x"))
        x = torch.randn(images, 3, side, side, device=device)
        restoration_error(model, x, n_draws=args.draws, batch_size=args.draws)  # warm-up
        times: dict[int, list[float]] = {b: [] for b in range(1, args.draws + 1)}
        for _ in range(args.repeats):
            for b, runs in times.items():
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = clock()
                restoration_error(model, x, n_draws=args.draws, batch_size=b)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                runs.append((clock() - start) / images)
        for b, runs in times.items():
            print(f"{shape:>6s}  draws/pass {b}:  {min(runs) * 1e3:8.1f} ms/image  "
                  f"{min(runs) / min(times[1]):.2f} x one draw per pass")


if __name__ == "__main__":
    main()
