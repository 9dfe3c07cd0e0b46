"""The authors' exponential moving average of the weights, on torch's AveragedModel.

At the n-th update (n = 1, 2, ...) after an optimizer step,
``ema = d * ema + (1 - d) * weights`` with ``d = min(ceiling, (1 + n) / (10 + n))``:
a short memory early on (d = 2/11 first), 0.9999 once n reaches 89,991.
The EMA starts as a copy of the initial weights.

``WarmupEMA`` keeps ``AveragedModel``'s state (the averaged ``module`` and
the ``n_averaged`` count) and starts with ``n_averaged == 1``, so the n-th
real update sees ``n_averaged == n``: exactly the authors' warm-up index.
Its update is one ``torch._foreach_lerp_`` over all parameters, and the
count stays on the CPU: ``AveragedModel.update_parameters`` reads a count
that lives on the device (``if n_averaged > 0``) and copies it there every
step, each a host-device synchronisation on a GPU.
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel


def warmup_decay(n: int, ceiling: float = 0.9999) -> float:
    """The decay of the n-th update."""
    return min(ceiling, (1 + n) / (10 + n))


class WarmupEMA(AveragedModel):
    """EMA of a model's parameters with the authors' warm-up decay (see the module docstring).

    ``n_averaged`` is a CPU tensor; do not move this module to another device.
    """

    def __init__(self, model: torch.nn.Module, ceiling: float = 0.9999):
        super().__init__(model)  # a deep copy: it holds the current weights
        self.ceiling = ceiling
        self.n_averaged.fill_(1)  # as if AveragedModel's copying first update had run
        self.requires_grad_(False)

    @torch.no_grad()
    def update_parameters(self, model: torch.nn.Module) -> None:
        # lerp leaves a parameter that never moves (the frozen Fourier
        # frequencies) exactly unchanged, which d*a + (1-d)*b would not.
        weight = 1.0 - warmup_decay(int(self.n_averaged), self.ceiling)
        torch._foreach_lerp_(list(self.module.parameters()), [p.detach() for p in model.parameters()], weight)
        self.n_averaged += 1


def ema_of(model: torch.nn.Module, ceiling: float = 0.9999) -> WarmupEMA:
    """An EMA of ``model`` (a deep copy, holding its current weights)."""
    return WarmupEMA(model, ceiling)
