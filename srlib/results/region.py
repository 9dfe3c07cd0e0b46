"""The effective region of k in one category's k sweep (the paper's Sec. 5.4 and Fig. 6).

Too small a k leaves the restoration dominated by the network's error at
almost no noise, too large a k blurs the manifold away: the image AUROC over
k rises, peaks and falls. :func:`effective_region` finds the peak on the
sweep's grid and whether the grid reaches far enough on each side to see the
AUROC fall again; :func:`describe_region` says so in a sentence (chapter 5).
"""

from __future__ import annotations

import numpy as np

from srlib.run.sweeps import ALL


def effective_region(rows: list[dict], k: float) -> dict:
    """The peak of the whole test split's image AUROC over one category's sweep ``rows``, and the value at ``k``.

    ``rows`` are :func:`srlib.run.sweeps.sweep_rows` of one category (k
    ascending). Returns ``best_k`` and ``best`` (the first maximum),
    ``at_k`` (the image AUROC at ``k``, a k of the grid), and
    ``falls_below`` / ``falls_above``: whether the smallest / largest k of
    the grid scores lower than the peak (the region ends inside the grid on
    that side).
    """
    overall = sorted((r for r in rows if r["subset"] == ALL), key=lambda r: r["k"])
    values = [r["image_auroc"] for r in overall]
    best = int(np.argmax(values))
    at_k = next(r["image_auroc"] for r in overall if r["k"] == k)
    return {"best_k": overall[best]["k"], "best": values[best], "at_k": at_k,
            "falls_below": values[0] < values[best], "falls_above": values[-1] < values[best]}


def describe_region(category: str, region: dict, k: float) -> str:
    """One line: the image AUROC at ``k``, the best on the grid, and what each end of the grid shows."""
    ends = {"smallest": region["falls_below"], "largest": region["falls_above"]}
    return (f"{category}: image AUROC {region['at_k']:.3f} at k = {k:g}, best {region['best']:.3f} at k = "
            f"{region['best_k']:g}; "
            + "; ".join(f"lower at the {end} k of the grid" if falls else
                        f"no lower at the {end} k of the grid (the region may extend beyond it)"
                        for end, falls in ends.items()))
