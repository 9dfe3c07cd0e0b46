"""srlib.notebook.widgets: the static explorer holds one frame per grid point, linked in the browser."""

import ipywidgets as w
from ipywidgets.widgets import widget_link
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from srlib.notebook import widgets  # noqa: E402
from srlib.errors import SrlibError  # noqa: E402


def render(**params):
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.text(0, 0, repr(sorted(params.items())))
    return fig


def images(widget) -> list:
    if isinstance(widget, w.Image):
        return [widget]
    return [img for child in getattr(widget, "children", []) for img in images(child)]


def test_one_parameter_frames_follow_the_grid_and_the_slider_is_jslinked():
    grid = [0.1, 0.2, 0.4]
    box = widgets.static_explorer(render, sigma=grid, start={"sigma": 0.4})
    (slider,), stack = box.children[0].children, box.children[1]
    assert [img.value for img in images(stack)] == [widgets.figure_png(render(sigma=v)) for v in grid]
    assert slider.options == (("0.1", 0), ("0.2", 1), ("0.4", 2)) and slider.index == 2
    assert stack.selected_index == 2
    (link,) = box.links
    assert isinstance(link, widget_link.Link)  # a jslink: runs in the browser, so it works in the static HTML
    assert link.source == (slider, "index") and link.target == (stack, "selected_index")


def test_two_parameters_nest_stacks_and_link_the_second_slider_to_every_inner_stack():
    box = widgets.static_explorer(render, sigma=[5, 25], k=[0.001, 0.01, 0.1])
    sigma_slider, k_slider = box.children[0].children
    outer = box.children[1]
    assert len(outer.children) == 2 and all(len(inner.children) == 3 for inner in outer.children)
    expected = [widgets.figure_png(render(sigma=s, k=k)) for s in (5, 25) for k in (0.001, 0.01, 0.1)]
    assert [img.value for img in images(outer)] == expected
    targets = {id(link.target[0]) for link in box.links if link.source[0] is k_slider}
    assert targets == {id(inner) for inner in outer.children}
    assert [link.target[0] for link in box.links if link.source[0] is sigma_slider] == [outer]


def test_live_explorer_uses_a_log_slider_for_a_geometric_grid():
    box = widgets.live_explorer(render, sigma=[0.01, 0.1, 1.0], n=[1, 2, 3])
    sigma, n = box.children[0].children
    assert isinstance(sigma, w.FloatLogSlider) and sigma.min == pytest.approx(-2) and sigma.max == pytest.approx(0)
    assert isinstance(n, w.FloatSlider) and (n.min, n.max, n.value) == (1, 3, 2)


def test_bad_grids_raise_one_line_errors():
    with pytest.raises(SrlibError, match="at least one parameter grid"):
        widgets.static_explorer(render)
    with pytest.raises(SrlibError, match="grid for 'sigma' is empty"):
        widgets.static_explorer(render, sigma=[])
    with pytest.raises(SrlibError, match=r"start value sigma=0.3 is not in its grid"):
        widgets.static_explorer(render, sigma=[0.1, 0.2], start={"sigma": 0.3})


def test_the_default_is_live_in_a_kernel_a_jupyter_server_started_and_frames_otherwise(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)  # papermill, nbconvert: no server
    assert isinstance(widgets.explorer(render, sigma=[0.1, 0.2]).children[1], w.Stack)
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/reader/notebooks/01_score_is_a_projector.ipynb")
    assert isinstance(widgets.explorer(render, sigma=[0.1, 0.2]).children[1], w.Output)
    assert isinstance(widgets.explorer(render, live=False, sigma=[0.1, 0.2]).children[1], w.Stack)
    # The book's kernels never see the variable, even when the build runs inside JupyterLab.
    from srlib.book.build import kernel_env

    assert "JPY_SESSION_NAME" not in kernel_env()
