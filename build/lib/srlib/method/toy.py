"""Two-dimensional toy manifolds where the paper's Eq. 2-3 can be computed exactly.

The normal data are points on a curve in the plane (a circle, an open wave).
For a finite point cloud ``x_1..x_N`` perturbed by N(0, sigma^2 I) the
posterior over which point was perturbed is a softmax, so the exact score of
the perturbed distribution is a softmax-weighted mean (Tweedie's formula,
Eq. 2)::

    E[x | x~] = sum_i w_i x_i,   w = softmax(-|x~ - x_i|^2 / (2 sigma^2))
    grad log p(x~) = (E[x | x~] - x~) / sigma^2

No network is involved; chapter 2 trains :class:`ToyScoreMLP` by denoising
score matching and compares it with this field.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.special import i0e, i1e, logsumexp, softmax
from torch import nn
from tqdm.auto import tqdm

from srlib.errors import SrlibError
from srlib.method.sde import VESDE, dsm_loss

# Rows of the (queries x points) distance matrix handled at once: bounds memory.
_CHUNK_ELEMENTS = 1 << 22


def _as_points(x, name: str = "points") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise SrlibError(f"{name} must have shape (n, 2), got {x.shape}: pass an array of 2D points")
    return x


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class Curve:
    """A smooth curve in the plane, given by a parametrisation on [0, 1].

    Parameters
    ----------
    fn : callable
        Maps an array of parameters t in [0, 1] to points of shape (len(t), 2).
    closed : bool
        Whether fn(0) == fn(1) (a loop) or the curve has two ends.
    n_dense : int
        Vertices of the polyline used for arc length and projection.
    name : str
        Shown in figures.
    """

    def __init__(self, fn, closed: bool = False, n_dense: int = 8192, name: str = "curve"):
        self.fn = fn
        self.closed = closed
        self.name = name
        t = np.linspace(0.0, 1.0, n_dense)
        self._dense = _as_points(fn(t), "fn(t)")
        seg = np.linalg.norm(np.diff(self._dense, axis=0), axis=1)
        self._arc = np.concatenate([[0.0], np.cumsum(seg)])
        self._t = t
        self._tree = cKDTree(self._dense)

    @property
    def length(self) -> float:
        """Arc length of the curve."""
        return float(self._arc[-1])

    def at_arclength(self, s) -> np.ndarray:
        """Points at arc-length positions ``s`` in [0, length]."""
        return self.fn(np.interp(s, self._arc, self._t))

    def sample(self, n: int, rng=None) -> np.ndarray:
        """``n`` points spread uniformly in arc length.

        With ``rng`` None the points are evenly spaced (a deterministic,
        well-spread cloud); otherwise they are independent uniform draws.
        """
        if rng is None:
            stop = self.length * (1 - 1 / n) if self.closed else self.length
            s = np.linspace(0.0, stop, n)
        else:
            s = _rng(rng).uniform(0.0, self.length, n)
        return self.at_arclength(s)

    def foot_parameter(self, x) -> np.ndarray:
        """The parameter t in [0, 1] of the nearest point of the curve to each x.

        Finds the nearest polyline vertex and the nearest point on the two
        segments beside it, then refines that point's parameter with Newton
        steps on (fn(t) - x) . fn'(t) = 0, so the foot point is exact and not
        only on a chord.
        """
        x = _as_points(x)
        _, i = self._tree.query(x)
        last = len(self._dense) - 1
        best_t, best_d2 = self._t[i].copy(), np.full(len(x), np.inf)
        for lo in (np.clip(i - 1, 0, last - 1), np.clip(i, 0, last - 1)):
            a, ab = self._dense[lo], self._dense[lo + 1] - self._dense[lo]
            u = np.clip(np.einsum("ij,ij->i", x - a, ab) / np.einsum("ij,ij->i", ab, ab), 0.0, 1.0)
            d2 = np.sum((x - a - u[:, None] * ab) ** 2, axis=1)
            better = d2 < best_d2
            best_t = np.where(better, self._t[lo] + u * (self._t[lo + 1] - self._t[lo]), best_t)
            best_d2 = np.where(better, d2, best_d2)
        h = self._t[1] - self._t[0]  # central differences over one vertex spacing
        t = best_t
        for _ in range(3):
            p, ahead, behind = self.fn(t), self.fn(t + h), self.fn(t - h)
            d1, d2 = (ahead - behind) / (2 * h), (ahead - 2 * p + behind) / h**2
            grad = np.einsum("ij,ij->i", p - x, d1)
            curv = np.einsum("ij,ij->i", d1, d1) + np.einsum("ij,ij->i", p - x, d2)
            t = t - grad / np.where(curv > 0, curv, np.inf)
            t = np.mod(t, 1.0) if self.closed else np.clip(t, 0.0, 1.0)
        return t

    def project(self, x) -> np.ndarray:
        """Orthogonal projection P_M(x): the nearest point of the curve."""
        return self.fn(self.foot_parameter(x))

    def arclength(self, x) -> np.ndarray:
        """Arc-length position of the nearest point of the curve to each x."""
        return np.interp(self.foot_parameter(x), self._t, self._arc)

    def curvature(self, s) -> np.ndarray:
        """Unsigned curvature at arc-length positions ``s`` (1 / radius of the osculating circle)."""
        t = np.interp(s, self._arc, self._t)
        h = self._t[1] - self._t[0]
        ahead, here, behind = self.fn(t + h), self.fn(t), self.fn(t - h)
        d1, d2 = (ahead - behind) / (2 * h), (ahead - 2 * here + behind) / h**2
        return np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]) / np.linalg.norm(d1, axis=1) ** 3

    def distance(self, x) -> np.ndarray:
        """Euclidean distance from each point to the curve."""
        x = _as_points(x)
        return np.linalg.norm(x - self.project(x), axis=1)

    def normal(self, x_on) -> np.ndarray:
        """Unit normals at points on (or projected onto) the curve."""
        p = self.project(x_on)
        _, i = self._tree.query(p)
        i = np.clip(i, 1, len(self._dense) - 2)
        tangent = self._dense[i + 1] - self._dense[i - 1]
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
        return np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)

    def off_manifold(self, n: int, distance, rng=None) -> np.ndarray:
        """Anomalies: uniform points on the curve pushed along the normal.

        ``distance`` is a float or a (low, high) range drawn uniformly; the side
        (+ or - normal) is random.
        """
        rng = _rng(rng)
        base = self.sample(n, rng)
        if np.ndim(distance) == 0:
            d = np.full(n, float(distance))
        else:
            d = rng.uniform(distance[0], distance[1], n)
        side = rng.choice([-1.0, 1.0], n)
        return base + (side * d)[:, None] * self.normal(base)


class Circle(Curve):
    """A circle, with its closed-form projection and posterior mean."""

    def __init__(self, radius: float = 1.0, center=(0.0, 0.0)):
        if radius <= 0:
            raise SrlibError(f"radius must be positive, got {radius}")
        self.radius = float(radius)
        self.center = np.asarray(center, dtype=np.float64)

        def fn(t):
            angle = 2 * np.pi * np.asarray(t)
            return self.center + self.radius * np.stack([np.cos(angle), np.sin(angle)], axis=-1)

        super().__init__(fn, closed=True, name="circle")

    def project(self, x) -> np.ndarray:
        """Radial projection onto the circle (the centre maps to angle 0)."""
        x = _as_points(x) - self.center
        r = np.linalg.norm(x, axis=1, keepdims=True)
        direction = np.where(r > 0, x / np.where(r > 0, r, 1.0), np.array([1.0, 0.0]))
        return self.center + self.radius * direction

    def normal(self, x_on) -> np.ndarray:
        return (self.project(x_on) - self.center) / self.radius

    def posterior_mean(self, x_tilde, sigma: float) -> np.ndarray:
        """E[x | x~] for x uniform on the whole circle (not a point cloud).

        The posterior of the angle is von Mises with concentration
        kappa = R |x~ - c| / sigma^2, so E[x | x~] = c + R I1(kappa)/I0(kappa) u,
        with u the unit vector from the centre to x~: the projection, pulled
        towards the centre by the curvature.
        """
        x = _as_points(x_tilde) - self.center
        r = np.linalg.norm(x, axis=1)
        kappa = self.radius * r / sigma**2
        shrink = i1e(kappa) / i0e(kappa)  # the exponentially scaled ratio is stable for large kappa
        return self.center + (self.radius * shrink)[:, None] * (self.project(x_tilde) - self.center) / self.radius


def wave(amplitude: float = 0.5, width: float = 3.0, periods: float = 1.0) -> Curve:
    """An open curve: one period of a sine wave, ``y = a sin(2 pi periods x / width)``."""

    def fn(t):
        x = width * (np.asarray(t) - 0.5)
        return np.stack([x, amplitude * np.sin(2 * np.pi * periods * x / width)], axis=-1)

    return Curve(fn, closed=False, name="wave")


def _chunks(n_queries: int, n_points: int):
    step = max(1, _CHUNK_ELEMENTS // max(n_points, 1))
    for start in range(0, n_queries, step):
        yield slice(start, min(start + step, n_queries))


def _logits(x_tilde: np.ndarray, points: np.ndarray, sigma: float) -> np.ndarray:
    d2 = (
        np.sum(x_tilde**2, axis=1)[:, None]
        - 2 * x_tilde @ points.T
        + np.sum(points**2, axis=1)[None, :]
    )
    return -np.maximum(d2, 0.0) / (2 * sigma**2)


def posterior_mean(x_tilde, points, sigma: float) -> np.ndarray:
    """Tweedie's denoiser E[x | x~] for x uniform on a point cloud.

    Parameters
    ----------
    x_tilde : array of shape (m, 2)
        Perturbed points.
    points : array of shape (N, 2)
        The data (the normal point cloud).
    sigma : float
        Standard deviation of the Gaussian perturbation.

    Returns
    -------
    ndarray of shape (m, 2)
        The softmax-weighted mean of ``points``.
    """
    x_tilde, points = _as_points(x_tilde, "x_tilde"), _as_points(points)
    if sigma <= 0:
        raise SrlibError(f"sigma must be positive, got {sigma}")
    out = np.empty_like(x_tilde)
    for rows in _chunks(len(x_tilde), len(points)):
        out[rows] = softmax(_logits(x_tilde[rows], points, sigma), axis=1) @ points
    return out


def score(x_tilde, points, sigma: float) -> np.ndarray:
    """The exact score grad log p_sigma(x~) of the perturbed point cloud (Eq. 2)."""
    x_tilde = _as_points(x_tilde, "x_tilde")
    return (posterior_mean(x_tilde, points, sigma) - x_tilde) / sigma**2


def projection_gap(manifold: Curve, points, x_tilde, sigma: float) -> np.ndarray:
    """|E[x | x~] - P_M(x~)| for each perturbed point: how far Eq. 3 is from exact."""
    return np.linalg.norm(posterior_mean(x_tilde, points, sigma) - manifold.project(x_tilde), axis=1)


def log_density(x_tilde, points, sigma: float) -> np.ndarray:
    """log p_sigma(x~) of the point cloud convolved with N(0, sigma^2 I)."""
    x_tilde, points = _as_points(x_tilde, "x_tilde"), _as_points(points)
    out = np.empty(len(x_tilde))
    for rows in _chunks(len(x_tilde), len(points)):
        out[rows] = logsumexp(_logits(x_tilde[rows], points, sigma), axis=1)
    return out - math.log(len(points)) - math.log(2 * math.pi * sigma**2)


def restoration_error(x, score_fn, std: float, n_draws: int = 3, rng=None) -> np.ndarray:
    """Monte-Carlo restoration error E|x - x^|^2 of each point (Eq. 5).

    Each draw perturbs ``x~ = x + std * eps`` and restores it with one step
    along the score, ``x^ = x~ + std^2 * score_fn(x~)`` (which is E[x | x~]
    when the score is exact).

    Parameters
    ----------
    x : array of shape (m, 2)
    score_fn : callable
        Maps perturbed points (m, 2) to the score at noise level ``std``.
    std : float
        The perturbation's standard deviation (sigma_k).
    n_draws : int
        N in the paper's Algorithm 1.
    """
    x = _as_points(x)
    rng = _rng(rng)
    total = np.zeros(len(x))
    for _ in range(n_draws):
        x_tilde = x + std * rng.standard_normal(x.shape)
        restored = x_tilde + std**2 * np.asarray(score_fn(x_tilde))
        total += np.sum((x - restored) ** 2, axis=1)
    return total / n_draws


def grid(lim: float = 2.0, n: int = 101):
    """A square grid over [-lim, lim]^2: returns (xs, ys, points (n*n, 2))."""
    xs = np.linspace(-lim, lim, n)
    gx, gy = np.meshgrid(xs, xs)
    return gx, gy, np.stack([gx.ravel(), gy.ravel()], axis=1)


# --- a learned score: a small MLP conditioned on k, trained by DSM -----------------


class ToyScoreMLP(nn.Module):
    """s_theta(x~, k): a small MLP score model for 2D data.

    Like the paper's U-Net, it embeds the noise level with fixed random
    Fourier features (of log sigma_k: the levels span three decades) and
    divides its output by sigma_k, so the raw output estimates -eps and the
    returned value estimates the score grad log p_k(x~). The input x~ is
    scaled by 1 / sqrt(1 + sigma_k^2), its standard deviation for data of
    unit scale.

    Parameters
    ----------
    hidden : int
        Width of the hidden layers.
    depth : int
        Number of hidden layers.
    n_freq : int
        Random Fourier frequencies for the embedding of k.
    sde : VESDE
        The noise schedule sigma_k (the paper's by default).
    """

    def __init__(self, hidden: int = 128, depth: int = 4, n_freq: int = 16, sde: VESDE = VESDE(),
                 generator: torch.Generator | None = None):
        super().__init__()
        self.sde = sde
        self.register_buffer("freq", torch.randn(n_freq, generator=generator) * 2.0)
        layers, width = [], 2 + 2 * n_freq
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        std = self.sde.marginal_std(k)[:, None]
        phase = torch.log(std) * self.freq[None, :] * 2 * math.pi
        x_in = x / torch.sqrt(1 + std**2)
        features = torch.cat([x_in, torch.sin(phase), torch.cos(phase)], dim=1)
        return self.net(features) / std

    @torch.no_grad()
    def score_at(self, x_tilde, k: float) -> np.ndarray:
        """The learned score at one time k for a numpy array of points."""
        x = torch.as_tensor(np.asarray(x_tilde), dtype=torch.float32)
        return self(x, torch.full((len(x),), float(k))).double().numpy()


def train_toy_score(points, steps: int = 3000, batch_size: int = 512, lr: float = 4e-3,
                    sde: VESDE = VESDE(), seed: int = 0, progress: bool = True, **model_kwargs):
    """Train :class:`ToyScoreMLP` on a 2D point cloud with the paper's DSM loss.

    k ~ U(1e-5, 1) per sample (``srlib.method.sde.dsm_loss``), AdamW with a cosine
    learning-rate decay. Returns ``(model, losses)`` with the model in eval
    mode and the per-step losses as a numpy array.
    """
    points = torch.as_tensor(_as_points(points), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # seed the layers' initialisation, leave the caller's RNG alone
        torch.manual_seed(seed)
        model = ToyScoreMLP(sde=sde, generator=gen, **model_kwargs)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = np.empty(steps)
    for step in tqdm(range(steps), desc="DSM training", disable=not progress, mininterval=1.0):
        idx = torch.randint(len(points), (batch_size,), generator=gen)
        loss = dsm_loss(model, points[idx], sde, generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses[step] = loss.item()
    return model.eval(), losses
