"""The folder datasets read the real MVTec AD, MPDD and BTAD layouts."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from srlib.data import folder_dataset
from tiny_datasets import colour, write_category


def expected_pixel(rgb, grayscale=False):
    """A flat colour as the loader must return it: 2 * (v / 255) - 1 per channel."""
    if grayscale:  # Pillow's L conversion (ITU-R 601-2, rounded), then repeated
        r, g, b = rgb
        rgb = [int((r * 299 + g * 587 + b * 114 + 500) // 1000)] * 3
    return torch.tensor([2 * (v / 255) - 1 for v in rgb], dtype=torch.float32)


def test_mvtec_items_hold_the_right_pixels_labels_and_masks(tmp_path):
    write_category(tmp_path, "bottle", size=(8, 8))
    test = folder_dataset("mvtec", tmp_path, "bottle", "test", image_size=12, mask_size=16)
    train = folder_dataset("mvtec", tmp_path, "bottle", "train", image_size=12, mask_size=16)
    assert len(train) == 3 and set(train.labels) == {0}
    assert len(test) == 2 + 2 + 2
    for item in test:
        split, defect, index = "test", item["defect"], int(item["path"][-7:-4])
        assert item["image"].shape == (3, 12, 12)
        # A flat image stays flat under Lanczos: every pixel is the colour, scaled.
        want = expected_pixel(colour(split, defect, index))[:, None, None].expand(3, 12, 12)
        torch.testing.assert_close(item["image"], want, rtol=0, atol=1e-6)
        assert item["label"] == int(defect != "good")
        assert item["mask"].shape == (1, 16, 16)
        if defect == "good":
            assert item["mask"].sum() == 0
        else:  # the 8x8 top-left quarter doubled by nearest neighbour
            want_mask = torch.zeros(1, 16, 16)
            want_mask[:, :8, :8] = 1
            assert torch.equal(item["mask"], want_mask)
    assert sorted(set(test.defects)) == ["crack", "good", "scratch"]


def test_items_match_pillow_lanczos_on_a_textured_image(tmp_path):
    write_category(tmp_path, "wood", n_test_good=1, n_defect=1)
    path = tmp_path / "wood" / "train" / "good" / "000.png"
    pixels = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    item = folder_dataset("mvtec", tmp_path, "wood", "train", image_size=7)[0]
    direct = np.asarray(Image.fromarray(pixels).resize((7, 7), Image.Resampling.LANCZOS)).astype(np.float32)
    torch.testing.assert_close(item["image"], torch.from_numpy(direct / 255 * 2 - 1).permute(2, 0, 1))


def test_grayscale_category_is_repeated_over_rgb(tmp_path):
    write_category(tmp_path, "screw", grayscale=True)
    item = folder_dataset("mvtec", tmp_path, "screw", "train", image_size=8)[1]
    torch.testing.assert_close(item["image"][:, 0, 0], expected_pixel(colour("train", "good", 1), grayscale=True))
    assert torch.equal(item["image"][0], item["image"][2])


def test_btad_bmp_non_square_product_is_squashed_to_square(tmp_path):
    folder = write_category(tmp_path, "03", layout="btad", size=(16, 12), suffix=".bmp")
    # Left half red, right half blue: after squashing 16 -> 8 columns the outer
    # columns are still pure (Lanczos at scale 2 reaches 6 source pixels).
    halves = np.zeros((12, 16, 3), np.uint8)
    halves[:, :8, 0] = 255
    halves[:, 8:, 2] = 255
    Image.fromarray(halves).save(folder / "test" / "ko" / "001.bmp")
    test = folder_dataset("btad", tmp_path, "03", "test", image_size=8, mask_size=8)
    assert test.defects == ["ko", "ko", "ok", "ok"] and test.labels == [1, 1, 0, 0]
    item = test[1]
    assert item["path"].endswith("ko/001.bmp") and item["image"].shape == (3, 8, 8)
    torch.testing.assert_close(item["image"][:, :, 0], torch.tensor([1.0, -1, -1])[:, None].expand(3, 8))
    torch.testing.assert_close(item["image"][:, :, 7], torch.tensor([-1.0, -1, 1])[:, None].expand(3, 8))
    # The 16x12 mask's top-left quarter (8x6) becomes the top-left 4 columns x 4 rows.
    want = torch.zeros(1, 8, 8)
    want[:, :4, :4] = 1
    assert torch.equal(item["mask"], want)


def test_mpdd_category_reads_like_mvtec(tmp_path):
    write_category(tmp_path, "tubes", defects=("anomalous",))
    test = folder_dataset("mpdd", tmp_path, "tubes", "test", image_size=16)
    assert test.defects == ["anomalous", "anomalous", "good", "good"]


def test_cache_serves_every_epoch_without_the_files(tmp_path):
    write_category(tmp_path, "bottle")
    test = folder_dataset("mvtec", tmp_path, "bottle", "test", image_size=8, mask_size=8)
    first = next(iter(DataLoader(test, batch_size=len(test))))
    shutil.rmtree(tmp_path / "bottle")  # decoded once: later epochs never touch the disk
    again = next(iter(DataLoader(test, batch_size=len(test))))
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["mask"], again["mask"])
    assert first["image"].shape == (6, 3, 8, 8) and first["label"].tolist() == [1, 1, 0, 0, 1, 1]  # crack, good, scratch
    assert test.images.dtype == torch.uint8
