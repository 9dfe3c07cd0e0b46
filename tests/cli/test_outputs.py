"""Where results go: an unusable --out, a disk that fills, and never a write inside the dataset.

Each case is one ``srlib: error:`` line naming the path and the fix, given
before any work, and nothing written is lost.
"""

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from srlib.atomic import output_folder
from srlib.cli import main
from srlib.errors import SrlibError
from tiny_datasets import snapshot, unprivileged, write_category

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--preset", "cpu", "--image-size", "16", "--width", "8", "--batch-size", "4", "--no-progress"]


def one_line(capsys, argv) -> str:
    """The single error line of a command that must refuse."""
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("srlib: error: "), err
    return err[0].removeprefix("srlib: error: ")


def test_output_folders_that_cannot_be(tmp_path, world_readable_dir):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SrlibError, match=rf"^--out {tmp_path / 'afile'} is not a folder; pass a folder$"):
        output_folder(tmp_path / "afile")
    inside = tmp_path / "afile" / "run"
    with pytest.raises(SrlibError) as raised:
        output_folder(inside)
    assert str(raised.value) == f"--out {inside} is not a folder (inside the file {tmp_path / 'afile'}); pass a folder"
    with pytest.raises(SrlibError) as raised:
        output_folder("/proc/srlib/run")
    assert str(raised.value) == ("--out /proc/srlib/run cannot be created (No such file or directory); "
                                 "choose a folder you can write to")
    locked = world_readable_dir / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    with unprivileged():
        if os.access(locked, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
            pytest.skip("this user can write into a read-only folder")
        for path, words in ((locked / "run", "cannot be created"), (locked, "cannot be written to")):
            with pytest.raises(SrlibError) as raised:
                output_folder(path)
            assert str(raised.value) == f"--out {path} {words} (Permission denied); choose a folder you can write to"
    assert output_folder(tmp_path / "new" / "run").is_dir() and not any((tmp_path / "new" / "run").iterdir())


def test_train_and_evaluate_refuse_an_unusable_out_before_any_work(tmp_path, capsys):
    write_category(tmp_path / "data", "bottle", size=(32, 32))
    (tmp_path / "afile").write_text("x")
    data = ["--dataset", "mvtec", "--root", str(tmp_path / "data"), "--category", "bottle"]
    expected = f"--out {tmp_path / 'afile'} is not a folder; pass a folder"
    assert one_line(capsys, ["train", *data, *TINY, "--out", str(tmp_path / "afile")]) == expected
    # The checkpoint is not even read: the output is checked first.
    assert one_line(capsys, ["evaluate", "--checkpoint", str(tmp_path / "none.pt"), *data, "--no-progress",
                             "--out", str(tmp_path / "afile")]) == expected


def test_nothing_is_ever_written_inside_the_dataset_root(tmp_path, capsys):
    root = tmp_path / "data"
    folder = write_category(root, "bottle", size=(32, 32))
    before = snapshot(root)
    data = ["--dataset", "mvtec", "--root", str(root), "--category", str(folder)]  # a category given as a path
    for out in (root, folder / "results"):
        message = f"--out {out} would write into the dataset root {root} ({out}); srlib never writes into a dataset: " \
                  "choose an output folder outside it"
        assert one_line(capsys, ["train", *data, *TINY, "--out", str(out)]) == message
        assert one_line(capsys, ["evaluate", "--checkpoint", str(tmp_path / "none.pt"), *data, "--no-progress",
                                 "--out", str(out)]) == message
        assert one_line(capsys, ["reproduce", "--dataset", "mvtec", "--root", str(root), "--devices", "cpu",
                                 "--categories", str(folder), *TINY, "--out", str(out)]) == message
    assert snapshot(root) == before


def test_reproduce_files_a_category_given_as_a_path_under_its_name(tmp_path):
    from srlib.reproduce.plan import plan

    root = tmp_path / "data"
    folder = write_category(root, "bottle", size=(32, 32))
    jobs = plan("mvtec", root, tmp_path / "out", [str(folder) + "/"], "cpu", {}, None)
    assert [(job.category, job.folder) for job in jobs] == [("bottle", (tmp_path / "out" / "mvtec" / "bottle").resolve())]
    assert jobs[0].error is None and jobs[0].expected.category == "bottle"


def test_reproduce_refuses_an_out_whose_run_folders_are_the_datasets(textures_root, tmp_path):
    # srlib data textures OUT/textures && srlib reproduce --root OUT/textures --out OUT: the bundled textures are
    # filed under OUT/textures/<category>, the dataset's own folders.
    from srlib.reproduce.plan import plan

    out = textures_root.parent
    with pytest.raises(SrlibError) as raised:
        plan("mvtec", textures_root, out, ["brick"], "cpu", {}, None)
    brick = textures_root.resolve() / "brick"
    assert str(raised.value) == (f"--out {out.resolve()} (for brick: {brick}) would write into the dataset root "
                                 f"{textures_root.resolve()} ({brick}); srlib never writes into a dataset: "
                                 "choose an output folder outside it")


def _file_size_limit(size: int):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return limit


def test_torch_save_failing_mid_write_is_one_line_naming_the_file(tmp_path):
    # torch.save turns the OSError of a failed write into a RuntimeError of its own; the line still names it.
    import torch

    from srlib.atomic import save_torch

    path = tmp_path / "checkpoint.pt"
    save_torch({"w": torch.zeros(10)}, path)
    before = path.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
    try:
        with pytest.raises(SrlibError) as raised:
            save_torch({"w": torch.zeros(100_000)}, path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert str(raised.value) == (f"cannot write {path} (File too large); the previous version is kept; "
                                 "free some space or choose another output folder")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


@pytest.mark.slow
def test_a_disk_that_fills_during_a_checkpoint_write_keeps_the_previous_one(tmp_path):
    write_category(tmp_path / "data", "bottle", size=(32, 32), n_train=4)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "srlib", "train", "--dataset", "mvtec", "--root", str(tmp_path / "data"),
               "--category", "bottle", *TINY, "--checkpoint-every", "1", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([*command, "--epochs", "1"], env=env, check=True, capture_output=True)
    first = (out / "checkpoint.pt").read_bytes()
    assert len(first) > 100_000  # the limit below lets config.json and the log through, not a checkpoint
    full = subprocess.run([*command, "--epochs", "2", "--resume"], env=env, capture_output=True, text=True,
                          preexec_fn=_file_size_limit(100_000))
    assert full.returncode == 2 and "Traceback" not in full.stderr
    assert full.stderr.splitlines()[-1] == (f"srlib: error: cannot write {out / 'checkpoint.pt'} (File too large); the "
                                            "previous version is kept; free some space or choose another output folder")
    assert (out / "checkpoint.pt").read_bytes() == first
    # No temporary left; the run's lock file (srlib train locks its --out) stays, empty.
    assert sorted(p.name for p in out.iterdir()) == [".srlib-train.lock", "checkpoint.pt", "config.json", "log.jsonl",
                                                     "model.pt"]
    # With space again, the same command continues from the kept checkpoint.
    again = subprocess.run([*command, "--epochs", "2", "--resume"], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert [line.count('"epoch": ') for line in (out / "log.jsonl").read_text().splitlines()] == [1, 1]
