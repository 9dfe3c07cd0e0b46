"""Running chapter 5 in child processes, one worker per device; stopping them cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from srlib.reproduce.folders import NOTEBOOKS
from srlib.reproduce.plan import Job, result_matches
from srlib.run.files import CHAPTER5, CHAPTER5_CONFIG, FAILED, LOCK, LOG, TRAIN


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
    from srlib.book.build import kernel_env

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
        config_file = job.folder / CHAPTER5_CONFIG
        write_text(config_file, json.dumps(job.chapter5_config(device), indent=2) + "\n")
        parameters = {"config_file": str(config_file), "device": device, "out_dir": str(job.folder.parents[1]),
                      "resume": True}
        status = runner.execute(NOTEBOOKS / CHAPTER5, executed, parameters, kernel_environment(env), keep_fd=lock)
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
        lines = (job.folder / TRAIN / LOG).read_bytes().splitlines()
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
