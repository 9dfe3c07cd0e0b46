"""The real-photo default: deterministic, exact masks, MVTec layout, honest splits."""

import filecmp
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage as ndi

from srlib.cli import main
from srlib.data import TEXTURE_CATEGORIES, folder_dataset, make_textures
from srlib.data.check import check_folder
from srlib.data.defects import MIN_CHANGE
from srlib.data.textures import _RECIPES, DEFECTS, PER_DEFECT, SIZE, photograph, texture_sample
from srlib.errors import SrlibError
from tiny_datasets import snapshot


@pytest.fixture
def textures(textures_root):
    return textures_root  # written once per session by conftest, seed 0


def files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_categories_are_written_in_the_mvtec_layout(textures):
    assert TEXTURE_CATEGORIES == ("brick", "grass", "tissue", "coin", "cup")
    kinds = [_RECIPES[c].kind for c in TEXTURE_CATEGORIES]
    assert kinds.count("texture") >= 2 and kinds.count("object") >= 2
    for category in TEXTURE_CATEGORIES:  # colour categories are written in colour, the others in grey
        mode = Image.open(textures / category / "train" / "good" / "000.png").mode
        assert mode == ("RGB" if _RECIPES[category].colour else "L"), category
    for category in TEXTURE_CATEGORIES:
        folder = textures / category
        assert sorted(p.name for p in folder.iterdir()) == ["ground_truth", "readme.txt", "test", "train"]
        assert sorted(p.name for p in (folder / "test").iterdir()) == sorted(DEFECTS + ("good",))
        assert len(list((folder / "train" / "good").glob("*.png"))) == 80
        for defect in DEFECTS:
            names = sorted(p.name for p in (folder / "test" / defect).iterdir())
            masks = sorted(p.name for p in (folder / "ground_truth" / defect).iterdir())
            assert names == [f"{i:03d}.png" for i in range(PER_DEFECT)]
            assert masks == [f"{i:03d}_mask.png" for i in range(PER_DEFECT)]


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(textures, tmp_path):
    again = make_textures(tmp_path / "again", seed=0)
    assert files(again) == files(textures)
    assert all(filecmp.cmp(textures / f, again / f, shallow=False) for f in files(textures))
    other = make_textures(tmp_path / "other", seed=1)
    assert not filecmp.cmp(textures / "brick/train/good/000.png", other / "brick/train/good/000.png", shallow=False)


@pytest.mark.parametrize("category", TEXTURE_CATEGORIES)
def test_each_mask_is_exactly_the_changed_pixels(textures, category):
    folder = textures / category
    for defect in DEFECTS:
        for index in range(PER_DEFECT):
            clean, _, _ = texture_sample(category, "test", defect, index, seed=0)
            written = np.asarray(Image.open(folder / "test" / defect / f"{index:03d}.png")).astype(int)
            mask = np.asarray(Image.open(folder / "ground_truth" / defect / f"{index:03d}_mask.png"))
            assert written.shape == clean.shape and mask.shape == (SIZE, SIZE)
            assert set(np.unique(mask)) == {0, 255}
            change = np.abs(written - clean).reshape(SIZE, SIZE, -1).max(axis=2)
            assert np.array_equal(mask > 0, change > 0), f"{category}/{defect}/{index}"
            assert change[mask > 0].min() >= MIN_CHANGE[defect]
    for split, count in (("train", 80), ("test", 20)):  # good images are the clean crops
        for index in range(0, count, 7):
            clean, _, _ = texture_sample(category, split, "good", index, seed=0)
            assert np.array_equal(np.asarray(Image.open(folder / split / "good" / f"{index:03d}.png")), clean)


def test_defects_are_graded_from_small_and_strong_to_large_and_faint(textures):
    # Medians over all categories: holes are the smallest defects and change the most per
    # pixel, stains the least; the texture patches keep the mean of what they replace
    # (per channel, up to the rounding and the pushes that keep masks exact).
    area, change, shift = {}, {}, {}
    for defect in DEFECTS:
        stats = []
        for category in TEXTURE_CATEGORIES:
            for index in range(PER_DEFECT):
                clean, image, mask = texture_sample(category, "test", defect, index, seed=0)
                c, i = clean.reshape(SIZE, SIZE, -1)[mask].astype(float), image.reshape(SIZE, SIZE, -1)[mask].astype(float)
                stats.append((mask.sum(), np.abs(i - c).mean(), np.abs(i.mean(axis=0) - c.mean(axis=0)).max()))
        area[defect], change[defect], shift[defect] = np.median(stats, axis=0)
    assert area["hole"] == min(area.values())
    assert change["hole"] == max(change.values()) and change["stain"] == min(change.values())
    assert shift["texture"] < 8 < min(shift[d] for d in ("hole", "scratch", "stain"))


@pytest.mark.parametrize("category", ["brick", "grass"])
def test_texture_test_crops_come_from_rows_training_never_saw(textures, category):
    photo = photograph(_RECIPES[category].photo)
    windows = sliding_window_view(photo, (1, SIZE))[:, :, 0, :]  # every row segment of the photograph
    for split, rows in (("train", range(0, 320 - SIZE + 1)), ("test", range(352, 512 - SIZE + 1))):
        for index in (0, 5, 11):
            crop = np.asarray(Image.open(textures / category / split / "good" / f"{index:03d}.png"))
            ys, xs = np.nonzero((windows == crop[0]).all(axis=2))
            found = [(y, x) for y, x in zip(ys, xs) if np.array_equal(photo[y : y + SIZE, x : x + SIZE], crop)]
            assert len(found) >= 1 and all(y in rows for y, _ in found), (split, index, found)


def test_coin_is_centred_in_every_image(textures):
    # The coin is bright on a dark ground: its filled silhouette's centre sits mid-image,
    # within the +-2 source-pixel jitter (4.3 px here) and the coin's own asymmetry.
    for index in range(0, 80, 9):
        image = np.asarray(Image.open(textures / "coin" / "train" / "good" / f"{index:03d}.png")).astype(float)
        ys, xs = np.nonzero(ndi.binary_fill_holes(image > 80))
        assert abs(xs.mean() - SIZE / 2) < 7 and abs(ys.mean() - SIZE / 2) < 7
        assert 0.5 < len(xs) / SIZE**2 < 0.85  # one coin filling most of the frame
        assert image[:4, :4].mean() < 90  # corners are background, not a neighbouring coin


def test_loads_through_the_mvtec_loader_and_checks_clean(textures, capsys):
    test = folder_dataset("mvtec", textures, "coin", "test", image_size=64, mask_size=64)
    assert len(test) == 20 + PER_DEFECT * len(DEFECTS) and test.labels.count(0) == 20
    for item in test:
        assert (item["mask"].sum() > 0) == bool(item["label"])
        assert torch.equal(item["image"][0], item["image"][1])  # grayscale repeated
    cup = folder_dataset("mvtec", textures, "cup", "test", image_size=64, mask_size=64)
    assert not torch.equal(cup[0]["image"][0], cup[0]["image"][2])  # colour kept
    assert all(not r.problems and not r.warnings for r in check_folder("mvtec", textures))
    assert main(["data", "check", "--dataset", "mvtec", "--root", str(textures)]) == 0
    n = len(TEXTURE_CATEGORIES)
    assert capsys.readouterr().out.splitlines()[-1] == f"{n} categories, {n * 140} images: no problems"


def test_cli_writes_and_rewrites_its_own_folders(tmp_path, capsys):
    assert main(["data", "textures", str(tmp_path / "t"), "--seed", "3"]) == 0
    assert main(["data", "textures", str(tmp_path / "t"), "--seed", "3"]) == 0  # replaces its own output
    names = sorted(p.name for p in (tmp_path / "t").iterdir())
    assert names == sorted([*TEXTURE_CATEGORIES, ".srlib-textures.lock"])  # no staging left behind
    assert "seed 3" in (tmp_path / "t" / "brick" / "readme.txt").read_text()


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path, capsys):
    (tmp_path / "coin" / "mine").mkdir(parents=True)
    before = snapshot(tmp_path)
    with pytest.raises(SrlibError, match=r"coin exists and was not written by srlib data textures"):
        make_textures(tmp_path)
    assert main(["data", "textures", str(tmp_path)]) == 2
    assert "srlib: error: " in capsys.readouterr().err
    assert snapshot(tmp_path) == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(SrlibError, match=r"file is a file; pass a folder"):
        make_textures(tmp_path / "file")
