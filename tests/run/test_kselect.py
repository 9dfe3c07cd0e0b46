"""Choosing k from normal images: the criteria's arithmetic, a case whose answer is known, no test image read."""

import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from srlib.data import good_training_images
from srlib.errors import SrlibError
from srlib.method import kselect
from srlib.method.sde import VESDE
from srlib.run.config import EvalConfig
from srlib.run.kselect import compare_with_test, select_k, select_k_for_checkpoint
from srlib.run.sweeps import K_GRID

SIZE = 32
K_STAR = 3e-4  # the only k at which the hand-made model below sees anything


def subspace_basis(size: int = SIZE) -> torch.Tensor:
    """Orthonormal columns spanning the normal images: a constant and two cosines of period 8, in every channel."""
    y, x = np.mgrid[:size, :size]
    planes = [np.ones((size, size)), np.cos(2 * np.pi * x / 8), np.cos(2 * np.pi * y / 8)]
    columns = np.stack([np.broadcast_to(p, (3, size, size)).ravel() for p in planes], 1)
    return torch.from_numpy(np.linalg.qr(columns)[0]).float()


class SubspaceAtOneK(torch.nn.Module):
    """At k = K_STAR the exact score of a Gaussian concentrated on the normal images' subspace,
    -(x - P x) / sigma_k^2, so the restoration error is (P n - (x - P x))^2: the projected noise on
    normal pixels, plus the part of x off the subspace. At every other k the score is 0 and the
    error is the noise alone, n^2, the same for normal and pseudo-anomalous images."""

    def __init__(self):
        super().__init__()
        self.basis = torch.nn.Parameter(subspace_basis(), requires_grad=False)
        self.sde = VESDE(25.0)

    def forward(self, x, k):
        flat = x.flatten(1)
        off = (flat - flat @ self.basis @ self.basis.T).reshape(x.shape)
        sigma2 = (25.0 ** (2 * k) - 1) / (2 * math.log(25.0))
        on = torch.isclose(k, torch.tensor(K_STAR, dtype=k.dtype), rtol=1e-4)
        return torch.where(on[:, None, None, None], -off / sigma2[:, None, None, None], torch.zeros_like(x))


def write_normal_images(folder, count: int, seed: int = 0):
    """Grey-level combinations of the subspace's planes, as PNGs (the same in every channel)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SIZE, :SIZE]
    for i in range(count):
        a, b, c = rng.uniform(-0.2, 0.2), rng.uniform(0.25, 0.4), rng.uniform(0.25, 0.4)
        image = a + b * np.cos(2 * np.pi * x / 8) + c * np.cos(2 * np.pi * y / 8)
        Image.fromarray(np.round((image + 1) * 127.5).astype(np.uint8)).convert("RGB").save(folder / f"{i:03d}.png")


@pytest.fixture
def category(tmp_path):
    """A category of 24 good training images and a test split (which k selection must never need)."""
    write_normal_images(tmp_path / "plane" / "train" / "good", 24)
    write_normal_images(tmp_path / "plane" / "test" / "good", 2, seed=1)
    return tmp_path


def test_holdout_is_seeded_and_refuses_too_few_images():
    first = kselect.holdout_indices(80, seed=3)
    assert first == kselect.holdout_indices(80, seed=3) and len(first) == 16 == len(set(first))
    assert first != kselect.holdout_indices(80, seed=4)
    assert kselect.holdout_indices(8) and len(kselect.holdout_indices(8)) == kselect.MIN_HOLDOUT
    with pytest.raises(SrlibError, match=r"has 7 training image\(s\).*needs at least 8.*--k 1e-3") as err:
        kselect.holdout_indices(7)
    assert "\n" not in str(err.value)


def test_pseudo_anomalies_change_exactly_their_masks():
    rng = np.random.default_rng(0)
    images = np.clip(rng.normal(0, 0.4, (8, 3, 48, 48)), -1, 1).astype(np.float32)
    pseudo, masks, kinds = kselect.pseudo_anomalies(images, seed=5)
    assert kinds == list(kselect.PSEUDO_KINDS) * 2
    change = np.abs(pseudo - images).max(axis=1)
    for i in range(8):
        assert masks[i].any()
        assert (change[i][~masks[i]] == 0).all()  # untouched outside
        assert (change[i][masks[i]] >= kselect.MIN_CHANGE).all()  # every masked pixel moved
    assert pseudo.min() >= -1 and pseudo.max() <= 1
    again = kselect.pseudo_anomalies(images, seed=5)
    assert np.array_equal(again[0], pseudo) and np.array_equal(again[1], masks)
    assert not np.array_equal(kselect.pseudo_anomalies(images, seed=6)[1], masks)


def moon_tiles(folder, tile: int = 128) -> list[str]:
    """A real photograph with flat regions (scikit-image's moon, 512 px) cut into a 4 x 4 grid of tiles, as PNGs."""
    from skimage import data

    moon = data.moon()
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(16):
        y, x = divmod(i, 4)
        names.append(f"{i:03d}.png")
        Image.fromarray(moon[tile * y:tile * (y + 1), tile * x:tile * (x + 1)]).save(folder / names[-1])
    return names


def test_pseudo_anomalies_on_a_real_photograph_with_flat_regions(tmp_path):
    moon_tiles(tmp_path / "moon" / "train" / "good")
    images = good_training_images("mvtec", tmp_path, "moon", image_size=SIZE).images.float().div(255).mul(2).sub(1)
    images = images.numpy()
    images[1] = 0.2  # and a constant crop where a blur is planned
    pseudo, masks, kinds = kselect.pseudo_anomalies(images, seed=0)  # the planned blur of image 1 changes nothing
    planned = [kselect.PSEUDO_KINDS[i % 4] for i in range(16)]
    assert kinds[1] == "intensity"  # the next kind that can change a constant image
    assert sum(made != plan for made, plan in zip(kinds, planned)) <= 4  # the plan kept where it can be made
    change = np.abs(pseudo - images).max(axis=1)
    for i in range(16):
        assert masks[i].sum() >= 0.25 * np.pi * (SIZE / 16) ** 2 * 0.9  # a quarter of the smallest ellipse
        assert (change[i][~masks[i]] == 0).all() and (change[i][masks[i]] >= kselect.MIN_CHANGE).all()
    again = kselect.pseudo_anomalies(images, seed=0)
    assert again[2] == kinds and np.array_equal(again[0], pseudo)
    flat = np.full((4, 3, SIZE, SIZE), 0.2, np.float32)  # nothing but blur and cut-paste on constant images
    with pytest.raises(SrlibError, match="no pseudo anomaly of kind blur, cutpaste changes image 0.*'intensity'"):
        kselect.pseudo_anomalies(flat, kinds=("blur", "cutpaste"))


class NoScore(torch.nn.Module):
    """A score model that has learned nothing (score 0): its maps are the noise alone."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # where the run layer finds the device
        self.sde = VESDE(25.0)

    def forward(self, x, k):
        return torch.zeros_like(x)


def test_k_auto_chooses_on_a_real_photograph_with_flat_regions(tmp_path):
    names = moon_tiles(tmp_path / "moon" / "train" / "good")
    choice = select_k_for_checkpoint(NoScore(), "mvtec", tmp_path, "moon", EvalConfig(image_size=SIZE, n_draws=1, kernel=3),
                                     mask_size=SIZE, ks=(1e-3, 1e-2))
    assert choice.k in (1e-3, 1e-2) and set(choice.images) <= set(names) and len(choice.images) == 4
    recorded = choice.to_dict()["pseudo_kinds"]
    assert recorded == choice.kinds and "blur" not in recorded  # the tile planned for a blur is flat: made otherwise


def test_separation_and_uniformity_against_direct_computations():
    rng = np.random.default_rng(1)
    normal, pseudo = rng.random((5, 6, 6)), rng.random((4, 6, 6))
    masks = rng.random((4, 6, 6)) < 0.3
    got = kselect.pseudo_separation(normal, pseudo, masks)
    labels = [0] * 5 + [1] * 4
    scores = [m.max() for m in normal] + [m.max() for m in pseudo]
    assert got["image_auroc"] == pytest.approx(roc_auc_score(labels, scores))
    pixels = np.r_[np.zeros(normal.size, bool), masks.ravel()]
    assert got["pixel_auroc"] == pytest.approx(roc_auc_score(pixels, np.r_[normal.ravel(), pseudo.ravel()]))
    assert got["pseudo"] == pytest.approx((got["image_auroc"] + got["pixel_auroc"]) / 2)
    strided = kselect.pseudo_separation(normal, pseudo, masks, pixel_stride=2)  # pixels of even rows and columns
    pixels = np.r_[np.zeros(normal[:, ::2, ::2].size, bool), masks[:, ::2, ::2].ravel()]
    scores = np.r_[normal[:, ::2, ::2].ravel(), pseudo[:, ::2, ::2].ravel()]
    assert strided["pixel_auroc"] == pytest.approx(roc_auc_score(pixels, scores))
    assert strided["image_auroc"] == got["image_auroc"]  # maxima of the whole maps
    # Half the pixels a, half b: std / mean = |a - b| / (a + b); a constant map: 0.
    two = np.where(np.arange(16).reshape(4, 4) < 8, 1.0, 3.0)
    assert kselect.spatial_nonuniformity([two, np.full((4, 4), 2.0)]) == pytest.approx((0.5 + 0.0) / 2)


def test_ties_go_to_the_paper_k():
    flat = {k: {"pseudo": 1.0, "uniformity": 0.0} for k in K_GRID}
    assert kselect.choose(flat, "pseudo") == 1e-3
    assert kselect.choose({1e-4: {"pseudo": 1.0}, 1e-2: {"pseudo": 1.0}}, "pseudo") == 1e-4
    with pytest.raises(SrlibError, match="unknown k criterion 'best'"):
        kselect.choose(flat, "best")


def test_the_one_k_that_separates_the_pseudo_anomalies_is_chosen(category):
    train = good_training_images("mvtec", category, "plane", image_size=SIZE)
    options = dict(config=EvalConfig(seed=2, n_draws=2, kernel=3), mask_size=SIZE, holdout=0.5)
    choice = select_k(SubspaceAtOneK(), train, **options)
    assert choice.k == K_STAR and choice.criterion == "pseudo"
    at_star = choice.candidates[K_STAR]
    assert at_star["image_auroc"] == 1.0 and at_star["pixel_auroc"] > 0.95
    assert all(c["pseudo"] < at_star["pseudo"] - 0.2 for k, c in choice.candidates.items() if k != K_STAR)
    assert sorted(choice.candidates) == sorted(K_GRID) and len(choice.images) == 12
    # The held-out DSM loss: at K_STAR the model leaves the noise's 3 in-subspace dimensions of 3072 and the
    # PNGs' 8-bit rounding off the subspace (about (1/255)^2 / 3 / sigma_k^2 = 0.017 a dimension); elsewhere
    # it removes nothing (1 per dimension), hundreds of times worse than the Gaussian of the other images
    # (whose images lie on the same planes: it is nearly as good as the model at K_STAR, and the only reference).
    assert at_star["dsm_loss"] < 0.03
    assert all(c["dsm_loss"] == pytest.approx(1, abs=0.03) for k, c in choice.candidates.items() if k != K_STAR)
    assert all(c["dsm_ratio"] > 20 * at_star["dsm_ratio"] for k, c in choice.candidates.items() if k != K_STAR)
    assert choice.chosen_by("dsm") == K_STAR
    assert choice.to_dict()["chosen_by"]["dsm"] == K_STAR
    again = select_k(SubspaceAtOneK(), train, **options)
    assert again.to_dict() == choice.to_dict()  # the same seed: the same images, anomalies, draws and k


def test_compare_with_test_scores_each_seeds_choice_on_the_sweep(category):
    train = good_training_images("mvtec", category, "plane", image_size=SIZE)
    grid = (1e-4, K_STAR, 1e-3)
    sweep = {k: {"image_auroc": auroc, "pixel_auroc": 0.9, "aupro": 0.5} for k, auroc in zip(grid, (0.6, 0.9, 0.7))}
    comparison = compare_with_test(SubspaceAtOneK(), train, sweep, EvalConfig(n_draws=2, kernel=3), seeds=(2, 3),
                                   mask_size=SIZE, holdout=0.5)
    assert [choice.seed for choice in comparison["choices"]] == [2, 3]
    assert all(sorted(choice.candidates) == list(grid) for choice in comparison["choices"])  # the sweep's grid
    fixed, pseudo, *_, oracle = comparison["rows"]
    assert (fixed["ks"], fixed["image_auroc"]) == ([1e-3], 0.7) and oracle["image_auroc"] == 0.9
    assert pseudo["ks"] == [K_STAR, K_STAR] and pseudo["image_auroc_share"] == 1.0
    with pytest.raises(SrlibError, match="no k = 0.01 to compare with"):
        compare_with_test(SubspaceAtOneK(), train, sweep, fixed_k=1e-2)


def test_selection_reads_no_test_image(category):
    shutil.rmtree(category / "plane" / "test")
    choice = select_k_for_checkpoint(SubspaceAtOneK(), "mvtec", category, "plane",
                                     EvalConfig(image_size=SIZE, n_draws=1, kernel=3), mask_size=SIZE, holdout=0.5)
    assert choice.k == K_STAR
    assert set(choice.images) <= {f"{i:03d}.png" for i in range(24)}


def test_too_few_training_images_is_one_line(tmp_path):
    write_normal_images(tmp_path / "few" / "train" / "good", 5)
    with pytest.raises(SrlibError, match=r"category 'few'.*has 5 training image\(s\)") as err:
        select_k_for_checkpoint(SubspaceAtOneK(), "mvtec", tmp_path, "few", EvalConfig(image_size=SIZE))
    assert "\n" not in str(err.value)


def plain_checkpoint(folder):
    """An untrained width-8 U-Net saved as the authors save theirs (evaluated at --image-size)."""
    from srlib.method.unet import ScoreUNet

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(ScoreUNet(width=8).state_dict(), folder / "spr_coin_ema.pth")
    return folder / "spr_coin_ema.pth"


@pytest.mark.slow
def test_evaluate_k_auto_records_its_choice_and_equals_the_fixed_k(textures_root, tmp_path, capsys):
    import json

    from srlib.cli import main

    checkpoint = plain_checkpoint(tmp_path / "ckpt")
    common = ["evaluate", "--checkpoint", str(checkpoint), "--dataset", "mvtec", "--root", str(textures_root),
              "--category", "coin", "--image-size", "32", "--n-draws", "1", "--overlays", "0", "--device", "cpu",
              "--no-progress", "--seed", "3"]
    assert main([*common, "--k", "auto", "--out", str(tmp_path / "auto")]) == 0
    record = json.loads((tmp_path / "auto" / "result.json").read_text())
    chosen = record["k_selection"]
    assert "chosen by the pseudo criterion on 16 held-out training images" in capsys.readouterr().out
    assert record["k"] == chosen["k"] == kselect.choose({c["k"]: c for c in chosen["candidates"]}, "pseudo")
    assert chosen["chosen_by"]["dsm"] == kselect.choose({c["k"]: c for c in chosen["candidates"]}, "dsm")
    assert [c["k"] for c in chosen["candidates"]] == sorted(K_GRID) and chosen["seed"] == 3
    assert set(chosen["images"]) <= {p.name for p in (textures_root / "coin" / "train" / "good").iterdir()}
    assert len(chosen["images"]) == len(chosen["pseudo_kinds"]) == 16 and chosen["split"] == "train"
    # The evaluation itself is the fixed-k one at the chosen k.
    assert main([*common, "--k", repr(chosen["k"]), "--out", str(tmp_path / "fixed")]) == 0
    fixed = json.loads((tmp_path / "fixed" / "result.json").read_text())
    assert "k_selection" not in fixed
    assert [fixed[m] for m in ("image_auroc", "pixel_auroc", "aupro")] == [
        record[m] for m in ("image_auroc", "pixel_auroc", "aupro")]


@pytest.mark.slow
def test_evaluate_k_auto_on_a_real_photograph_with_flat_regions(tmp_path, capsys):
    """As a user would: tiles of a photograph as good images, two painted defects, srlib evaluate --k auto."""
    import json

    from srlib.cli import main

    root = tmp_path / "photos"
    moon_tiles(root / "moon" / "train" / "good")
    test, truth = root / "moon" / "test", root / "moon" / "ground_truth" / "spot"
    for folder in (test / "good", test / "spot", truth):
        folder.mkdir(parents=True)
    for i, name in enumerate(("000.png", "005.png")):
        shutil.copy(root / "moon" / "train" / "good" / name, test / "good" / name)
        image = np.asarray(Image.open(root / "moon" / "train" / "good" / name)).copy()
        mask = np.zeros_like(image)
        mask[40:70, 50:90] = 255
        image[mask > 0] = 255
        Image.fromarray(image).save(test / "spot" / f"{i:03d}.png")
        Image.fromarray(mask).save(truth / f"{i:03d}_mask.png")
    checkpoint = plain_checkpoint(tmp_path / "ckpt")
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--dataset", "mvtec", "--root", str(root),
                 "--category", "moon", "--image-size", "32", "--n-draws", "1", "--overlays", "0", "--device", "cpu",
                 "--no-progress", "--k", "auto", "--out", str(tmp_path / "auto")]) == 0
    chosen = json.loads((tmp_path / "auto" / "result.json").read_text())["k_selection"]
    assert "chosen by the" in capsys.readouterr().out
    assert len(chosen["pseudo_kinds"]) == len(chosen["images"]) == 4 and "blur" not in chosen["pseudo_kinds"]


def test_a_bad_k_is_one_line(capsys):
    from srlib.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--checkpoint", "x", "--dataset", "mvtec", "--root", "r", "--category", "c", "--out", "o",
              "--k", "best"])
    assert "'best' is not a time in (0, 1] (e.g. 1e-3) nor auto" in capsys.readouterr().err


def test_comparison_rows_by_hand():
    sweep = {1e-4: {"image_auroc": 0.9, "pixel_auroc": 0.8, "aupro": 0.5},
             1e-3: {"image_auroc": 0.8, "pixel_auroc": 0.9, "aupro": 0.6},
             1e-2: {"image_auroc": 1.0, "pixel_auroc": 0.7, "aupro": 0.7}}
    fixed, pseudo, oracle = kselect.comparison_rows(sweep, {"pseudo": [1e-4, 1e-2]})
    assert (fixed["ks"], fixed["image_auroc"]) == ([1e-3], 0.8)
    assert pseudo["image_auroc"] == pytest.approx(0.95) and pseudo["aupro"] == pytest.approx(0.6)
    assert pseudo["image_auroc_share"] == pytest.approx(0.15 / 0.2)  # (0.95 - 0.8) / (1.0 - 0.8)
    assert pseudo["pixel_auroc_share"] is None  # the fixed k is the best already: nothing to recover
    assert pseudo["aupro_share"] == pytest.approx(0.0)
    assert (oracle["ks"], oracle["image_auroc"], oracle["pixel_auroc"], oracle["aupro"]) == ([1e-2], 1.0, 0.9, 0.7)
    assert kselect.oracle_share(0.8, 0.7, 0.9) == pytest.approx(-1.0)
    # Chapter 7's coin: the same AUROC at two k, different in the last bit; no share of a gain of 1e-16.
    assert 0.9012500000000001 - 0.90125 > 0
    assert kselect.oracle_share(0.90125, 0.89875, 0.9012500000000001) is None


def test_the_default_criterion_is_what_the_validation_rule_picks():
    """DEFAULT_CRITERION is the committed validation measurement's choice (its test-split rows never enter)."""
    from pathlib import Path

    from srlib.results.kchoice import choose, means, read_rows
    from srlib.run.kselect import DEFAULT_CRITERION

    rows = read_rows(Path(__file__).parents[2] / "notebooks" / "weights" / "k_choice.csv")
    validation = [r for r in rows if r["split"] == "validation"]
    assert {r["category"] for r in validation} == {"brick", "grass", "tissue", "coin", "cup"}
    assert {r["seed"] for r in validation} == {0, 1}
    assert choose(rows) == choose(validation) == DEFAULT_CRITERION
    # By hand: each criterion's mean over the (category, seed) runs of the image AUROC at the k it chose.
    by_hand = {c: np.mean([r["image_auroc"] for r in validation if r["method"] == c]) for c in kselect.CRITERIA}
    assert max(by_hand, key=by_hand.get) == DEFAULT_CRITERION
    assert means(rows, "validation")[DEFAULT_CRITERION]["image_auroc"] == pytest.approx(by_hand[DEFAULT_CRITERION])
