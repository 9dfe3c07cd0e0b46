"""The jobs of a reproduction: one per category, and whether its result is already there."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from srlib.errors import SrlibError
from srlib.reproduce.folders import find_checkpoint, run_folder
from srlib.run.config import AUTO_K, RUNTIME_FIELDS, EvalConfig, TrainConfig
from srlib.run.files import RESULT


@dataclass
class Job:
    """One category to run: where, with which configurations, what its result must match."""

    category: str
    folder: Path
    dataset: str = "mvtec"
    root: str = ""
    expected: TrainConfig | None = None  # the TrainConfig to train, or None for a released checkpoint
    evaluation: EvalConfig = EvalConfig()  # the evaluation its result.json must have
    checkpoint: str = ""  # the released checkpoint to evaluate instead of training
    k_grid: tuple[float, ...] = ()  # the k sweep's grid (empty: srlib.run.config.K_GRID)
    error: str | None = None  # known before running (no checkpoint found)
    state: str = "waiting"  # waiting, skipped, running, done, failed, busy, stopped
    message: str = ""

    @property
    def epochs(self) -> int | None:
        return getattr(self.expected, "epochs", None)

    def chapter5_config(self, device: str) -> dict:
        """What chapter 5 runs, as its ``config_file`` holds it: the configurations, as dicts."""
        train = dataclasses.replace(self.expected, device=device).to_dict() if self.expected else None
        return {"dataset": self.dataset, "root": self.root, "category": self.category,
                "checkpoint": self.checkpoint, "train": train, "evaluation": self.evaluation.to_dict(),
                "k_grid": list(self.k_grid)}


def result_matches(job: Job) -> bool:
    """Whether the category folder holds a finished result of exactly this job's configuration."""
    try:
        record = json.loads((job.folder / RESULT).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict):
        return False
    try:
        if EvalConfig.from_result(record).differences(job.evaluation):
            return False
    except (SrlibError, TypeError):
        return False
    if not _sweep_matches(job):
        return False
    if job.expected is None:
        return record.get("checkpoint") == job.checkpoint
    try:
        saved = TrainConfig.from_dict(record["config"])
    except (SrlibError, TypeError, KeyError):
        return False
    return not saved.differences(job.expected, ignore=RUNTIME_FIELDS)


def _sweep_matches(job: Job) -> bool:
    """Whether the category's k sweep covers exactly the requested grid."""
    from srlib.run.config import K_GRID
    from srlib.run.sweeps import read_k_sweeps

    try:
        rows = read_k_sweeps(job.folder)
    except SrlibError:
        return False
    k = job.evaluation.k
    wanted = set(job.k_grid or K_GRID) | ({k} if k != AUTO_K else set())  # auto: a grid k
    return {row["k"] for row in rows} == wanted


def plan(dataset: str, root: str | Path, out: str | Path, categories: list[str] | None, preset: str,
         overrides: dict, checkpoints: str | Path | None, evaluation: EvalConfig = EvalConfig(),
         k_grid: list[float] | None = None) -> list[Job]:
    """One job per category; nothing is written.

    ``evaluation`` is every category's; its image size is the training size,
    or ``overrides["image_size"]`` for released checkpoints (None: theirs).
    """
    from srlib.data.layouts import (
        category_folders, category_name, check_root, checked_scan, find_category, get_layout, refuse_inside_root,
    )

    for k in k_grid or []:  # the sweep runs after training: its values are checked now, by EvalConfig
        try:
            evaluation.replace(k=k)
        except SrlibError as err:
            raise SrlibError(f"--k-grid {k}: {err}") from None
    layout = get_layout(dataset)
    root = check_root(layout, root).resolve()
    categories = [category_name(root, category) for category in categories or category_folders(root)]
    if not categories:
        raise SrlibError(f"{root} holds no category folders; pass the folder that holds the {layout.title} categories")
    for category in categories:
        find_category(layout, root, category)
    refuse_inside_root(root, out, f"--out {out}")
    out = Path(out).expanduser().resolve()
    jobs = []
    for category in dict.fromkeys(categories):
        job = Job(category, run_folder(out, dataset, root, category), dataset, str(root),
                  evaluation=evaluation.replace(image_size=overrides.get("image_size") if checkpoints else None),
                  k_grid=tuple(k_grid or ()))
        refuse_inside_root(root, job.folder, f"--out {out} (for {category}: {job.folder})")
        try:  # a category whose data is broken fails alone, before any work
            checked_scan(dataset, root, category, scored=True)
            if checkpoints:
                job.checkpoint = str(find_checkpoint(checkpoints, category).resolve())
        except SrlibError as err:
            job.error = str(err)
        if not checkpoints:
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
    import torch

    if not torch.cuda.is_available():
        raise SrlibError(f"--devices {spec}: PyTorch sees no CUDA GPU on this machine; pass --devices cpu, "
                         f"or leave --devices out to use what there is")
    return [("cuda", {"CUDA_VISIBLE_DEVICES": i}) for i in ids]
