"""Figures shared by the chapters: curves, vector fields over the plane, heat maps."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

NORMAL_COLOR = "tab:blue"
ANOMALY_COLOR = "tab:red"


def plot_manifold(ax, manifold, points=None, label: str | None = "manifold $M$", lim: float | None = None):
    """Draw a toy curve (and optionally its point cloud) on equal axes."""
    line = manifold.fn(np.linspace(0, 1, 1000))
    ax.plot(line[:, 0], line[:, 1], color="black", lw=1.2, label=label)
    if points is not None:
        ax.scatter(points[:, 0], points[:, 1], s=2, color="0.4", zorder=3)
    ax.set_aspect("equal")
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    return ax


def plot_field(ax, gx, gy, vectors, cmap: str = "viridis", normalize: bool = True, norm=None):
    """Arrows of a 2D vector field sampled on a meshgrid, coloured by their length.

    ``vectors`` has shape (gx.size, 2) (as from ``toy.grid``). With
    ``normalize`` every arrow has the same length (0.8 grid steps) and only
    its colour tells the field's magnitude; otherwise arrows are drawn in data
    units (an arrow from x~ of length sigma^2 |score| ends at E[x|x~]).
    Returns the quiver artist (for a colour bar).
    """
    u = vectors[:, 0].reshape(gx.shape)
    v = vectors[:, 1].reshape(gx.shape)
    length = np.hypot(u, v)
    if normalize:
        step = 0.8 * abs(gx[0, 1] - gx[0, 0])
        safe = np.where(length > 0, length, 1.0)
        u, v = u / safe * step, v / safe * step
    return ax.quiver(gx, gy, u, v, length, cmap=cmap, norm=norm, angles="xy", scale_units="xy", scale=1.0,
                     width=0.005, headwidth=4, headlength=4, headaxislength=3.5, pivot="tail")


def plot_heatmap(ax, gx, gy, values, cmap: str = "magma", log: bool = False, vmin=None, vmax=None, mask=None):
    """A scalar field over a meshgrid (``values`` of size gx.size) as an image.

    ``mask`` (same size, True = hide) leaves parts of the plane blank.
    """
    z = np.asarray(values, dtype=float).reshape(gx.shape)
    if log:
        z = np.log10(np.maximum(z, 1e-12))
    if mask is not None:
        z = np.ma.masked_array(z, np.asarray(mask).reshape(gx.shape))
    step = abs(gx[0, 1] - gx[0, 0]) / 2
    return ax.imshow(z, origin="lower", extent=(gx.min() - step, gx.max() + step, gy.min() - step, gy.max() + step),
                     cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")


def figure(ncols: int = 1, nrows: int = 1, size: float = 3.6, **kwargs):
    """A figure of ``nrows x ncols`` square panels of ``size`` inches."""
    return plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False,
                        constrained_layout=True, **kwargs)
