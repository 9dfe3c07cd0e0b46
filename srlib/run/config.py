"""The configurations of a run: ``TrainConfig`` (two presets) and ``EvalConfig``; JSON on disk.

``paper`` is the authors' schedule (see ``shared/reference``); ``cpu`` is a
small model on small images that learns the bundled textures in minutes on a
laptop's CPU. ``EvalConfig`` holds Algorithm 1's settings, shared by
``srlib evaluate``, ``srlib reproduce``, the k sweep and chapter 5, and saved
in ``result.json``. Each validates every field in one place. Imports no
torch, so the command line's ``--help`` stays quick.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

from srlib.errors import SrlibError
# The paper's sigma and k, how training draws k and its floor: torch-free, so importable here.
from srlib.method.constants import K_DRAWS, K_MIN, PAPER_K, PAPER_SIGMA

PRESETS = ("paper", "cpu")
PRECISIONS = ("fp32", "tf32", "bf16")
# The ``dataset`` of a run on a plain folder of good images (``srlib train --images``): ``root`` is the folder.
IMAGES = "images"

# The authors drop the learning rate on MVTec AD only; BTAD and MPDD keep it constant.
_CONSTANT_LR_DATASETS = ("btad", "mpdd")

# Settings that do not change a trained model: where the data and the run
# live, how often it is saved, and whether the network is compiled (the same
# computation, fused). A result of a run that differs in these matches.
RUNTIME_FIELDS = ("root", "device", "checkpoint_every", "compile")
# A resumed run may also be longer: the milestones are fixed epochs, so it
# continues the same schedule. Everything else changes the result and is refused.
RESUMABLE_FIELDS = RUNTIME_FIELDS + ("epochs",)


_KINDS = {"int": "a whole number", "float": "a number", "str": "a string", "bool": "true or false",
          "None": "null", "tuple": "a list"}


def _is(value, kind: str) -> bool:
    """Whether ``value`` is of the annotation ``kind`` (``int``, ``float | str``, ``tuple[int, ...]``...); no bool for numbers."""
    for part in (p.strip() for p in kind.split("|")):
        base, _, inner = part.partition("[")
        if base == "None" and value is None:
            return True
        if base == "bool" and isinstance(value, bool):
            return True
        if isinstance(value, bool):
            continue
        if (base == "int" and isinstance(value, numbers.Integral)) or (base == "str" and isinstance(value, str)) \
                or (base == "float" and isinstance(value, numbers.Real)):
            return True
        if base == "tuple" and isinstance(value, (list, tuple)):
            item = inner.rstrip("]").split(",")[0].strip()
            return all(_is(v, item) for v in value)
    return False


def _kind(part: str) -> str:
    base, _, inner = part.partition("[")
    if base == "tuple":
        return f"a list of {_KINDS[inner.split(',')[0].strip()].removeprefix('a ')}s"
    return _KINDS.get(base, part)


def _check_types(config) -> None:
    """Raise ``SrlibError`` naming the first field whose value is not of its declared type (``image_size: 32.5``)."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if not _is(value, field.type):
            wanted = " or ".join(_kind(p.strip()) for p in field.type.split("|"))
            raise SrlibError(f"{field.name} must be {wanted}, got {value!r}")


def _known_fields(cls, values: dict, what: str) -> dict:
    """``values``, refused when it holds a key that is not a field of ``cls`` (a typo, or a newer srlib wrote it)."""
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        import difflib

        guesses = {key: difflib.get_close_matches(key, known, n=1, cutoff=0.8) for key in unknown}
        named = ", ".join(f"{key!r}" + (f" (did you mean {guesses[key][0]!r}?)" if guesses[key] else "")
                          for key in unknown)
        raise SrlibError(f"unknown {what} {named}; the known ones: {', '.join(known)} "
                         "(a file written by a newer srlib needs that srlib)")
    return values

@dataclass
class TrainConfig:
    """Everything that determines a training run.

    Attributes
    ----------
    dataset, root, category
        Which images: the dataset's name, the folder holding it and the category.
    preset
        The preset the other values started from (``paper`` or ``cpu``).
    epochs, image_size, width, batch_size
        Schedule length, training resolution, U-Net width (64 is the paper's
        model) and the global batch (split evenly over DDP processes).
    lr, betas, weight_decay
        AdamW.
    milestones, gamma
        MultiStepLR, stepped once per epoch.
    ema_decay
        Ceiling of the EMA decay ``min(ema_decay, (1 + n) / (10 + n))``.
    k_max, k_draw
        The training range of the perturbation time: k is drawn in
        [1e-5, k_max], ``uniform`` (the authors', with k_max = 1) or
        ``log-uniform``. A model never trained beyond k_max cannot restore
        beyond it, so evaluate at k <= k_max.
    sigma
        Base of the noise schedule (``srlib.method.sde.VESDE``), saved with the
        model so that the restoration error uses the schedule it was trained with.
    seed
        Seeds the model's initialisation, the data order and the noise.
    holdout
        Share of the good training images kept out of training and scored
        after it, to set ``srlib predict``'s threshold (``srlib.run.holdout``).
    checkpoint_every
        Epochs between checkpoints (one is also written on SIGTERM/SIGINT and at the end).
    device
        ``auto`` (cuda > mps > cpu) or a torch device string.
    precision
        ``fp32``, ``tf32`` (CUDA matmuls/convolutions) or ``bf16`` (autocast; GPUs and CPUs with bf16 instructions).
    channels_last
        Memory format of the model and images; ``None`` picks the faster one for the device.
    compile
        Run the network through ``torch.compile`` (for GPUs; compiling takes minutes and
        gains nothing on this project's CPUs).
    """

    dataset: str
    root: str
    category: str
    preset: str = "paper"
    epochs: int = 3000
    image_size: int = 192
    width: int = 64
    batch_size: int = 16
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-3
    milestones: tuple[int, ...] = (1000, 2000)
    gamma: float = 0.1
    ema_decay: float = 0.9999
    sigma: float = PAPER_SIGMA
    k_max: float = 1.0
    k_draw: str = "uniform"
    seed: int = 7777
    holdout: float = 0.0
    checkpoint_every: int = 10
    device: str = "auto"
    precision: str = "fp32"
    channels_last: bool | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        _check_types(self)
        self.betas = tuple(float(b) for b in self.betas)
        self.milestones = tuple(int(m) for m in self.milestones)
        self.validate()

    def validate(self) -> None:
        """Raise ``SrlibError`` naming the first bad value."""
        if self.preset not in PRESETS:
            raise SrlibError(f"unknown preset {self.preset!r}: choose one of {', '.join(PRESETS)}")
        if self.precision not in PRECISIONS:
            raise SrlibError(f"unknown precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        for name in ("epochs", "image_size", "width", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise SrlibError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.image_size < 16:
            raise SrlibError(f"image_size must be at least 16 (the U-Net halves it four times), got {self.image_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise SrlibError(f"lr must be a positive number (the paper: 1e-4), got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise SrlibError(f"weight_decay must be a number >= 0 (the paper: 1e-3), got {self.weight_decay}")
        if not all(0 <= beta < 1 for beta in self.betas) or len(self.betas) != 2:
            raise SrlibError(f"betas must be two numbers in [0, 1) (the paper: 0.9 0.999), got {self.betas}")
        if not 0 < self.gamma <= 1:
            raise SrlibError(f"gamma (the lr factor at each milestone) must be in (0, 1], got {self.gamma}")
        if any(m < 1 for m in self.milestones) or list(self.milestones) != sorted(set(self.milestones)):
            raise SrlibError(f"milestones must be increasing epochs >= 1 (the paper: 1000 2000), got {list(self.milestones)}")
        if not 0 <= self.holdout < 1:
            raise SrlibError(f"holdout must be a share in [0, 1), got {self.holdout}")
        if not 0 <= self.ema_decay < 1:
            raise SrlibError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0 <= self.seed < 2**63:
            raise SrlibError(f"seed must be a whole number from 0 to 2**63 - 1 (the paper: 7777), got {self.seed}")
        if not (isinstance(self.k_max, (int, float)) and K_MIN < self.k_max <= 1):
            raise SrlibError(f"k_max (the largest training time) must be in ({K_MIN:g}, 1] (the paper: 1), got {self.k_max}")
        if self.k_draw not in K_DRAWS:
            raise SrlibError(f"unknown k_draw {self.k_draw!r}: choose one of {', '.join(K_DRAWS)}")
        if not self.sigma > 1:
            raise SrlibError(f"sigma must be greater than 1 (the paper's is {PAPER_SIGMA:g}), got {self.sigma}")

    @classmethod
    def preset_for(cls, name: str, dataset: str, root: str | Path, category: str, **overrides) -> TrainConfig:
        """The preset ``name`` for a dataset, with ``overrides`` (``None`` values ignored)."""
        if name not in PRESETS:
            raise SrlibError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
        values = dict(dataset=dataset, root=str(root), category=category, preset=name)
        if dataset.lower() in _CONSTANT_LR_DATASETS:
            values["milestones"] = ()
        if name == "cpu":
            values.update(CPU_PRESET)
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        # Milestones given explicitly must fall inside the schedule (a preset's are dropped by a shorter one).
        outside = [m for m in overrides.get("milestones") or () if m > config.epochs]
        if outside:
            raise SrlibError(f"milestones {' '.join(map(str, outside))} lie outside the {config.epochs}-epoch schedule, "
                             f"so the lr would never drop there; give epochs from 1 to {config.epochs}, or more --epochs")
        return config

    def to_dict(self) -> dict:
        """Plain JSON-able values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Inverse of ``to_dict``."""
        return cls(**_known_fields(cls, values, "configuration keys"))

    def differences(self, other: TrainConfig, ignore: tuple[str, ...] = RESUMABLE_FIELDS) -> list[str]:
        """``name ours -> theirs`` for every field that differs, except ``ignore``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k} {mine[k]!r} -> {theirs[k]!r}" for k in mine if k not in ignore and mine[k] != theirs[k]]


# The cpu preset, chosen by measurement on the bundled data (the learning
# curves are on the book's Performance page): at 64 px the coin is learnt
# slowly and its small defects shrink to a pixel or two, so 128 px; 25 epochs
# there cost about what 100 do at 64 px. bf16 is slower than fp32 at this width
# on a CPU. No lr drops in so short a schedule. Training draws k ~ U(1e-5, 0.03)
# in batches of 4 (500 steps): the recipe the k-range study chose by its stated
# rule (benchmarks/k_range_study.py, srlib.results.study.choose; chapter 3 shows
# it). The paper's U(1e-5, 1) would spend 97 % of so short a schedule at
# k > 0.03, far above the evaluation's 1e-3; batches of 16 (125 steps) left the
# network under-trained at the same cost.
CPU_PRESET = dict(
    epochs=25,
    image_size=128,
    width=16,
    batch_size=4,
    lr=1e-3,
    milestones=(),
    k_max=0.03,
    seed=0,
    checkpoint_every=10,
)


RESIZES = ("bilinear", "lanczos")
# Evaluation runs in every precision training does (srlib.run.device.set_precision).
EVAL_PRECISIONS = PRECISIONS


# EvalConfig.k that asks for k to be chosen from the training images.
AUTO_K = "auto"
# The k sweep's log grid (the paper's Fig. 6; chapter 5, srlib reproduce) and the candidates of
# ``--k auto``: the paper's k in the middle, two decades either side.
K_GRID = (1e-5, 1e-4, 3e-4, PAPER_K, 3e-3, 1e-2, 1e-1)


@dataclass(frozen=True)
class EvalConfig:
    """Everything that determines an evaluation (Algorithm 1 and its metrics) besides the model.

    Attributes
    ----------
    k
        Perturbation time in (0, 1] (the paper: 1e-3), or ``"auto"``: chosen
        per model from held-out good training images (:mod:`srlib.run.kselect`).
    n_draws
        N, the perturbations averaged per image (the paper: 3).
    image_size
        Test resolution; ``None``: the checkpoint's training size (192 for the authors' weights).
    resize
        How raw maps reach the masks' size: ``bilinear`` (the authors' code) or ``lanczos`` (the paper's text).
    kernel
        Odd side of the mean filter over the map (the paper: 31; 1: none).
    seed
        Seeds the perturbations.
    precision
        Number format of the forward passes: ``fp32``, the fidelity path (the
        authors' arithmetic), ``tf32`` (CUDA) or ``bf16`` (autocast, on GPUs and
        on CPUs with AVX512-BF16 or AMX; the restoration error and the map stay in fp32).
    batch_size
        Test images per forward pass (their noise is drawn per batch, so it is part of the result).
    """

    k: float | str = PAPER_K
    n_draws: int = 3
    image_size: int | None = None
    resize: str = "bilinear"
    kernel: int = 31
    seed: int = 0
    precision: str = "fp32"
    batch_size: int = 8

    def __post_init__(self) -> None:
        _check_types(self)
        self.validate()

    def validate(self) -> None:
        """Raise ``SrlibError`` naming the first bad value and the valid range."""
        if self.k != AUTO_K and (isinstance(self.k, str) or not 0 < self.k <= 1):
            raise SrlibError(f"k must be in (0, 1] (the paper uses 1e-3) or 'auto' (chosen from the training "
                             f"images), got {self.k!r}")
        if self.n_draws < 1:
            raise SrlibError(f"n_draws must be at least 1 (the paper uses 3), got {self.n_draws}")
        if self.image_size is not None and self.image_size < 16:
            raise SrlibError(f"image_size must be at least 16 (the U-Net halves it four times), got {self.image_size}")
        if self.resize not in RESIZES:
            raise SrlibError(f"unknown resize {self.resize!r}: use 'bilinear' (the authors' code) or 'lanczos' (the paper)")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise SrlibError(f"kernel must be an odd number >= 1 (the paper uses 31), got {self.kernel}")
        if self.precision not in EVAL_PRECISIONS:
            raise SrlibError(f"unknown evaluation precision {self.precision!r}: choose one of {', '.join(EVAL_PRECISIONS)}")
        if self.batch_size < 1:
            raise SrlibError(f"batch_size must be at least 1, got {self.batch_size}")

    def to_dict(self) -> dict:
        """Plain JSON-able values; ``result.json`` holds them at its top level."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> EvalConfig:
        """Inverse of ``to_dict``; refuses unknown keys."""
        return cls(**_known_fields(cls, values, "evaluation settings"))

    @classmethod
    def from_result(cls, record: dict) -> EvalConfig:
        """The settings a ``result.json`` was made with (fields it predates take their defaults).

        A result whose k was chosen (it holds ``k_selection``) was made with ``k="auto"``.
        """
        values = {f.name: record[f.name] for f in dataclasses.fields(cls) if f.name in record}
        return cls(**{**values, "k": AUTO_K} if "k_selection" in record else values)

    def replace(self, **changes) -> EvalConfig:
        """A copy with ``changes``, validated."""
        return dataclasses.replace(self, **changes)

    def differences(self, other: EvalConfig) -> list[str]:
        """``name ours -> theirs`` for every field that differs (``image_size`` None matches any size)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k} {mine[k]!r} -> {theirs[k]!r}" for k in mine
                if mine[k] != theirs[k] and not (k == "image_size" and None in (mine[k], theirs[k]))]


def save_config(config: TrainConfig, path: Path) -> None:
    """Write ``config`` as indented JSON, atomically."""
    from srlib.atomic import write_text

    write_text(path, json.dumps(config.to_dict(), indent=2) + "\n")


def load_config(path: Path) -> TrainConfig:
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise SrlibError(f"cannot read the configuration {path}: {err}; correct it or restore it from a copy "
                         f"(it holds the settings the model was trained with, which srlib never guesses)") from None
    return config_from(values, f"the configuration {path}")


def config_from(values, source: str) -> TrainConfig:
    """``TrainConfig.from_dict(values)``; an error names ``source`` (a file the user can correct)."""
    try:
        if not isinstance(values, dict):
            raise SrlibError(f"expected a JSON object of settings, got {type(values).__name__}")
        return TrainConfig.from_dict(values)
    except (SrlibError, TypeError, ValueError) as err:
        raise SrlibError(f"{source} is invalid: {err}; correct it (it holds the settings the model was trained "
                         "with, which srlib never guesses)") from None
