"""Maps as pictures: the colour scale, the strip against a hand computation, the sample of overlays."""

import numpy as np
import pytest
import torch
from matplotlib import colormaps

from srlib.run.pictures import colour_range, overlay_indices, picture, scaled, strip


def test_the_colour_scale_is_the_1st_to_99th_percentile_clipped():
    maps = np.arange(101, dtype=np.float64)  # percentiles of 0..100 are the values themselves
    assert colour_range(maps) == (1.0, 99.0)
    np.testing.assert_allclose(scaled([0.0, 1.0, 50.0, 99.0, 100.0], 1.0, 99.0), [0, 0, 49 / 98, 1, 1])
    assert np.all(scaled(np.full(4, 3.0), 3.0, 3.0) == 0)  # a flat map: no division by zero


def test_a_strip_is_input_blended_map_and_truth_side_by_side():
    image = np.full((4, 4, 3), 100, np.uint8)
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    out = strip(image, heat, mask, blend=0.5)
    assert out.shape == (4, 12, 3) and out.dtype == np.uint8
    assert np.all(out[:, :4] == 100)
    for (row, col), value in (((0, 0), 1.0), ((3, 3), 0.0)):
        expected = np.round(0.5 * 100 + 0.5 * np.asarray(colormaps["inferno"](value)[:3]) * 255)
        np.testing.assert_array_equal(out[row, 4 + col], expected)
    np.testing.assert_array_equal(out[:, 8:, 0] == 255, mask)
    np.testing.assert_array_equal(strip(image, heat, mask, blend=1.0)[0, 4],
                                  np.round(np.asarray(colormaps["inferno"](1.0)[:3]) * 255))


def test_picture_maps_minus_one_to_one_onto_bytes():
    image = torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 1, 3).expand(3, 1, 3).clone()  # one row of three pixels
    np.testing.assert_array_equal(picture(image)[0, :, 0], [0, 128, 255])


@pytest.mark.parametrize("labels, count, expected", [
    ([0] * 4 + [1] * 8, 4, [0, 4, 7, 11]),  # 3 defective spread over 4..11, 1 good
    ([1, 1, 1], 8, [0, 1, 2]),  # fewer images than asked, no good ones
    ([0, 0, 1], 8, [0, 1, 2]),
])
def test_overlays_sample_mostly_defective_images_evenly(labels, count, expected):
    assert overlay_indices(torch.tensor(labels), count) == expected
