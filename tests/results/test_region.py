"""The effective region of k in a sweep (srlib.results.region), on hand-made rows."""

from srlib.results.region import describe_region, effective_region
from srlib.run.sweeps import ALL


def rows(values, subset=ALL):
    return [{"subset": subset, "k": k, "image_auroc": v} for k, v in zip((1e-4, 1e-3, 1e-2, 1e-1), values)]


def test_the_peak_inside_the_grid_falls_on_both_sides():
    # A defect subset's higher values do not count; rows out of order are sorted by k.
    sweep = rows((0.6, 0.9, 0.8, 0.5))[::-1] + rows((1.0, 1.0, 1.0, 1.0), subset="hole")
    region = effective_region(sweep, 1e-2)
    assert region == {"best_k": 1e-3, "best": 0.9, "at_k": 0.8, "falls_below": True, "falls_above": True}
    assert describe_region("coin", region, 1e-2) == ("coin: image AUROC 0.800 at k = 0.01, best 0.900 at k = 0.001; "
                                                     "lower at the smallest k of the grid; lower at the largest k of "
                                                     "the grid")


def test_a_peak_at_an_end_of_the_grid_may_extend_beyond_it():
    region = effective_region(rows((0.9, 0.9, 0.7, 0.6)), 1e-3)  # ties: the first maximum, the smallest k
    assert (region["best_k"], region["falls_below"], region["falls_above"]) == (1e-4, False, True)
    assert "no lower at the smallest k of the grid (the region may extend beyond it)" in describe_region("a", region, 1e-3)
