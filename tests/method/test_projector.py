"""The nearest-training-patch projector against brute force and hand-worked cases."""

import numpy as np
import pytest
import torch

from srlib.errors import SrlibError
from srlib.method.projector import nearest_patch_error


def brute_force(train, images, patch, train_stride=1):
    """Loops over every pixel and every training patch, reflect padding written out with numpy."""
    half = patch // 2
    pad = lambda a: np.pad(a, ((0, 0), (half, half), (half, half)), mode="reflect")
    data = []
    for image in train.numpy():
        padded = pad(image)
        for y in range(0, image.shape[1], train_stride):
            for x in range(0, image.shape[2], train_stride):
                data.append(padded[:, y:y + patch, x:x + patch])
    data = np.stack(data)
    out = np.zeros((len(images), 1, *images.shape[-2:]))
    for b, image in enumerate(images.numpy()):
        padded = pad(image)
        for y in range(image.shape[1]):
            for x in range(image.shape[2]):
                mine = padded[:, y:y + patch, x:x + patch]
                nearest = data[np.argmin(((data - mine) ** 2).sum(axis=(1, 2, 3)))]
                out[b, 0, y, x] = ((mine[:, half, half] - nearest[:, half, half]) ** 2).mean()
    return torch.from_numpy(out).float()


def test_equals_a_brute_force_search_over_every_training_patch():
    g = torch.Generator().manual_seed(0)
    train, images = torch.rand(3, 2, 9, 8, generator=g), torch.rand(2, 2, 7, 10, generator=g)
    for patch, stride in ((3, 1), (5, 2), (1, 1)):
        got = nearest_patch_error(train, images, patch=patch, train_stride=stride, chunk=17)
        torch.testing.assert_close(got, brute_force(train, images, patch, stride), rtol=1e-5, atol=1e-6)


def test_the_training_images_are_restored_exactly():
    # The projector leaves the data where it is: a training image's map is zero everywhere.
    train = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    assert nearest_patch_error(train, train[1:], patch=5).abs().max() < 1e-5


def test_constant_training_images_restore_every_pixel_to_that_constant():
    # Every training patch is the constant c, so the error is the channel mean of (x - c)**2.
    c = torch.tensor([0.2, -0.5, 0.9])[:, None, None]
    train = c.expand(3, 10, 10)[None].clone()
    images = torch.rand(2, 3, 6, 7, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(nearest_patch_error(train, images, patch=3), ((images - c) ** 2).mean(1, keepdim=True))


def test_a_query_stride_fills_each_block_with_its_scored_pixel():
    g = torch.Generator().manual_seed(3)
    train, images = torch.rand(2, 1, 10, 10, generator=g), torch.rand(1, 1, 9, 11, generator=g)
    full = nearest_patch_error(train, images, patch=3)
    coarse = nearest_patch_error(train, images, patch=3, query_stride=2)
    assert coarse.shape == full.shape
    for y in range(9):
        for x in range(11):
            assert coarse[0, 0, y, x] == pytest.approx(float(full[0, 0, y - y % 2, x - x % 2]), abs=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(patch=4), "patch 4 must be an odd number"),
    (dict(patch=0), "patch 0 must be an odd number"),
    (dict(train_stride=0), "strides must be >= 1"),
    (dict(query_stride=0), "strides must be >= 1"),
    (dict(patch=21), "patch 21 is too large"),
])
def test_bad_settings_are_refused_in_one_line(kwargs, message):
    with pytest.raises(SrlibError, match=message) as caught:
        nearest_patch_error(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), **kwargs)
    assert "\n" not in str(caught.value)


def test_images_with_other_channels_are_refused():
    with pytest.raises(SrlibError, match=r"same C"):
        nearest_patch_error(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))


def test_grey_images_stored_as_equal_channels_give_the_one_channel_map():
    g = torch.Generator().manual_seed(4)
    train, images = torch.rand(2, 1, 10, 10, generator=g), torch.rand(2, 1, 8, 9, generator=g)
    grey = nearest_patch_error(train.repeat(1, 3, 1, 1), images.repeat(1, 3, 1, 1), patch=3)
    torch.testing.assert_close(grey, brute_force(train.repeat(1, 3, 1, 1), images.repeat(1, 3, 1, 1), 3))
    torch.testing.assert_close(grey, nearest_patch_error(train, images, patch=3))
