"""Where and in which number format the network runs.

``fp32`` is exact IEEE single precision everywhere (cuDNN's default would
quietly use TF32 for convolutions on Ampere and later); ``tf32`` lets CUDA
matmuls and convolutions use TF32; ``bf16`` runs the forward pass under
bfloat16 autocast, on a GPU or on a CPU with bfloat16 instructions
(AVX512-BF16 or AMX), where it is faster than fp32 for the paper's network
(``python -m srlib.bench --precision bf16``; the Performance page); a CPU
without them emulates bfloat16 and is slower, so it is refused there.
``channels_last`` is used on CUDA and on CPU, where it is faster with
identical maps.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from srlib.errors import SrlibError


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` means cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SrlibError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(device.type, False):
        raise SrlibError(f"device {name!r} is not available on this machine: use --device auto or cpu")
    return device


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles)."""
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(check is not None and check() for check in checks)


def set_precision(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Apply ``precision`` (global TF32 switches) and return the forward pass's autocast context."""
    if precision == "bf16":
        if device.type == "cpu" and not cpu_has_bf16():
            raise SrlibError(
                "--precision bf16 needs a GPU or a CPU with bfloat16 instructions (AVX512-BF16 or AMX): "
                "this CPU would emulate it, slower than fp32; use fp32"
            )
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "tf32" and device.type != "cuda":
        warnings.warn(f"--precision tf32 changes nothing on {device.type}: it computes in fp32", stacklevel=2)
    _allow_tf32(precision == "tf32")
    return contextlib.nullcontext()


def _allow_tf32(enabled: bool) -> None:
    if hasattr(torch.backends.cudnn, "conv"):  # torch >= 2.9: the per-backend API
        value = "tf32" if enabled else "ieee"
        torch.backends.cuda.matmul.fp32_precision = value
        torch.backends.cudnn.conv.fp32_precision = value
    else:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def memory_format(device: torch.device, channels_last: bool | None) -> torch.memory_format:
    """channels_last when asked, or by default on CUDA and CPU (faster on both)."""
    if channels_last is None:
        channels_last = device.type in ("cuda", "cpu")
    return torch.channels_last if channels_last else torch.contiguous_format
