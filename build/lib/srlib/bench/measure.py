"""Measuring in one process: device synchronisation, peak memory, FLOPs, interleaved rounds, a matmul reference."""

from __future__ import annotations

import contextlib
import ctypes
import re
from pathlib import Path

import torch

from srlib.run.device import set_precision


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def peak_memory_mib(run, device: torch.device) -> float | None:
    """Peak memory one call of ``run`` adds, in MiB (None where it cannot be read)."""
    _synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        run()
        _synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    with contextlib.suppress(AttributeError, OSError):  # hand freed heap back, so that reuse counts as growth
        ctypes.CDLL(None).malloc_trim(0)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set (Linux)
    except OSError:
        return None
    before = _status_kib("VmRSS")
    run()
    after = _status_kib("VmHWM")
    return None if before is None or after is None else (after - before) / 1024


def count_flops(run) -> tuple[int, object]:
    """FLOPs of one call (convolutions and matrix products, as torch counts them), and what it returned."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        returned = run()
    return counter.get_total_flops(), returned


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max())


def interleaved_times(jobs: dict, repeats: int, clock, device: torch.device, bar) -> dict[str, list[float]]:
    """Seconds of each job, round after round; odd rounds run the jobs in reverse order."""
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for round_ in range(repeats):
        names = list(jobs) if round_ % 2 == 0 else list(jobs)[::-1]
        for name in names:
            _synchronize(device)
            start = clock()
            jobs[name]()
            _synchronize(device)
            times[name].append(clock() - start)
            bar.update()
    return times


def matmul_job(n: int, device: torch.device):
    """One n x n fp32 matrix product (IEEE fp32: TF32 off while it runs)."""
    generator = torch.Generator().manual_seed(1)
    a, b = (torch.randn(n, n, generator=generator).to(device) for _ in range(2))

    def run():
        set_precision(device, "fp32")
        return a @ b

    return run
