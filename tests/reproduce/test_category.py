"""One category's steps as chapter 5 takes them (srlib.reproduce.category), on a tiny category and an untrained
model: the result files are the sweep's evaluations, equal to what srlib evaluate writes."""

import json

import pytest
import torch

from srlib.data import folder_dataset
from srlib.errors import SrlibError
from srlib.method.unet import ScoreUNet
from srlib.reproduce.category import (chapter_data, n_ablation, plan_runs, sweep_category,
                                      write_category_result)
from srlib.run.checkpoint import load_score_model
from srlib.run.config import EvalConfig
from srlib.run.device import memory_format
from srlib.run.evaluate import evaluate_checkpoint, evaluate_model
from srlib.run.files import RESULT, n_draws_folder
from tiny_datasets import write_category

SIZE = 32
SAME = ("image_auroc", "pixel_auroc", "aupro", "k", "n_draws", "seed", "image_size", "checkpoint", "dataset",
        "category", "root", "images", "defective_images", "config")


@pytest.fixture
def setup(tmp_path):
    root = tmp_path / "data"
    write_category(root, "widget", size=(SIZE, SIZE), n_train=2, n_test_good=2, n_defect=2)
    torch.manual_seed(0)
    torch.save(ScoreUNet(width=8).state_dict(), tmp_path / "spr.pth")  # the authors' plain format
    return root, tmp_path / "spr.pth", EvalConfig(k=1e-3, n_draws=3, seed=0, image_size=SIZE, kernel=3)


def test_the_result_files_are_the_sweeps_evaluations_as_srlib_evaluate_writes_them(setup, tmp_path):
    root, checkpoint, evaluation = setup
    root, categories = chapter_data(root, f"{root / 'widget'}/", tmp_path / "out")  # a path names its folder
    assert categories == ["widget"]
    run = plan_runs("mvtec", root, categories, tmp_path / "out", evaluation, checkpoint=str(checkpoint))["widget"]
    # Not a category of MVTec AD: filed under the data folder's name, as srlib evaluate records it.
    assert (run.run_dir, run.size, run.weights) == (tmp_path / "out" / "data" / "widget", SIZE, checkpoint)
    # Loaded as chapter 5 and srlib evaluate load it: the memory format changes how convolutions round.
    model = load_score_model(run.weights).to("cpu", memory_format=memory_format(torch.device("cpu"), None))
    test = folder_dataset("mvtec", root, "widget", "test", image_size=SIZE)
    sweep, rows, _ = sweep_category(run, model, test, 1e-3, k_grid=(1e-4, 1e-2))
    assert sorted(sweep) == [1e-4, 1e-3, 1e-2] and (run.k, run.choice) == (1e-3, None)
    assert (run.run_dir / "k_sweep.csv").is_file() and (run.run_dir / "gallery.npz").is_file()

    written = write_category_result(run, sweep[1e-3], model, test, "cpu", n_overlays=0)
    evaluated = evaluate_checkpoint(checkpoint, "mvtec", root, "widget", tmp_path / "evaluated", evaluation,
                                    device="cpu", n_overlays=0)
    assert {key: written[key] for key in SAME} == {key: evaluated[key] for key in SAME}
    assert json.loads((run.run_dir / RESULT).read_text())["image_auroc"] == written["image_auroc"]

    by_n = n_ablation(run, model, test, sweep[1e-3], seeds=[0, 1], device="cpu")
    assert by_n[3]["aupro"][0] == sweep[1e-3].aupro  # N = 3 with the chapter's seed: the sweep's, as it is
    for n in (1, 5):  # the other N with the chapter's seed: written as result files, as srlib evaluate would
        again = evaluate_model(model, test, evaluation.replace(n_draws=n)).metrics()
        saved = json.loads((run.run_dir / n_draws_folder(n) / RESULT).read_text())
        assert [saved[m] for m in again] == [again[m] for m in again] == [by_n[n][m][0] for m in again]
    assert not (run.run_dir / n_draws_folder(3)).exists()
    seed_one = evaluate_model(model, test, evaluation.replace(n_draws=5, seed=1)).metrics()
    assert by_n[5]["pixel_auroc"][1] == seed_one["pixel_auroc"]


def test_a_run_folder_inside_the_dataset_is_refused(setup):
    root, checkpoint, evaluation = setup
    with pytest.raises(SrlibError, match="never writes into a dataset"):
        plan_runs("mvtec", root, ["widget"], root / "results", evaluation, checkpoint=str(checkpoint))
    with pytest.raises(SrlibError, match="name the category"):
        chapter_data(root, "", root.parent / "out")
