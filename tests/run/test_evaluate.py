"""Evaluation against closed forms: a score model whose restoration error is known exactly."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch.utils.data import Subset

from srlib.data import folder_dataset
from srlib.method.sde import VESDE
from srlib.run.checkpoint import describe_checkpoint
from srlib.run.config import EvalConfig
from srlib.run.evaluate import evaluate_checkpoint, evaluate_model
from srlib.results.tables import read_result
from srlib.method.unet import ScoreUNet


class PointMassScore(torch.nn.Module):
    """The exact score of a point mass at ``centre`` perturbed at time k: -(x - centre) / sigma_k^2.

    Its restoration error r = s * sigma_k^2 + n = centre - x does not depend on the
    noise, so the raw map is the channel mean of (x - centre)^2, whatever the draws.
    """

    def __init__(self, centre: float):
        super().__init__()
        self.centre = torch.nn.Parameter(torch.tensor(centre), requires_grad=False)
        self.sde = VESDE(25.0)

    def forward(self, x, k):
        sigma_k = torch.sqrt((25.0 ** (2 * k) - 1) / (2 * math.log(25.0)))  # typed in from the paper
        return -(x - self.centre) / sigma_k[:, None, None, None] ** 2


def expected_maps(images: torch.Tensor, centre: float) -> torch.Tensor:
    raw = (images.double() - centre).pow(2).mean(dim=1, keepdim=True)
    resized = F.interpolate(raw, size=(256, 256), mode="bilinear", align_corners=False)
    # 31x31 window sums from a summed-area table; the zero padding counts in the mean.
    table = F.pad(F.pad(resized, (15, 15, 15, 15)).cumsum(-1).cumsum(-2), (1, 0, 1, 0))
    sums = table[..., 31:, 31:] - table[..., :-31, 31:] - table[..., 31:, :-31] + table[..., :-31, :-31]
    return sums / 31**2


def test_maps_scores_and_metrics_match_the_closed_form(textures_root):
    # Every fourth test image (good and defective ones) keeps the pixel count, and the time, small.
    test = Subset(folder_dataset("mvtec", textures_root, "brick", "test", image_size=32), range(0, 60, 4))
    result = evaluate_model(PointMassScore(-0.2), test, EvalConfig(batch_size=4), progress=False)  # batches cut across classes
    images = torch.stack([test[i]["image"] for i in range(len(test))])
    masks = torch.stack([test[i]["mask"] for i in range(len(test))])
    labels = torch.tensor([test[i]["label"] for i in range(len(test))])
    maps = expected_maps(images, -0.2)
    assert torch.allclose(result.maps.double(), maps, rtol=1e-4, atol=1e-7)
    assert torch.equal(result.masks, masks) and torch.equal(result.labels, labels)
    assert 0 < labels.sum() < len(labels)
    scores = maps.flatten(1).amax(1)
    assert torch.allclose(result.scores.double(), scores, rtol=1e-4)
    # On the scores just checked: float32 and float64 may order a near-tie differently.
    assert result.image_auroc == pytest.approx(roc_auc_score(labels.numpy(), result.scores.numpy()), abs=1e-12)
    assert result.pixel_auroc == pytest.approx(roc_auc_score(masks.flatten().numpy() > 0.5, maps.flatten().numpy()), abs=1e-4)
    assert 0 <= result.aupro <= 1 and result.seconds > 0


@pytest.mark.slow
def test_the_authors_plain_state_dict_is_evaluated_at_192(textures_root, tmp_path):
    torch.manual_seed(0)
    torch.save(ScoreUNet(width=8).state_dict(), tmp_path / "authors.pth")
    assert describe_checkpoint(tmp_path / "authors.pth") == ("plain state dict (the authors' format)", None)
    record = evaluate_checkpoint(tmp_path / "authors.pth", "mvtec", textures_root, "coin", tmp_path / "eval",
                                 EvalConfig(n_draws=1), device="cpu", n_overlays=2, progress=False)
    assert (record["image_size"], record["width"], record["n_draws"], record["sigma"]) == (192, 8, 1, 25.0)
    assert EvalConfig.from_result(record) == EvalConfig(n_draws=1, image_size=192)
    assert record["config"] == {"checkpoint": str(tmp_path / "authors.pth"), "image_size": 192, "width": 8}
    assert (record["dataset"], record["layout"]) == ("textures", "mvtec")
    assert read_result(tmp_path / "eval" / "result.json").note() == "checkpoint authors.pth; N 1 (paper 3); width 8 (paper 64)"
    assert json.loads((tmp_path / "eval" / "result.json").read_text()) == record
    assert len(list((tmp_path / "eval" / "overlays").iterdir())) == 2
