"""``python -m srlib.bench``: one image size at a time, the report, the command line (see :mod:`srlib.bench`)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

import srlib.bench
from srlib.atomic import write_text
from srlib.bench.measure import count_flops, interleaved_times, matmul_job, peak_memory_mib, relative_difference
from srlib.bench.sides import N_DRAWS, PlainTrainer, SrlibTrainer, plain_anomaly_map, plain_restoration_error
from srlib.method.restoration import anomaly_map, restoration_error
from srlib.method.unet import ScoreUNet
from srlib.run.checkpoint import load_score_model
from srlib.run.config import PRECISIONS, TrainConfig
from srlib.run.device import memory_format, pick_device, set_precision


def mvtec_schedule_hours(images_per_s: float, epochs: int = 3000) -> dict[str, float]:
    """Hours of the paper's schedule (``epochs`` over each MVTec AD category's training images) at a training rate."""
    from srlib.data.layouts import MVTEC_TRAIN_IMAGES

    hours = {category: epochs * images / images_per_s / 3600 for category, images in MVTEC_TRAIN_IMAGES.items()}
    return {"all_categories": sum(hours.values()), **hours}


# -- one image size ------------------------------------------------------------------
def bench_size(size: int, args, device: torch.device, clock, bar) -> dict:
    generator = torch.Generator().manual_seed(size)
    x = (torch.rand(args.batch, 3, size, size, generator=generator) * 2 - 1).to(device)
    noise = torch.randn(N_DRAWS, *x.shape, generator=generator).to(device)
    if args.checkpoint:
        weights = load_score_model(args.checkpoint).state_dict()
    else:
        torch.manual_seed(0)
        weights = ScoreUNet(width=args.width).state_dict()
    config = TrainConfig.preset_for("paper", "mvtec", ".", "bench", image_size=size, width=args.width,
                                    batch_size=args.batch, device=str(device), precision=args.precision,
                                    channels_last=args.channels_last, compile=args.compile)

    def fresh_model() -> ScoreUNet:
        model = ScoreUNet(width=args.width)
        model.load_state_dict(weights)
        return model.to(device)

    plain_model = fresh_model().eval()
    fast_model = fresh_model().eval().to(memory_format=memory_format(device, args.channels_last))
    fast_net = torch.compile(fast_model) if args.compile else fast_model
    precision = set_precision(device, args.precision)

    def plain_eval():
        set_precision(device, "fp32")
        return plain_anomaly_map(plain_restoration_error(plain_model, x, noise))

    def fast_eval(draws_per_pass=None):
        autocast = set_precision(device, args.precision)
        with autocast:
            raw = restoration_error(fast_net, x, noise=noise, batch_size=draws_per_pass)
        return anomaly_map(raw.float())

    plain_trainer = PlainTrainer(fresh_model().train(), config)
    fast_trainer = SrlibTrainer(fresh_model().train(), config, device)
    del precision
    seeds = {"plain": 0, "srlib": 0}

    def training(trainer, name):
        def step():
            noise_generator = torch.Generator(device=device).manual_seed(seeds[name])
            seeds[name] += 1
            return trainer.step(x, noise_generator)
        return step

    jobs = {
        "evaluation/plain": plain_eval,
        "evaluation/srlib": fast_eval,
        "training/plain": training(plain_trainer, "plain"),
        "training/srlib": training(fast_trainer, "srlib"),
        "matmul": matmul_job(args.matmul_size, device),
    }
    if args.draws_per_pass:
        for draws in range(1, N_DRAWS + 1):
            jobs[f"evaluation/srlib, {draws} draws per pass"] = lambda draws=draws: fast_eval(draws)

    # The first call of each job warms it up (and compiles): the FLOPs are
    # counted on the baseline's, and the maps and the first training step's
    # losses (same weights, same noise) are compared.
    eval_flops, plain_maps = count_flops(plain_eval)
    fast_maps = fast_eval()
    train_flops, first_plain = count_flops(jobs["training/plain"])
    first_fast = float(jobs["training/srlib"]())
    for name, job in jobs.items():
        if name not in ("evaluation/plain", "evaluation/srlib", "training/plain", "training/srlib"):
            job()
    bar.update(len(jobs))
    memory = {name: peak_memory_mib(job, device) for name, job in jobs.items() if name != "matmul"}
    times = interleaved_times(jobs, args.repeats, clock, device, bar)
    median = {name: statistics.median(seconds) for name, seconds in times.items()}
    matmul_gflops = 2 * args.matmul_size**3 / median["matmul"] / 1e9

    def part(kind: str, flops: int) -> dict:
        plain, fast = median[f"{kind}/plain"], median[f"{kind}/srlib"]
        return {
            "plain_images_per_s": args.batch / plain,
            "srlib_images_per_s": args.batch / fast,
            "speedup": plain / fast,
            "gflop_per_image": flops / args.batch / 1e9,
            "plain_gflops": flops / plain / 1e9,
            "srlib_gflops": flops / fast / 1e9,
            "srlib_fraction_of_matmul": flops / fast / 1e9 / matmul_gflops,
            "peak_memory_mib": {"plain": memory[f"{kind}/plain"], "srlib": memory[f"{kind}/srlib"]},
            "seconds": {"plain": times[f"{kind}/plain"], "srlib": times[f"{kind}/srlib"]},
        }

    result = {
        "size": size,
        "evaluation": {**part("evaluation", eval_flops), "max_map_difference": relative_difference(fast_maps, plain_maps)},
        "training": {**part("training", train_flops), "first_loss_difference": abs(first_fast - first_plain) / abs(first_plain)},
        "matmul": {"size": args.matmul_size, "gflops": matmul_gflops, "seconds": times["matmul"]},
    }
    if size == 192 and args.width == 64:  # the paper's network and resolution
        result["training"]["mvtec_schedule_hours"] = {
            side: mvtec_schedule_hours(result["training"][f"{side}_images_per_s"])["all_categories"]
            for side in ("plain", "srlib")
        }
    if args.draws_per_pass:
        result["draws_per_pass"] = {
            str(draws): args.batch / median[f"evaluation/srlib, {draws} draws per pass"] for draws in range(1, N_DRAWS + 1)
        }
    return result


# -- the report ----------------------------------------------------------------------
def report(results: dict) -> str:
    s = results["settings"]
    m = results["machine"]
    lines = [
        f"srlib.bench: {m['device']}, {s['threads']} threads, {s['clock']} clock, width {s['width']}, batch {s['batch']}, "
        f"N={N_DRAWS}, srlib in {s['precision']}{', channels_last' if s['channels_last'] is not False else ''}"
        f"{', compiled' if s['compile'] else ''}; median of {s['repeats']} interleaved rounds",
    ]
    if m.get("load_average"):
        lines.append(
            f"load average {m['load_average'][0]:.1f} before, {m['load_average'][1]:.1f} after, on {m['cpus']} CPUs; "
            f"this process ran {m['cpu_share']:.0%} of the time its threads could have"
        )
    lines += ["", f"{'':>13} {'plain':>10} {'srlib':>10} {'speed-up':>9} {'rel. diff':>13} "
                  f"{'GFLOP/img':>10} {'srlib GFLOP/s':>14} {'of matmul':>10} {'peak MiB plain/srlib':>21}"]
    for size in results["sizes"]:
        for kind in ("evaluation", "training"):
            r = size[kind]
            diff = r["max_map_difference"] if kind == "evaluation" else r["first_loss_difference"]
            peaks = "/".join("-" if v is None else f"{v:.0f}" for v in r["peak_memory_mib"].values())
            lines.append(
                f"{size['size']:>4} px {kind[:5].replace('evalu', 'eval'):<6} {r['plain_images_per_s']:>8.2f}/s {r['srlib_images_per_s']:>8.2f}/s "
                f"{r['speedup']:>8.2f}x {diff:>13.1e} {r['gflop_per_image']:>10.1f} {r['srlib_gflops']:>14.1f} "
                f"{r['srlib_fraction_of_matmul']:>9.0%} {peaks:>21}"
            )
        if "mvtec_schedule_hours" in size["training"]:
            hours = size["training"]["mvtec_schedule_hours"]
            lines.append(f"{size['size']:>4} px MVTec AD schedule (3000 epochs, 15 categories) at these training rates: "
                         f"{hours['plain']:,.0f} h plain, {hours['srlib']:,.0f} h srlib")
        lines.append(f"{size['size']:>4} px matmul {size['matmul']['size']}^2 fp32: {size['matmul']['gflops']:.1f} GFLOP/s")
        if "draws_per_pass" in size:
            rates = ", ".join(f"{d}: {v:.2f}/s" for d, v in size["draws_per_pass"].items())
            lines.append(f"{size['size']:>4} px srlib evaluation by draws per pass: {rates}")
    lines.append("rel. diff: evaluation, max |srlib map - plain map| / max |plain map|; "
                 "training, the first step's losses (same weights, same noise)")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m srlib.bench", description=srlib.bench.__doc__.split("\n\n")[0],
                                     epilog="Details: the module docstring (python -m pydoc srlib.bench).")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 192], help="image sides in pixels (default 64 192)")
    parser.add_argument("--width", type=int, default=64, help="U-Net width (64: the paper's network)")
    parser.add_argument("--batch", type=int, default=2, help="images per evaluation call and per training step (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; medians are reported (default 3)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads (default: torch's)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or the process's CPU time (all threads)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="srlib's side (the baseline is fp32)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="srlib's memory format (default: srlib's choice for the device)")
    parser.add_argument("--compile", action="store_true", help="srlib's network through torch.compile")
    parser.add_argument("--draws-per-pass", action="store_true",
                        help="also time srlib's evaluation with 1..N draws per forward pass")
    parser.add_argument("--matmul-size", type=int, default=None, help="side of the reference matrix product "
                        "(default 4096 on the CPU, 8192 on a GPU)")
    parser.add_argument("--checkpoint", type=Path, help="trained weights to use (srlib's or the authors'; "
                        "sets --width) instead of a randomly initialised network")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark described by ``args`` (see ``parse_args``); returns the results."""
    device = pick_device(args.device)
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        args.width = load_score_model(args.checkpoint).width
    if args.matmul_size is None:
        args.matmul_size = 4096 if device.type == "cpu" else 8192
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    runs_per_size = 5 + 3 * bool(args.draws_per_pass)
    bar = tqdm(total=len(args.sizes) * runs_per_size * (args.repeats + 1), desc="bench", unit="run", leave=False)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    wall, cpu = time.perf_counter(), time.process_time()
    with bar:
        sizes = [bench_size(size, args, device, clock, bar) for size in args.sizes]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    results = {
        "command": " ".join(["python -m srlib.bench", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "settings": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
        "machine": {
            "device": name,
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "load_average": [load_before[0], os.getloadavg()[0]] if load_before else None,
            "cpu_share": cpu / (wall * args.threads),
            "seconds": wall,
        },
        "sizes": sizes,
    }
    return results


def main(argv=None) -> int:
    from srlib.errors import SrlibError

    args = parse_args(argv)
    try:
        results = run(args)
    except SrlibError as err:
        print(f"srlib: error: {err}", file=sys.stderr)
        return 2
    print(report(results))
    if args.json:
        write_text(args.json, json.dumps(results, indent=2) + "\n")
    return 0
