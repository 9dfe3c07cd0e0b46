"""Chapter 4's comparison helpers: per-defect AUROC by hand, the projector's run on the bundled data."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from srlib.data.defects import DEFECTS
from srlib.run.comparison import per_defect_auroc, projector_results


def test_per_defect_auroc_sets_the_good_images_against_each_defect_alone():
    scores = torch.tensor([0.1, 0.2, 0.3, 0.15, 0.05])
    labels = torch.tensor([0, 0, 1, 1, 1])
    found = ["good", "good", "hole", "stain", "stain"]
    # hole 0.3 beats both goods: 1. stain 0.15 beats 0.1 only, 0.05 neither: (1 + 0) / 4 pairs.
    assert per_defect_auroc(scores, labels, found, ["hole", "stain"]) == pytest.approx({"hole": 1.0, "stain": 0.25})


def test_projector_results_scores_every_test_image_and_agrees_with_its_own_scores(textures_root):
    found = projector_results(textures_root, "brick", 64, patch=3, train_stride=8, query_stride=4)
    scores = np.array(found["scores"])
    assert scores.shape == (60,) and np.isfinite(scores).all()
    labels = np.array([0] * 20 + [1] * 40)
    assert found["metrics"]["image_auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    assert list(found["per_defect"]) == list(DEFECTS)
    assert tuple(found["examples"].shape) == (len(DEFECTS), 1, 256, 256)
    assert found["seconds"] > 0
