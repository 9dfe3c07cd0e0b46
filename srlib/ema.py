"""The authors' exponential moving average of the weights, on torch's AveragedModel.

At the n-th update (n = 1, 2, ...) after an optimizer step,
``ema = d * ema + (1 - d) * weights`` with ``d = min(ceiling, (1 + n) / (10 + n))``:
a short memory early on (d = 2/11 first), 0.9999 once n reaches 89,991.
The EMA starts as a copy of the initial weights.

``AveragedModel.update_parameters`` copies the weights on its first call
(when ``n_averaged`` is 0) and averages on later calls, handing the function
the count of models averaged so far. ``ema_of`` makes that first call at
construction, so the EMA holds the initial weights with ``n_averaged == 1``
and the n-th real update receives ``n_averaged == n``: exactly the authors'
warm-up index.
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel


def warmup_decay(n: int, ceiling: float = 0.9999) -> float:
    """The decay of the n-th update."""
    return min(ceiling, (1 + n) / (10 + n))


def ema_of(model: torch.nn.Module, ceiling: float = 0.9999) -> AveragedModel:
    """An EMA of ``model`` (a deep copy, holding its current weights)."""

    @torch.no_grad()
    def lerp_towards(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        # lerp leaves a parameter that never moves (the frozen Fourier
        # frequencies) exactly unchanged, which d*a + (1-d)*b would not.
        torch._foreach_lerp_(averaged, current, 1.0 - warmup_decay(int(n_averaged), ceiling))

    ema = AveragedModel(model, multi_avg_fn=lerp_towards)
    ema.update_parameters(model)  # the copying first call: n_averaged becomes 1
    ema.requires_grad_(False)
    return ema
