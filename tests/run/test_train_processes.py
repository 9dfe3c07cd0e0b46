"""Real processes: SIGKILL at random moments (and mid-write) then --resume; two DDP processes with gloo."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from srlib.atomic import PAUSE_ENV
from srlib.run.checkpoint import load_score_model
from srlib.data import folder_dataset
from srlib.run.evaluate import evaluate_model

ROOT = Path(__file__).resolve().parents[2]
# One thread: the same arithmetic in every process (and kind to a shared 2-core machine).
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
STEPS = 50  # of the killed run: 10 epochs of the 80 brick images in batches of 16


def train_command(root, out, epochs):
    return [sys.executable, "-m", "srlib", "train", "--dataset", "mvtec", "--root", str(root), "--category", "brick",
            "--preset", "cpu", "--out", str(out), "--epochs", str(epochs), "--image-size", "32", "--width", "8",
            "--batch-size", "16", "--checkpoint-every", "1", "--device", "cpu", "--no-progress"]


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def wait_for(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.slow
def test_sigkill_at_any_moment_then_resume_ends_bit_identical(textures_root, tmp_path):
    command = train_command(textures_root, tmp_path / "killed", epochs=STEPS // 5) + ["--resume"]
    # The uninterrupted run, alongside.
    reference = subprocess.Popen(train_command(textures_root, tmp_path / "straight", epochs=STEPS // 5), env=ENV,
                                 stderr=subprocess.PIPE, text=True)
    killed = tmp_path / "killed"
    checkpoint = killed / "checkpoint.pt"

    # 1. Killed while writing its second checkpoint: the first stays intact.
    victim = subprocess.Popen(command, env={**ENV, PAUSE_ENV: "2"}, stderr=subprocess.DEVNULL)
    wait_for(lambda: checkpoint.exists() and list(killed.glob(".checkpoint.pt.*.tmp")))
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert list(killed.glob(".checkpoint.pt.*.tmp")) and load(checkpoint)["epoch"] == 1

    # 2. A clean SIGTERM early in the run: saved after the step in progress, exit status 143.
    step_before = load_quietly(checkpoint)
    victim = subprocess.Popen(command, env=ENV, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: load_quietly(checkpoint) > step_before)
    victim.send_signal(signal.SIGTERM)
    _, stderr = victim.communicate()
    assert victim.returncode == 128 + signal.SIGTERM and "--resume" in stderr.splitlines()[-1], stderr

    # 3. Killed at random moments of the epoch after the one it completes (training or writing).
    moments = random.Random(4)
    for seconds in [moments.uniform(0.0, 0.8) for _ in range(3)]:
        step_before = load_quietly(checkpoint)
        if step_before >= STEPS // 2:  # leave the second half to the final run
            break
        victim = subprocess.Popen(command, env=ENV, stderr=subprocess.DEVNULL)
        wait_for(lambda: load_quietly(checkpoint) > step_before or victim.poll() is not None)
        time.sleep(seconds)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    assert load(checkpoint)["step"] < STEPS

    # 3. Resumed to the end: the very same weights as the uninterrupted run.
    assert reference.wait() == 0, reference.stderr.read()
    final = subprocess.run(command, env=ENV, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    a, b = load(tmp_path / "straight" / "model.pt"), load(killed / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    a, b = load(tmp_path / "straight" / "checkpoint.pt"), load(checkpoint)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]) and a["step"] == b["step"] == STEPS
    assert not list(killed.glob(".*.tmp"))
    assert len((killed / "log.jsonl").read_text().splitlines()) == STEPS // 5


def load_quietly(path):
    """The checkpoint's step, or -1 while it cannot be read."""
    try:
        return load(path)["step"]
    except Exception:
        return -1


@pytest.mark.slow
def test_two_processes_with_gloo_train_the_same_schedule(textures_root, tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "srlib",
               *train_command(textures_root, out, epochs=2)[3:]]
    run = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    state = load(out / "checkpoint.pt")
    # 80 images, global batch 16 = 8 per process: 5 steps an epoch, as with one process.
    assert (state["world_size"], state["epoch"], state["step"]) == (2, 2, 10)
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    model = load_score_model(out / "model.pt")
    result = evaluate_model(model, folder_dataset("mvtec", textures_root, "brick", "test", image_size=32), progress=False)
    assert all(0 <= value <= 1 for value in result.metrics().values())
    assert result.maps.shape == (60, 1, 256, 256)
