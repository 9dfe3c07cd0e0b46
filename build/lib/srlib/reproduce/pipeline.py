"""``srlib reproduce``: plan the categories, run them, then the tables and chapter 6."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from srlib.atomic import output_folder
from srlib.errors import SrlibError
from srlib.reproduce.folders import CHAPTER6, NOTEBOOKS
from srlib.reproduce.plan import plan, result_matches, worker_devices
from srlib.reproduce.supervise import Runner, kernel_environment, notebook_error, run_all
from srlib.run.config import EvalConfig
from srlib.run.files import CHAPTER5, FAILED, RESULT, TABLES


def reproduce(args, overrides: dict, evaluation: EvalConfig = EvalConfig()) -> int:
    """The command: ``args`` as parsed by :mod:`srlib.cli.reproduce`, ``overrides`` the training options given,
    ``evaluation`` every category's evaluation settings."""
    from srlib.results.tables import all_comparisons, load_results, write_tables

    for chapter in (CHAPTER5, CHAPTER6):
        if not (NOTEBOOKS / chapter).is_file():
            raise SrlibError(f"{NOTEBOOKS / chapter} not found: srlib reproduce runs the book's notebooks; "
                             "run it from a checkout of the project (pip install -e .)")
    devices = worker_devices(args.devices)
    jobs = plan(args.dataset, args.root, args.out, args.categories, args.preset, overrides,
                args.checkpoints, evaluation, args.k_grid)
    out = output_folder(Path(args.out).expanduser().resolve())
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
        print("srlib reproduce: stopped. Run the same command again to resume (finished categories are kept).",
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
