"""Image files of every kind decode to the grey levels they hold, or are refused with one line.

The expected values are computed here from the numbers written into each file
(16-bit v is 8-bit round(v / 257), CMYK's cyan c is red 255 - c, ...), never
by the code under test.
"""

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from srlib.cli import main
from srlib.data import folder_dataset
from srlib.data.images import image_pixels, mask_pixels, read_image, read_mask
from srlib.errors import SrlibError
from tiny_datasets import write_category

GRADIENT = np.linspace(0, 65535, 64).round().astype(np.uint16)[None, :].repeat(3, axis=0)  # (3, 64): 0 .. 65535


def eight_bit(values: np.ndarray) -> np.ndarray:
    """What a 16-bit grey level is on the 8-bit scale, rounded to the nearest level."""
    return np.round(values.astype(np.float64) * 255 / 65535).astype(np.uint8)


def png16(path, values: np.ndarray, colour_type: int) -> None:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB): colour type 0 grey, 2 RGB, 4 grey+alpha."""
    height, width = values.shape[:2]
    rows = b"".join(b"\0" + values[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("writer", ["pillow png", "hand png", "tiff little-endian", "tiff big-endian"])
def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path, writer):
    path = tmp_path / ("g.tif" if "tiff" in writer else "g.png")
    if writer == "hand png":
        png16(path, GRADIENT, 0)
    elif writer == "tiff big-endian":
        Image.fromarray(GRADIENT.astype(">u2")).save(path)
    else:
        Image.fromarray(GRADIENT).save(path)
    assert Image.open(path).mode.startswith("I;16")
    rgb = np.asarray(read_image(path, "RGB"))
    assert rgb.shape == (3, 64, 3)
    for channel in range(3):
        assert np.array_equal(rgb[..., channel], eight_bit(GRADIENT))


def test_16_bit_colour_and_grey_with_alpha_are_within_one_level(tmp_path):
    # Pillow keeps the high byte of each 16-bit sample: floor(v / 256), at most one level from round(v / 257).
    colour = np.stack([GRADIENT, GRADIENT[:, ::-1], np.full_like(GRADIENT, 40000)], axis=-1)
    png16(tmp_path / "rgb.png", colour, 2)
    assert np.abs(np.asarray(read_image(tmp_path / "rgb.png", "RGB")).astype(int) - eight_bit(colour)).max() <= 1
    grey_alpha = np.stack([GRADIENT, np.full_like(GRADIENT, 65535)], axis=-1)
    png16(tmp_path / "la.png", grey_alpha, 4)
    grey = np.asarray(read_image(tmp_path / "la.png", "L")).astype(int)
    assert np.abs(grey - eight_bit(GRADIENT)).max() <= 1


def test_palette_grey_alpha_one_bit_and_cmyk_keep_their_levels(tmp_path):
    levels = np.array([[0, 37, 128, 255]], np.uint8)
    palette = Image.fromarray(np.array([[0, 1, 2, 3]], np.uint8), "P")
    colours = [(10, 20, 30), (200, 100, 0), (0, 0, 255), (255, 255, 255)]
    palette.putpalette([c for rgb in colours for c in rgb])
    palette.save(tmp_path / "p.png")
    assert np.asarray(read_image(tmp_path / "p.png", "RGB")).tolist() == [[list(c) for c in colours]]

    Image.fromarray(np.stack([levels, np.full_like(levels, 7)], axis=-1), "LA").save(tmp_path / "la.png")
    assert np.array_equal(np.asarray(read_image(tmp_path / "la.png", "L")), levels)

    Image.fromarray(np.array([[True, False, True, False]])).save(tmp_path / "one.png")
    assert np.asarray(read_image(tmp_path / "one.png", "L")).tolist() == [[255, 0, 255, 0]]

    cyan = np.array([[0, 60, 200, 255]], np.uint8)
    cmyk = np.stack([cyan, np.zeros_like(cyan), cyan, np.zeros_like(cyan)], axis=-1)  # no key: red = 255 - cyan
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.tif")
    rgb = np.asarray(read_image(tmp_path / "c.tif", "RGB"))
    assert np.array_equal(rgb[..., 0], 255 - cyan) and np.array_equal(rgb[..., 1], np.full_like(cyan, 255))
    cmyk[..., 3] = 255  # full key is black whatever the ink
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "k.tif")
    assert not np.asarray(read_image(tmp_path / "k.tif", "RGB")).any()


@pytest.mark.parametrize("mode, array, kind", [
    ("I", np.array([[0, 70000]], np.int32), "integer"),
    ("F", np.array([[0.0, 0.5]], np.float32), "floating-point"),
])
def test_32_bit_images_are_refused_with_one_line(tmp_path, mode, array, kind):
    path = tmp_path / "x.tif"
    Image.fromarray(array, mode).save(path)
    with pytest.raises(SrlibError) as raised:
        image_pixels(path, 16)
    assert str(raised.value) == (f"{path} holds 32-bit {kind} grey levels (Pillow mode {mode}), which have no fixed "
                                 "black and white; save it as an 8- or 16-bit PNG")


def rectangle(shape=(64, 64), box=(10, 40, 12, 30)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    top, bottom, left, right = box
    mask[top:bottom, left:right] = True
    return mask


def test_a_jpeg_mask_is_binarised_at_mid_grey_to_the_drawn_region(tmp_path):
    drawn = rectangle()
    Image.fromarray(drawn.astype(np.uint8) * 255).save(tmp_path / "m.jpg", quality=75)
    raw = np.asarray(Image.open(tmp_path / "m.jpg"))
    assert ((raw > 0) & ~drawn).sum() > 0  # JPEG noise: "any non-zero pixel" would grow the defect
    assert np.array_equal(read_mask(tmp_path / "m.jpg"), drawn)


@pytest.mark.parametrize("dtype, on", [(np.uint8, 1), (np.uint16, 1), (np.uint16, 65535), (np.uint8, 128)])
def test_label_masks_16_bit_masks_and_the_mid_grey_threshold(tmp_path, dtype, on):
    drawn = rectangle()
    values = drawn.astype(dtype) * on
    values[0, 0] = 127 if on == 128 else 0  # just below mid-grey: not a defect
    Image.fromarray(values).save(tmp_path / "m.png")
    assert np.array_equal(read_mask(tmp_path / "m.png"), drawn)
    resized = mask_pixels(tmp_path / "m.png", 32)  # binarised first, then nearest-neighbour
    assert resized.dtype == np.uint8 and np.array_equal(resized[0], drawn[::2, ::2])


@pytest.fixture
def small_bomb_limit(monkeypatch):
    """Pillow's decompression-bomb limit lowered to 1000 pixels: warned above it, refused above twice it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    filters = list(warnings.filters)
    yield
    assert warnings.filters == filters  # reading restored the process-wide filters


@pytest.mark.parametrize("side", [40, 50])  # 1600 pixels (Pillow only warns) and 2500 (Pillow refuses)
def test_decompression_bomb_sized_images_are_one_line_naming_the_file(tmp_path, small_bomb_limit, side):
    path = tmp_path / "big.png"
    Image.new("L", (side, side)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's own warning, naming no file, must not escape
        with pytest.raises(SrlibError) as raised:
            image_pixels(path, 16)
    assert str(raised.value) == (
        f"{path} is too large ({side * side:,} pixels) for Pillow's decompression-bomb limit "
        "(PIL.Image.MAX_IMAGE_PIXELS = 1,000); shrink it (srlib resizes images to a few hundred pixels anyway), "
        "or, if you trust it, raise PIL.Image.MAX_IMAGE_PIXELS in Python before reading it")


def test_training_reads_every_mode_as_data_check_passes_it(tmp_path, capsys, small_bomb_limit):
    """The folder training reads: each train image in another format, all decoded to their grey level."""
    folder = write_category(tmp_path, "bottle", size=(8, 8), n_train=5)
    good = folder / "train" / "good"
    for path in good.iterdir():
        path.unlink()
    grey = np.full((8, 8), 30000, np.uint16)
    Image.fromarray(grey).save(good / "a16.png")
    Image.fromarray(grey.astype(">u2")).save(good / "b16.tif")
    Image.fromarray(np.full((8, 8), 117, np.uint8)).convert("P").save(good / "c.png")
    Image.fromarray(np.full((8, 8, 2), 117, np.uint8), "LA").save(good / "d.png")
    Image.fromarray(np.full((8, 8, 4), (138, 138, 138, 0), np.uint8), "CMYK").save(good / "e.tif")
    assert main(["data", "check", "--dataset", "mvtec", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 category, 11 images: no problems"
    images = folder_dataset("mvtec", tmp_path, "bottle", "train", image_size=8).images
    assert (images == eight_bit(np.array(30000))).all() and eight_bit(np.array(30000)) == 117
    Image.new("L", (40, 40)).save(good / "f.png")  # over the (lowered) bomb limit: both refuse it, naming it
    assert main(["data", "check", "--dataset", "mvtec", "--root", str(tmp_path)]) == 2
    assert f"srlib: error: {good / 'f.png'} is too large" in capsys.readouterr().err
    with pytest.raises(SrlibError, match="f.png is too large"):
        folder_dataset("mvtec", tmp_path, "bottle", "train", image_size=8)


def test_a_mask_drawn_in_colour_is_read_by_its_brightest_channel(tmp_path):
    drawn = rectangle()
    red = np.zeros((*drawn.shape, 3), np.uint8)
    red[drawn] = (255, 0, 0)  # luminance 76: below mid-grey, yet plainly drawn
    Image.fromarray(red).save(tmp_path / "red.png")
    assert np.array_equal(read_mask(tmp_path / "red.png"), drawn)
