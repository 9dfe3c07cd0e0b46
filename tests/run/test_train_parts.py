"""The trainer's parts against hand computations: EMA, atomic writes, data order, RNG states, devices."""

import errno
import os
import random
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from srlib.atomic import PAUSE_ENV, atomic_write, remove_stale_temporaries, save_torch
import srlib.run.device
from srlib.run.device import pick_device, set_precision
from srlib.run.ema import ema_of
from srlib.errors import SrlibError
from srlib.run.resume import epoch_batches, noise_seed, rng_states, set_rng_states

ROOT = Path(__file__).resolve().parents[2]


# -- EMA ----------------------------------------------------------------------------
class Scalar(torch.nn.Module):
    """One trained scalar and one frozen one, like the U-Net's Fourier frequencies."""

    def __init__(self, value):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(value, dtype=torch.float64))
        self.frozen = torch.nn.Parameter(torch.tensor(0.1, dtype=torch.float64), requires_grad=False)


def test_ema_follows_the_authors_warmup_by_hand():
    # The EMA starts at the initial weight; the n-th update uses d = min(0.9999, (1+n)/(10+n)).
    weights = [Fraction(3), Fraction(-1), Fraction(5, 2), Fraction(7), Fraction(0), Fraction(-4, 3)]
    model = Scalar(float(weights[0]))
    ema = ema_of(model)
    expected = weights[0]
    assert ema.module.w.item() == float(expected)
    for n, w in enumerate(weights[1:], start=1):
        with torch.no_grad():
            model.w.fill_(float(w))
        ema.update_parameters(model)
        d = min(Fraction(9999, 10000), Fraction(1 + n, 10 + n))
        expected = d * expected + (1 - d) * w
        assert ema.module.w.item() == pytest.approx(float(expected), rel=1e-14, abs=1e-14)
    # The first update is a blend with d = 2/11, not a copy of the new weights.
    first = Scalar(3.0)
    first_ema = ema_of(first)
    with torch.no_grad():
        first.w.fill_(-1.0)
    first_ema.update_parameters(first)
    assert first_ema.module.w.item() == pytest.approx(float(Fraction(2, 11) * 3 + Fraction(9, 11) * -1), rel=1e-15)
    assert ema.module.frozen.item() == 0.1  # lerp towards an equal value is exact


def test_ema_decay_is_capped_at_the_ceiling():
    model = Scalar(1.0)
    ema = ema_of(model)
    ema.n_averaged.fill_(200_000)  # (1+n)/(10+n) > 0.9999 from n = 89,991 on
    with torch.no_grad():
        model.w.fill_(2.0)
    ema.update_parameters(model)
    assert ema.module.w.item() == pytest.approx(0.9999 * 1.0 + 0.0001 * 2.0, rel=1e-14)


# -- atomic writes ------------------------------------------------------------------
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"old and good")

    def half_then_fail(file):
        file.write(b"new but only ha")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(SrlibError) as raised:
        atomic_write(target, half_then_fail)
    assert str(raised.value) == (f"cannot write {target} (No space left on device); the previous version is kept; "
                                 "free some space or choose another output folder")
    assert target.read_bytes() == b"old and good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_sigkill_in_the_middle_of_a_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "checkpoint.pt"
    old = {"weights": torch.arange(10.0)}
    save_torch(old, target)
    script = f"import torch; from srlib.atomic import save_torch; save_torch({{'weights': torch.zeros(100000)}}, {str(target)!r})"
    env = {**os.environ, PAUSE_ENV: "60", "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".checkpoint.pt.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    (partial,) = tmp_path.glob(".checkpoint.pt.*.tmp")
    assert partial.stat().st_size > 0  # killed with half a file written
    assert torch.equal(torch.load(target, weights_only=True)["weights"], old["weights"])
    remove_stale_temporaries(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_written_files_respect_the_umask(tmp_path):
    mask = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a", lambda f: f.write(b"x"))
    finally:
        os.umask(mask)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o640


# -- data order ----------------------------------------------------------------------
def test_each_epoch_is_a_fresh_permutation_with_the_last_batch_kept():
    first, second = epoch_batches(10, 0, seed=7, batch_size=4), epoch_batches(10, 1, seed=7, batch_size=4)
    assert [len(b) for b in first] == [4, 4, 2]
    assert sorted(torch.cat(first).tolist()) == list(range(10)) == sorted(torch.cat(second).tolist())
    assert torch.cat(first).tolist() != torch.cat(second).tolist()
    assert torch.equal(torch.cat(first), torch.cat(epoch_batches(10, 0, seed=7, batch_size=4)))


def test_processes_share_out_the_single_process_batches():
    # Under DDP the union of the ranks' step-s batches is the single process's batch s.
    single = epoch_batches(12, 3, seed=7777, batch_size=4)
    ranks = [epoch_batches(12, 3, seed=7777, batch_size=4, rank=r, world=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(single)
    for step, batch in enumerate(single):
        assert sorted(torch.cat([ranks[0][step], ranks[1][step]]).tolist()) == sorted(batch.tolist())


def test_noise_seeds_differ_by_seed_rank_and_step():
    seeds = {noise_seed(s, r, t) for s in (0, 1) for r in range(3) for t in range(100)}
    assert len(seeds) == 600 and all(0 <= s < 2**63 for s in seeds)


# -- RNG states ------------------------------------------------------------------------
def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.standard_normal()  # leaves a cached Gaussian in numpy's state
    save_torch(rng_states(), tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.standard_normal(3), [random.random() for _ in range(3)], random.gauss(0, 1))
    set_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True))
    again = (torch.rand(3), np.random.standard_normal(3), [random.random() for _ in range(3)], random.gauss(0, 1))
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2:] == again[2:]


# -- devices ---------------------------------------------------------------------------
def test_device_choice_and_precision_checks(monkeypatch):
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(SrlibError, match="unknown device 'tpu9'"):
        pick_device("tpu9")
    if not torch.cuda.is_available():
        assert pick_device("auto").type in ("cpu", "mps")
        with pytest.raises(SrlibError, match="device 'cuda' is not available"):
            pick_device("cuda")
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():  # torch's answer agrees with the flags the kernel reports
        flags = set(next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split())
        assert srlib.run.device.cpu_has_bf16() == bool(flags & {"avx512_bf16", "amx_tile"})
    monkeypatch.setattr(srlib.run.device, "cpu_has_bf16", lambda: False)
    with pytest.raises(SrlibError, match="bf16 needs a GPU or a CPU with bfloat16 instructions"):
        set_precision(torch.device("cpu"), "bf16")
    monkeypatch.setattr(srlib.run.device, "cpu_has_bf16", lambda: True)
    with set_precision(torch.device("cpu"), "bf16"):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    with pytest.warns(UserWarning, match="tf32 changes nothing on cpu"):
        set_precision(torch.device("cpu"), "tf32")
    set_precision(torch.device("cpu"), "fp32")
