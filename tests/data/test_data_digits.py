"""One-class digits from scikit-learn's bundled 8x8 images."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from srlib.data import one_class_digits
from srlib.errors import SrlibError


def test_train_holds_only_the_normal_digit_and_test_holds_all():
    train = one_class_digits(normal=3, split="train", image_size=16)
    test = one_class_digits(normal=3, split="test", image_size=16)
    targets = load_digits().target
    per_class = np.bincount(targets)
    n_test = np.round(0.3 * per_class).astype(int)
    assert len(train) == per_class[3] - n_test[3] and set(train.digits) == {3} and set(train.labels) == {0}
    assert len(test) == n_test.sum()
    assert test.labels == [int(d != 3) for d in test.digits] and test.labels.count(0) == n_test[3]
    assert not set(train.indices) & set(test.indices)
    assert [int(targets[i]) for i in test.indices] == test.digits


def test_split_is_deterministic_and_seeded():
    a = one_class_digits(normal=0, split="test")
    assert a.indices == one_class_digits(normal=0, split="test").indices
    assert a.indices != one_class_digits(normal=0, split="test", seed=1).indices


def test_images_are_bilinear_upsampled_scaled_and_repeated():
    train = one_class_digits(normal=7, split="train", image_size=32)
    item = train[5]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    raw = torch.from_numpy(load_digits().images[item["index"]] / 16).float()[None, None]
    # A second implementation: torch's bilinear with half-pixel centres.
    want = torch.nn.functional.interpolate(raw, size=(32, 32), mode="bilinear", align_corners=False)[0] * 2 - 1
    torch.testing.assert_close(item["image"], want.expand(3, 32, 32))
    assert train.images.min() >= -1 and train.images.max() <= 1


@pytest.mark.parametrize("kwargs", [{"normal": 10}, {"split": "val"}, {"image_size": 8}, {"test_fraction": 1.0}])
def test_bad_arguments_are_one_line_errors(kwargs):
    with pytest.raises(SrlibError):
        one_class_digits(**kwargs)
