"""Numbers a chapter states, recorded in its executed notebook.

``record(name, value)`` stores a value in the cell's output the way myst-nb's
``glue(..., display=False)`` does (the scrapbook format), without importing
myst-nb: the book's prose can show it with ``{glue:text}`name:.3f```, and tests
read it back with :func:`read_records`. Nothing is displayed in JupyterLab.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np

from srlib.errors import SrlibError

# The mimetype prefix myst-nb uses for glued values that are not displayed.
PREFIX = "application/papermill.record/"


def plain(value):
    """``value`` with numpy scalars and arrays turned into Python floats, ints and lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def record(name: str, value) -> None:
    """Record ``value`` (numbers, strings, lists or dicts of them) under ``name``."""
    from IPython.display import display

    value = plain(value)
    display({PREFIX + "text/plain": repr(value)}, raw=True,
            metadata={"scrapbook": {"name": name, "mime_prefix": PREFIX}})


def read_records(notebook) -> dict:
    """All values recorded in an executed notebook (a path or a loaded dict).

    Raises
    ------
    SrlibError
        If the path is not a readable notebook.
    """
    if isinstance(notebook, (str, Path)):
        try:
            notebook = json.loads(Path(notebook).read_text())
        except (OSError, ValueError) as err:
            raise SrlibError(f"cannot read the notebook {notebook}: {err}") from None
    records = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook")
            if meta:
                text = output["data"][meta.get("mime_prefix", "") + "text/plain"]
                records[meta["name"]] = ast.literal_eval("".join(text))
    return records
