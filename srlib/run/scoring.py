"""The one path from images to anomaly maps: Algorithm 1 over a set of images.

:class:`Scorer` turns batches of images (B, C, S, S) in [-1, 1] into anomaly
maps (B, 1, M, M), float32 on the CPU: the images go to the model's device,
the forward passes run in the evaluation's precision
(:func:`srlib.run.device.set_precision`), the restoration error
(:func:`srlib.method.restoration.restoration_error`) is taken in fp32, then
:func:`~srlib.method.restoration.anomaly_map` resizes it to M and applies the
mean filter. :func:`anomaly_maps` runs it over a tensor of images,
``config.batch_size`` at a time. Every caller goes through here: the
evaluation and the k sweep (:mod:`.evaluate`), ``--k auto``
(:mod:`.kselect`), ``srlib predict`` and the held-out threshold
(:mod:`.predict`, :mod:`.holdout`) and chapter 4.

The perturbations follow one of two conventions (``noise``):

``"batch"`` (:data:`PER_BATCH`)
    One generator, seeded with ``config.seed`` when the scorer is made,
    draws the perturbations of every batch in turn: the evaluation's
    convention (and the authors'). An image's map depends on where it falls
    in the test split and on ``batch_size``.
``"image"`` (:data:`PER_IMAGE`)
    Each image's perturbations come from a generator of its own seeded with
    ``config.seed``, as if it were scored alone: ``srlib predict``'s
    convention. An image's map does not depend on the other images or the
    batch: it is the map of that image scored alone, with a generator
    ``torch.Generator().manual_seed(seed)``.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from srlib.errors import SrlibError
from srlib.run.config import AUTO_K, EvalConfig

PER_BATCH = "batch"
PER_IMAGE = "image"
NOISE = (PER_BATCH, PER_IMAGE)
# The maps' side when no mask says otherwise: the benchmarks' mask size, where the
# paper's 31-pixel mean filter covers what it was chosen to cover.
MAP_SIZE = 256


def image_noise(shape, n_draws: int, seed: int) -> torch.Tensor:
    """(n_draws, 1, C, H, W) unit normals for one image: what ``restoration_error`` draws from a generator seeded ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randn((1, *shape), generator=generator) for _ in range(n_draws)])


class Scorer:
    """Anomaly maps of batches of images with one model and one :class:`~srlib.run.config.EvalConfig`.

    Parameters
    ----------
    model : torch.nn.Module
        Score model ``model(x, k)`` with its schedule in ``model.sde``, on the
        device to score on; it is put in eval mode.
    config : EvalConfig
        k (a number), N, resize, mean filter, seed and precision; its
        ``image_size`` is the images' business, not read here.
    out_size : int or (int, int)
        Side of the maps (the masks'); a call may override it.
    noise : {"batch", "image"}
        The perturbations' convention (see the module's docstring).
    """

    def __init__(self, model, config: EvalConfig, out_size=MAP_SIZE, noise: str = PER_BATCH):
        from srlib.run.device import set_precision

        if config.k == AUTO_K:
            raise SrlibError("scoring needs a number k; choose one first (srlib.run.kselect.select_k), "
                             "or call srlib.run.evaluate.evaluate_checkpoint, which does")
        if noise not in NOISE:
            raise SrlibError(f"unknown noise convention {noise!r}: choose one of {', '.join(NOISE)}")
        self.model, self.config, self.out_size, self.noise = model, config, out_size, noise
        self.device = next(model.parameters()).device
        self.autocast = set_precision(self.device, config.precision)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        model.eval()

    def __call__(self, images: torch.Tensor, out_size=None) -> torch.Tensor:
        """Maps (B, 1, M, M), float32 on the CPU, of ``images`` (B, C, S, S) in [-1, 1] on any device."""
        from srlib.method.restoration import anomaly_map, restoration_error

        config = self.config
        x = images.to(self.device, non_blocking=True)
        if self.noise == PER_IMAGE:
            noise = torch.cat([image_noise(x.shape[1:], config.n_draws, config.seed) for _ in range(len(x))], dim=1)
            draws = dict(noise=noise.to(self.device))
        else:
            draws = dict(generator=self.generator)
        with self.autocast:  # the network's forward passes only; the error and the map are computed in fp32
            raw = restoration_error(self.model, x, k=config.k, n_draws=config.n_draws, **draws).float()
        maps = anomaly_map(raw, out_size=out_size or self.out_size, resize=config.resize, kernel=config.kernel)
        return maps.cpu()


def anomaly_maps(model, images: torch.Tensor, config: EvalConfig, out_size=MAP_SIZE, noise: str = PER_BATCH,
                 progress: bool = False, desc: str = "scoring") -> torch.Tensor:
    """Anomaly maps (N, 1, M, M), float32 on the CPU, of images (N, C, S, S) in [-1, 1], ``config.batch_size`` at a time.

    The arguments are :class:`Scorer`'s; the perturbations start afresh from
    ``config.seed`` at every call (so every k of a sweep draws the same).
    """
    scorer = Scorer(model, config, out_size, noise)
    batches = images.split(config.batch_size)
    maps = [scorer(batch) for batch in tqdm(batches, desc=desc, unit="batch", disable=not progress or None, leave=False)]
    if not maps:
        size = (out_size, out_size) if isinstance(out_size, int) else tuple(out_size)
        return torch.zeros((0, 1, *size))
    return torch.cat(maps)
