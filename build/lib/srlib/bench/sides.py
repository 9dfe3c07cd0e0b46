"""The two sides ``python -m srlib.bench`` compares: a plain baseline (the authors' loops) and srlib's code."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from srlib.method.unet import ScoreUNet, upsample_to
from srlib.method.constants import PAPER_K
from srlib.method.sde import dsm_loss
from srlib.run.config import TrainConfig
from srlib.run.device import memory_format, set_precision
from srlib.run.ema import warmup_decay
from srlib.run.train import make_optimizer, train_step

K = PAPER_K
N_DRAWS = 3
MASK_SIZE = 256
MEAN_FILTER = 31


def plain_forward(model: ScoreUNet, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The score network as the authors' code runs it (every operation out of place), on ``model``'s layers."""

    def swish(h):
        return h * torch.sigmoid(h)

    def double_conv(block, h):
        conv1, norm1, _, conv2, norm2, _ = block.double_conv
        return swish(norm2(conv2(swish(norm1(conv1(h))))))

    embedding = swish(model.embed(k))
    h = double_conv(model.inc, x) + model.dense_in(embedding)
    skips = []
    for level in range(1, model.LEVELS + 1):
        skips.append(h)
        down = getattr(model, f"down{level}").maxpool_conv
        h = double_conv(down[1], down[0](h)) + getattr(model, f"dense_d{level}")(embedding)
    for level in range(1, model.LEVELS + 1):
        skip = skips.pop()
        h = torch.cat([skip, upsample_to(h, skip.shape[-2:])], dim=1)
        h = double_conv(getattr(model, f"up{level}").conv, h) + getattr(model, f"dense_u{level}")(embedding)
    return model.outc(h) / model.sde.marginal_std(k)[:, None, None, None]


def plain_restoration_error(model, x: torch.Tensor, noise: torch.Tensor, k: float = K) -> torch.Tensor:
    """Algorithm 1 one draw at a time, in contiguous memory, autograd off with no_grad."""
    times = torch.full((x.shape[0],), k, device=x.device)
    std = model.sde.marginal_std(times)[:, None, None, None]
    total = 0
    with torch.no_grad():
        for eps in noise:
            n = eps * std
            score = plain_forward(model, x + n, times)
            total = total + ((score * std**2 + n) ** 2).mean(dim=1, keepdim=True)
    return total / len(noise)


def plain_anomaly_map(raw: torch.Tensor) -> torch.Tensor:
    """Bilinear resize to the masks' size, then the 31x31 mean filter counting the zero padding."""
    maps = F.interpolate(raw, size=(MASK_SIZE, MASK_SIZE), mode="bilinear", align_corners=False)
    return F.avg_pool2d(maps, MEAN_FILTER, stride=1, padding=MEAN_FILTER // 2, count_include_pad=True)


class PlainTrainer:
    """A training step as plainly written: per-parameter AdamW, EMA loop, loss.item() every step."""

    def __init__(self, model: ScoreUNet, config: TrainConfig):
        self.model = model
        self.ema = [p.detach().clone() for p in model.parameters()]
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=config.lr, betas=config.betas,
                                           weight_decay=config.weight_decay, foreach=False, fused=False)
        self.updates = 0

    def step(self, x: torch.Tensor, generator: torch.Generator) -> float:
        loss = dsm_loss(lambda h, k: plain_forward(self.model, h, k), x, self.model.sde, generator=generator)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        decay = warmup_decay(self.updates)
        with torch.no_grad():
            for averaged, weight in zip(self.ema, self.model.parameters()):
                averaged.copy_(decay * averaged + (1 - decay) * weight)
        return loss.item()


class SrlibTrainer:
    """srlib's training step, set up as ``srlib.run.train`` sets up a run."""

    def __init__(self, model: ScoreUNet, config: TrainConfig, device: torch.device):
        from srlib.run.ema import ema_of

        self.model = model.to(device, memory_format=memory_format(device, config.channels_last))
        self.net = torch.compile(self.model) if config.compile else self.model
        self.ema = ema_of(self.model, config.ema_decay)
        self.optimizer = make_optimizer(self.model, config, device)
        self.autocast = set_precision(device, config.precision)
        self.config, self.device = config, device

    def step(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        set_precision(self.device, self.config.precision)
        x = x.contiguous(memory_format=memory_format(self.device, self.config.channels_last))
        return train_step(self.net, self.model, self.ema, self.optimizer, x, generator, self.autocast)
