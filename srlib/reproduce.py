"""``srlib reproduce``: chapter 5 once per category, over several devices; then chapter 6 and the tables.

Every category is one papermill execution of ``notebooks/05_training_on_mvtec.ipynb``
in a process of its own (one worker per device, ``CUDA_VISIBLE_DEVICES``
set per worker), writing into ``OUT/<dataset>/<category>/``:

``05_training_on_mvtec.ipynb``
    the executed chapter, kept;
``05_training_on_mvtec.parameters.json``, ``05_training_on_mvtec.log``
    the parameters it ran with and everything it printed;
``train/``
    the training run (``checkpoint.pt``, ``model.pt``, ``config.json``, ``log.jsonl``);
``result.json``
    the evaluation at (k, N), the file the tables read, written last;
``n_draws_1/result.json``... , ``k_sweep.csv``, ``gallery.npz``, ``overlays/``
    the N ablation, the k sweep and the figures' data;
``failed.txt``
    only after a failure: the error, the cell and where the log is.

``<dataset>`` is ``mvtec``, ``btad`` or ``mpdd``, or ``textures`` for the
bundled data (so it is never filed as MVTec AD). A category whose
``result.json`` was made with the same configuration (training settings
without the runtime ones, k, N, or the same released checkpoint) is skipped;
a re-run after a crash or a kill therefore redoes only the unfinished ones,
and an interrupted training resumes from its last checkpoint. Then the
tables go to ``OUT/tables/`` (Markdown and CSV) and chapter 6 is executed
into ``OUT/06_results.ipynb``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from srlib.errors import SrlibError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CHAPTER5 = "05_training_on_mvtec.ipynb"
CHAPTER6 = "06_results.ipynb"
RESULT = "result.json"
FAILED = "failed.txt"
LOCK = ".lock"
TABLES = "tables"
# Settings that may differ between runs without changing the result.
RUNTIME = ("root", "device", "checkpoint_every", "compile")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


# --- one category's folder (shared with chapter 5) ---------------------------------


def run_folder(out_dir: str | Path, dataset: str, root: str | Path, category: str) -> Path:
    """``out_dir/<dataset name>/<category>``; the bundled textures are filed under ``textures``."""
    from srlib.evaluate import data_source

    return Path(out_dir) / data_source(dataset, root, category)[0] / category


def clear_run_folder(folder: Path) -> None:
    """Empty a category folder written by chapter 5, to start over; refuse any other folder."""
    import shutil

    if not folder.exists():
        return
    ours = {RESULT, FAILED, LOCK, "train", "k_sweep.csv", "gallery.npz", "overlays"}
    foreign = [p.name for p in folder.iterdir()
               if p.name not in ours and not p.name.startswith(("n_draws_", Path(CHAPTER5).stem))]
    if foreign:
        raise SrlibError(f"{folder} holds files chapter 5 did not write ({', '.join(sorted(foreign)[:3])}); "
                         "choose another out_dir or move them away")
    for path in folder.iterdir():
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def find_checkpoint(folder: str | Path, category: str) -> Path:
    """The released checkpoint of ``category`` in ``folder``.

    Accepted, in this order: ``<category>.pt`` (or .pth, .ckpt, .bin);
    ``<category>/`` holding ``model.pt``, exactly one checkpoint file, or
    ``train/model.pt`` (an srlib run folder); a single file whose name
    contains the category as a word (``mvtec_bottle_ema.pth``, ``bottle-3000.pt``).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SrlibError(f"checkpoint folder {folder} does not exist; pass the folder that holds the released checkpoints")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
    exact = [p for p in files if p.stem == category]
    if len(exact) == 1:
        return exact[0]
    inside = folder / category
    if inside.is_dir():
        candidates = sorted(p for p in inside.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
        single = candidates if len(candidates) == 1 else []
        for preferred in (inside / "model.pt", *single, inside / "train" / "model.pt"):
            if preferred.is_file():
                return preferred
        if candidates:
            raise SrlibError(f"{inside} holds {len(candidates)} checkpoint files ({', '.join(p.name for p in candidates)}); "
                             "keep one, or name the one to use model.pt")
    word = re.compile(rf"(^|[^a-z0-9]){re.escape(category.lower())}($|[^a-z0-9])")
    named = [p for p in files if word.search(p.stem.lower())]
    if len(named) == 1:
        return named[0]
    if named:
        raise SrlibError(f"several checkpoints in {folder} name {category!r}: {', '.join(p.name for p in named)}; "
                         f"keep one, or rename the one to use {category}.pth")
    raise SrlibError(f"no checkpoint for {category!r} in {folder}: expected {category}.pth (or .pt), "
                     f"a folder {category}/ with one checkpoint in it, or a file whose name contains {category!r}")


# --- the jobs --------------------------------------------------------------------


@dataclass
class Job:
    """One category to run: its folder, the notebook's parameters, what its result must match."""

    category: str
    folder: Path
    parameters: dict
    expected: object = None  # the TrainConfig to train, or None for a released checkpoint
    error: str | None = None  # known before running (no checkpoint found)
    state: str = "waiting"  # waiting, skipped, running, done, failed, busy, stopped
    message: str = ""

    @property
    def epochs(self) -> int | None:
        return getattr(self.expected, "epochs", None)


def result_matches(job: Job) -> bool:
    """Whether the category folder holds a finished result of exactly this job's configuration."""
    from srlib.config import TrainConfig

    try:
        record = json.loads((job.folder / RESULT).read_text())
    except (OSError, ValueError):
        return False
    params = job.parameters
    if not isinstance(record, dict) or record.get("k") != params["k"] or record.get("n_draws") != params["n_draws"]:
        return False
    if not _sweep_matches(job):
        return False
    if job.expected is None:
        size = params["image_size"]
        return record.get("checkpoint") == params["checkpoint"] and (size is None or record.get("image_size") == size)
    try:
        saved = TrainConfig.from_dict(record["config"])
    except (SrlibError, TypeError, KeyError):
        return False
    return not saved.differences(job.expected, ignore=RUNTIME)


def _sweep_matches(job: Job) -> bool:
    """Whether the category's k sweep covers exactly the requested grid."""
    from srlib.sweeps import K_GRID, read_k_sweeps

    try:
        rows = read_k_sweeps(job.folder)
    except SrlibError:
        return False
    wanted = set(job.parameters["k_grid"] or K_GRID) | {job.parameters["k"]}
    return {row["k"] for row in rows} == wanted


def plan(dataset: str, root: str | Path, out: str | Path, categories: list[str] | None, preset: str,
         overrides: dict, checkpoints: str | Path | None, k: float, n_draws: int,
         k_grid: list[float] | None = None) -> list[Job]:
    """One job per category; nothing is written."""
    from srlib.config import TrainConfig
    from srlib.data.layouts import category_folders, check_root, find_category, get_layout

    layout = get_layout(dataset)
    root = check_root(layout, root).resolve()
    categories = categories or category_folders(root)
    if not categories:
        raise SrlibError(f"{root} holds no category folders; pass the folder that holds the {layout.title} categories")
    for category in categories:
        find_category(layout, root, category)
    out = Path(out).expanduser().resolve()
    train_overrides = {key: value for key, value in overrides.items()
                       if value is not None and key not in ("epochs", "image_size", "width", "device")}
    jobs = []
    for category in dict.fromkeys(categories):
        parameters = dict(dataset=dataset, root=str(root), category=category, preset=preset,
                          epochs=overrides.get("epochs"), image_size=overrides.get("image_size"),
                          width=overrides.get("width"), train_overrides=train_overrides, checkpoint="",
                          out_dir=str(out), resume=True, k=k, n_draws=n_draws, k_grid=list(k_grid or []))
        job = Job(category, run_folder(out, dataset, root, category), parameters)
        if checkpoints:
            try:
                parameters["checkpoint"] = str(find_checkpoint(checkpoints, category).resolve())
            except SrlibError as err:
                job.error = str(err)
        else:
            job.expected = TrainConfig.preset_for(preset, dataset, root, category,
                                                  **{key: value for key, value in overrides.items() if key != "device"})
        jobs.append(job)
    return jobs


def worker_devices(spec: str | None) -> list[tuple[str, dict]]:
    """(device for the notebook, environment changes) of each worker.

    ``None``: every visible GPU, else one CPU worker. ``0,1,3``: one worker per
    CUDA device. ``cpu``, ``mps`` or ``auto``: one worker on that device.
    """
    if spec is None:
        import torch

        count = torch.cuda.device_count()
        spec = ",".join(str(i) for i in range(count)) if count else "cpu"
    if spec in ("cpu", "mps", "auto"):
        return [(spec, {})]
    ids = [part.strip() for part in spec.split(",")]
    if not all(part.isdigit() for part in ids):
        raise SrlibError(f"--devices {spec!r}: give CUDA device numbers separated by commas (0,1,2), or cpu")
    return [("cuda", {"CUDA_VISIBLE_DEVICES": i}) for i in ids]


# --- running ---------------------------------------------------------------------


def _lock(folder: Path):
    """An exclusive lock on the category folder (None where locks are not available); False if taken."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock, one reproduce at a time
        return None
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    return fd


def kernel_environment(changes: dict) -> dict:
    """The book build's kernel environment (this checkout's srlib first on the path) and a worker's changes."""
    from srlib.book import kernel_env

    return {**kernel_env(), **changes}


def notebook_error(path: Path) -> str | None:
    """``Name: message (cell n: first line)`` of the first error output of an executed notebook."""
    try:
        cells = json.loads(path.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return None
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                source = "".join(cell.get("source", "")).strip().splitlines()
                where = f" (cell {index}: {source[0]})" if source else ""
                return f"{output.get('ename')}: {' '.join(str(output.get('evalue', '')).split())}{where}"
    return None


class Runner:
    """Runs notebooks in child processes; stops them on request, letting training save a checkpoint.

    A stop (SIGINT or SIGTERM to ``srlib reproduce``) interrupts each child's
    kernel like Jupyter's interrupt button: the trainer finishes its step,
    saves a checkpoint and stops, and the child exits. Whatever still runs
    ``GRACE`` seconds later, or after a second stop, is killed.
    """

    GRACE = 120.0

    def __init__(self):
        self.stopping = threading.Event()
        self.stopped_at: float | None = None
        self.children: set[subprocess.Popen] = set()
        self.guard = threading.Lock()

    def execute(self, notebook: Path, output: Path, parameters: dict, env: dict, keep_fd=None) -> int:
        """papermill ``notebook`` -> ``output`` in a child process; returns its exit status.

        The parameters go to ``<output>.parameters.json`` and everything the
        notebook prints to ``<output>.log``.
        """
        from srlib.atomic import write_text

        params = output.with_suffix(".parameters.json")
        write_text(params, json.dumps(parameters, indent=2) + "\n")
        command = [sys.executable, "-m", "srlib.reproduce", str(notebook), str(output), str(params)]
        with open(output.with_suffix(".log"), "ab") as stream:
            with self.guard:
                if self.stopping.is_set():
                    return -signal.SIGTERM
                child = subprocess.Popen(command, cwd=str(notebook.parent), env=env, stdout=stream,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         pass_fds=(keep_fd,) if keep_fd else ())
                self.children.add(child)
            try:
                return child.wait()
            finally:
                with self.guard:
                    self.children.discard(child)

    def _signal_all(self, sig, children_too: bool = True) -> None:
        """Send ``sig`` to everything each child started (its kernel runs in a session of its own), and to the child."""
        import psutil

        with self.guard:
            for child in self.children:
                try:
                    family = psutil.Process(child.pid).children(recursive=True)
                    family += [psutil.Process(child.pid)] if children_too else []
                except psutil.NoSuchProcess:
                    continue
                for process in family:
                    try:
                        process.send_signal(sig)
                    except psutil.NoSuchProcess:
                        pass

    def stop(self, *_) -> None:
        """First call: interrupt the kernels (training checkpoints and stops). Second call: kill."""
        if self.stopping.is_set():
            self.kill()
            return
        self.stopping.set()
        self.stopped_at = time.monotonic()
        print("\nsrlib reproduce: stopping; the runs save a checkpoint after their current step "
              "(press Ctrl-C again to kill them now)", file=sys.stderr, flush=True)
        # The kernels only: papermill itself would shut its kernel down at once.
        self._signal_all(signal.SIGINT, children_too=False)

    def kill(self) -> None:
        self._signal_all(signal.SIGKILL)

    def reap(self) -> None:
        """Kill what still runs ``GRACE`` seconds after a stop."""
        if self.stopped_at is not None and time.monotonic() - self.stopped_at > self.GRACE:
            self.kill()


def run_job(job: Job, runner: Runner, device: str, env: dict) -> None:
    """Execute chapter 5 for one category; sets ``job.state`` and ``job.message``."""
    from srlib.atomic import write_text

    job.folder.mkdir(parents=True, exist_ok=True)
    if job.error:
        job.state, job.message = "failed", job.error
        write_text(job.folder / FAILED, f"{job.category} failed before starting: {job.error}\n")
        return
    lock = _lock(job.folder)
    if lock is False:
        job.state, job.message = "busy", f"{job.folder} is being run by another srlib reproduce; left alone"
        return
    try:
        (job.folder / FAILED).unlink(missing_ok=True)
        job.state = "running"
        executed = job.folder / CHAPTER5
        status = runner.execute(NOTEBOOKS / CHAPTER5, executed, {**job.parameters, "device": device},
                                kernel_environment(env), keep_fd=lock)
        if runner.stopping.is_set():
            job.state, job.message = "stopped", "stopped; run the same command again to resume"
        elif status == 0 and result_matches(job):
            job.state = "done"
        else:
            error = notebook_error(executed) or f"exit status {status}; see the log"
            job.state, job.message = "failed", error
            write_text(job.folder / FAILED, f"{job.category} failed: {error}\nexecuted notebook: {executed}\n"
                                            f"log: {executed.with_suffix('.log')}\nexit status: {status}\n")
    finally:
        if lock:
            os.close(lock)


def _progress_line(job: Job) -> str:
    """``brick 12/40`` from the training log, or the job's state."""
    try:
        lines = (job.folder / "train" / "log.jsonl").read_bytes().splitlines()
        epoch = json.loads(lines[-1])["epoch"] if lines else 0
    except (OSError, ValueError, KeyError):
        epoch = 0
    if job.epochs and epoch < job.epochs:
        return f"{job.category} epoch {epoch}/{job.epochs}"
    return f"{job.category} evaluating"


def run_all(jobs: list[Job], devices: list[tuple[str, dict]], runner: Runner, progress: bool = True) -> None:
    """Run every waiting job, one worker thread per device, with a progress bar over categories."""
    from queue import Empty, SimpleQueue

    from tqdm.auto import tqdm

    queue = SimpleQueue()
    for job in jobs:
        queue.put(job)

    def work(device, env):
        while not runner.stopping.is_set():
            try:
                job = queue.get_nowait()
            except Empty:
                return
            run_job(job, runner, device, env)

    threads = [threading.Thread(target=work, args=device, daemon=True) for device in devices]
    for thread in threads:
        thread.start()
    bar = tqdm(total=len(jobs), desc="categories", unit="category", disable=not progress or None, dynamic_ncols=True)
    reported = set()
    with bar:
        while any(thread.is_alive() for thread in threads):
            time.sleep(1)
            runner.reap()
            running = [_progress_line(j) for j in jobs if j.state == "running"]
            bar.set_postfix_str("; ".join(running)[:120])
            for job in jobs:
                if job.state not in ("waiting", "running") and id(job) not in reported:
                    reported.add(id(job))
                    bar.update()
                    bar.write(f"{job.category}: {job.state}" + (f": {job.message}" if job.message else ""))


def execute_child(argv: list[str]) -> int:
    """The child process: papermill ``NOTEBOOK OUTPUT PARAMETERS.json`` (output streamed to stdout)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook, output, parameters = argv
    try:
        papermill.execute_notebook(notebook, output, parameters=json.loads(Path(parameters).read_text()),
                                   cwd=str(Path(notebook).parent), log_output=True, progress_bar=False)
    except PapermillExecutionError as err:
        print(f"srlib reproduce: {Path(notebook).name} failed in cell {err.cell_index}: {err.ename}: {err.evalue}",
              file=sys.stderr)
        return 1
    return 0


# --- the command -----------------------------------------------------------------


def reproduce(args) -> int:
    from srlib.tables import all_comparisons, load_results, write_tables
    from srlib.train_cli import overrides_from

    for chapter in (CHAPTER5, CHAPTER6):
        if not (NOTEBOOKS / chapter).is_file():
            raise SrlibError(f"{NOTEBOOKS / chapter} not found: srlib reproduce runs the book's notebooks; "
                             "run it from a checkout of the project (pip install -e .)")
    devices = worker_devices(args.devices)
    jobs = plan(args.dataset, args.root, args.out, args.categories, args.preset, overrides_from(args),
                args.checkpoints, args.k, args.n_draws, args.k_grid)
    out = Path(args.out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        if not job.error and result_matches(job):
            job.state = "skipped"
    todo = [job for job in jobs if job.state == "waiting"]
    print(f"srlib reproduce: {len(jobs)} categories, {len(jobs) - len(todo)} already done with this configuration, "
          f"{len(todo)} to run on {len(devices)} worker(s) ({', '.join(d + ''.join(f' {v}' for v in e.values()) for d, e in devices)}); "
          f"each category's log: {out}/<dataset>/<category>/{Path(CHAPTER5).stem}.log")
    if todo and args.preset == "paper" and not args.checkpoints and devices[0][0] == "cpu":
        print("srlib: warning: the paper preset on a CPU takes days per category; add --preset cpu to try it in minutes",
              file=sys.stderr)
    runner = Runner()
    previous = {sig: signal.signal(sig, runner.stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        run_all(todo, devices, runner, progress=args.progress)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if runner.stopping.is_set():
        print(f"srlib reproduce: stopped. Run the same command again to resume (finished categories are kept).",
              file=sys.stderr)
        return 130
    results = load_results(out, pattern=RESULT)
    written = write_tables(all_comparisons(results), out / TABLES)
    print(f"tables: {len(written)} files in {out / TABLES}")
    status = 0
    if results:  # (with none, chapter 6 would make its own with chapter 5's defaults)
        executed = out / CHAPTER6
        status = runner.execute(NOTEBOOKS / CHAPTER6, executed, {"results_dir": str(out)}, kernel_environment({}))
        print(f"chapter 6: {executed}" + ("" if status == 0 else f" failed: {notebook_error(executed)} "
                                                                 f"(log: {executed.with_suffix('.log')})"))
    failed = [job for job in jobs if job.state in ("failed", "busy")]
    for job in failed:
        print(f"srlib reproduce: {job.category} {job.state}: {job.message} ({job.folder / FAILED})", file=sys.stderr)
    done = sum(job.state in ("done", "skipped") for job in jobs)
    print(f"srlib reproduce: {done} of {len(jobs)} categories have results; {len(failed)} failed")
    return 1 if failed or status else 0


DESCRIPTION = """\
Reproduce the paper's tables: run chapter 5 (train, or load released weights,
then evaluate) once per category with papermill, one worker per device; then
write Tables 1-5 beside the paper's numbers and execute chapter 6.

Per category, OUT/<dataset>/<category>/ (dataset: mvtec, btad, mpdd, or
textures for the bundled data) receives:
  05_training_on_mvtec.ipynb  the executed chapter 5 (and its .parameters.json, .log)
  train/                      the training run: resumable checkpoint, model.pt, log.jsonl
  result.json                 the evaluation at (k, N), written last; the tables read it
  n_draws_1/, n_draws_5/      the same with N = 1 and N = 5 (Table 5)
  k_sweep.csv, gallery.npz    the k sweep (Fig. 6) and the maps of the gallery (Fig. 4)
  failed.txt                  only after a failure: the error and where the log is
then OUT/tables/ (Markdown and CSV) and OUT/06_results.ipynb.

Stopped or crashed? Run the same command again: categories whose result.json
has the same configuration are skipped, an interrupted training resumes from
its last checkpoint, failed categories are tried again.
"""


def register(subparsers) -> None:
    import argparse

    from srlib.config import PRESETS
    from srlib.train_cli import add_override_arguments

    parser = subparsers.add_parser(
        "reproduce",
        help="train (or load) and evaluate every category, then write the paper's tables beside ours",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("Examples:\n"
                "  srlib reproduce --dataset mvtec --root /data/mvtec --out runs/mvtec --devices 0,1,2,3\n"
                "  srlib reproduce --dataset mvtec --root /data/mvtec --out runs/released --checkpoints /data/spr-checkpoints\n"
                "  srlib data textures textures && srlib reproduce --dataset mvtec --root textures --out runs/cpu --preset cpu"),
    )
    parser.add_argument("--dataset", required=True, choices=["mvtec", "btad", "mpdd"],
                        help="folder layout: mvtec (also the bundled textures), btad or mpdd")
    parser.add_argument("--root", required=True, help="the folder that holds the category folders")
    parser.add_argument("--out", required=True, help="output folder (re-use it to resume)")
    parser.add_argument("--categories", nargs="+", metavar="CATEGORY",
                        help="categories to run (default: every category folder in --root)")
    parser.add_argument("--preset", choices=PRESETS, default="paper",
                        help="training preset (default: paper, the authors' schedule; cpu: minutes on a laptop)")
    parser.add_argument("--devices", help="CUDA devices, one worker each: 0,1,2 (default: every visible GPU, else "
                                          "the CPU); or cpu")
    parser.add_argument("--checkpoints", metavar="DIR",
                        help="evaluate released checkpoints from DIR instead of training: DIR/<category>.pth, "
                             "DIR/<category>/ with one checkpoint, or one file per category whose name contains it")
    parser.add_argument("--k", type=float, default=1e-3, help="perturbation time k at evaluation (paper 1e-3)")
    parser.add_argument("--n-draws", type=int, default=3, help="perturbations per image, N (paper 3)")
    parser.add_argument("--k-grid", type=float, nargs="+", metavar="K",
                        help="the k sweep's grid (default: 1e-5 1e-4 3e-4 1e-3 3e-3 1e-2 1e-1)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_override_arguments(parser.add_argument_group("training overrides, passed to every category (default: the preset's)"),
                           skip=("device",))
    parser.set_defaults(func=reproduce)


if __name__ == "__main__":
    raise SystemExit(execute_child(sys.argv[1:]))
