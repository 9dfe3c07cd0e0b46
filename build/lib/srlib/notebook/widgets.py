"""Explorers: a matplotlib figure that follows sliders, two ways.

* :func:`static_explorer` renders the figure once for every point of a grid of
  parameter values and stacks the images; each slider is linked to its stack
  with ``jslink``, which runs in the browser. The widget state saved in the
  executed notebook therefore works in the static HTML book, with no kernel.
* :func:`live_explorer` recomputes the figure whenever a slider moves, for any
  value in the grid's range; it needs a running kernel (JupyterLab).

:func:`explorer` picks one: live in a kernel that a Jupyter server started
for an open notebook (JupyterLab, Notebook 7), static frames otherwise
(papermill, as the book build runs it, nbconvert ``--execute``).

``render(**params)`` must return a matplotlib Figure; the explorers close it.
"""

from __future__ import annotations

import io
import os

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np

from srlib.errors import SrlibError


def figure_png(fig, dpi: int = 80) -> bytes:
    """The figure as PNG bytes; closes it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _check_grids(grids: dict, start: dict) -> dict:
    if not grids:
        raise SrlibError("an explorer needs at least one parameter grid, e.g. sigma=[0.05, 0.1, 0.2]")
    first = {}
    for name, values in grids.items():
        if len(values) == 0:
            raise SrlibError(f"the grid for {name!r} is empty: give it at least one value")
        value = start.get(name, values[len(values) // 2])
        matches = [i for i, v in enumerate(values) if np.isclose(v, value)]
        if not matches:
            raise SrlibError(f"start value {name}={value!r} is not in its grid {list(values)}")
        first[name] = matches[0]
    return first


def static_explorer(render, labels: dict | None = None, start: dict | None = None, dpi: int = 80,
                    **grids) -> w.Widget:
    """Sliders over precomputed frames; works in the HTML book without a kernel.

    Parameters
    ----------
    render : callable
        ``render(**params) -> matplotlib.figure.Figure``.
    labels : dict, optional
        Slider descriptions by parameter name (default: the name).
    start : dict, optional
        Initial value by parameter name (default: the middle of each grid).
    dpi : int
        Resolution of the frames.
    **grids : sequence of float
        The values of each parameter; one frame is rendered per combination.
    """
    labels, start = labels or {}, start or {}
    first = _check_grids(grids, start)
    names = list(grids)
    sliders = [
        w.SelectionSlider(
            options=[(f"{v:.3g}", i) for i, v in enumerate(grids[name])],
            value=first[name], description=labels.get(name, name), continuous_update=True,
            style={"description_width": "initial"}, layout={"width": "28em"})
        for name in names
    ]
    links = []

    def build(level: int, fixed: dict) -> w.Widget:
        if level == len(names):
            return w.Image(value=figure_png(render(**fixed), dpi=dpi), format="png")
        name = names[level]
        stack = w.Stack([build(level + 1, {**fixed, name: v}) for v in grids[name]],
                        selected_index=first[name])
        # Browser-side link: moving the slider shows another frame without a kernel.
        links.append(w.jslink((sliders[level], "index"), (stack, "selected_index")))
        return stack

    frames = build(0, {})
    box = w.VBox([w.HBox(sliders), frames], layout={"align_items": "flex-start"})
    box.links = links  # keep the links alive as long as the explorer
    return box


def live_explorer(render, labels: dict | None = None, start: dict | None = None, **grids) -> w.Widget:
    """Sliders that recompute the figure at any value in each grid's range (needs a kernel).

    Grids whose positive values are evenly spaced in log get a log slider.
    """
    from IPython.display import display

    labels, start = labels or {}, start or {}
    first = _check_grids(grids, start)
    controls = {}
    for name, values in grids.items():
        values = np.asarray(values, dtype=float)
        lo, hi, value = values.min(), values.max(), float(values[first[name]])
        common = dict(value=value, description=labels.get(name, name), continuous_update=False,
                      style={"description_width": "initial"}, layout={"width": "28em"})
        ratios = values[1:] / values[:-1] if lo > 0 and len(values) > 2 else None
        if ratios is not None and np.allclose(ratios, ratios[0]) and not np.isclose(ratios[0], 1):
            controls[name] = w.FloatLogSlider(min=np.log10(lo), max=np.log10(hi),
                                              step=np.log10(ratios[0]) / 4, **common)
        else:
            step = (hi - lo) / (4 * max(len(values) - 1, 1)) or 1.0
            controls[name] = w.FloatSlider(min=lo, max=hi, step=step, **common)

    def show(**params):
        fig = render(**params)
        display(fig)
        plt.close(fig)

    output = w.interactive_output(show, controls)
    return w.VBox([w.HBox(list(controls.values())), output])


def in_jupyter_server() -> bool:
    """Whether this kernel was started by a Jupyter server for a notebook someone has open.

    jupyter_server (behind JupyterLab and Notebook 7) puts the notebook's path
    in the environment of every kernel it starts for a session, as
    ``JPY_SESSION_NAME``. papermill, nbclient and nbconvert start their kernels
    themselves and set nothing; the book build also removes the variable from
    its kernels' environment, in case it is itself run from a notebook.
    """
    return bool(os.environ.get("JPY_SESSION_NAME"))


def explorer(render, live: bool | None = None, **kwargs) -> w.Widget:
    """:func:`live_explorer` if ``live`` else :func:`static_explorer`.

    ``live=None`` chooses by :func:`in_jupyter_server`: live for a reader in
    JupyterLab, precomputed frames when the notebook is executed for a page
    that has no kernel (the HTML book).
    """
    if live is None:
        live = in_jupyter_server()
    if live:
        kwargs.pop("dpi", None)
        return live_explorer(render, **kwargs)
    return static_explorer(render, **kwargs)
