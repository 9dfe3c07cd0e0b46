"""Evaluation in bf16: the network's passes in bfloat16, the error and the maps in fp32, close to the fp32 maps."""

import pytest
import torch
from torch.utils.data import Subset

import srlib.run.device
from srlib.cli.evaluate import eval_config_from
from srlib.cli import build_parser
from srlib.data import folder_dataset
from srlib.errors import SrlibError
from srlib.method.unet import ScoreUNet
from srlib.run.config import EvalConfig
from srlib.run.device import cpu_has_bf16
from srlib.run.evaluate import evaluate_model


@pytest.fixture(scope="module")
def model_and_test(textures_root):
    torch.manual_seed(0)
    test = Subset(folder_dataset("mvtec", textures_root, "coin", "test", image_size=32), range(0, 60, 6))
    return ScoreUNet(width=8).eval(), test


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bfloat16 instructions (srlib refuses bf16 there)")
def test_bf16_maps_differ_from_fp32_by_bfloat16_rounding_only(model_and_test):
    model, test = model_and_test
    fp32 = evaluate_model(model, test, EvalConfig(), progress=False)
    bf16 = evaluate_model(model, test, EvalConfig(precision="bf16"), progress=False)
    assert bf16.maps.dtype == torch.float32
    relative = ((bf16.maps - fp32.maps).abs().max() / fp32.maps.abs().max()).item()
    # bfloat16 keeps 8 significant bits (relative rounding 2**-9 = 2e-3 per operation): the maps
    # move by more than fp32 rounding (1e-6) and by a few bfloat16 roundings at most.
    assert 1e-5 < relative < 5e-2
    again = evaluate_model(model, test, EvalConfig(), progress=False)  # autocast did not leak into later fp32 runs
    assert torch.equal(again.maps, fp32.maps)


def test_bf16_is_refused_on_a_cpu_that_would_emulate_it(model_and_test, monkeypatch):
    monkeypatch.setattr(srlib.run.device, "cpu_has_bf16", lambda: False)
    model, test = model_and_test
    with pytest.raises(SrlibError, match="needs a GPU or a CPU with bfloat16 instructions"):
        evaluate_model(model, test, EvalConfig(precision="bf16"), progress=False)


@pytest.mark.parametrize("command", [
    ["evaluate", "--checkpoint", "m.pt", "--dataset", "mvtec", "--root", "r", "--category", "c", "--out", "o"],
    ["predict", "--checkpoint", "m.pt", "--images", "i", "--out", "o"],
    ["reproduce", "--dataset", "mvtec", "--root", "r", "--out", "o"],
])
def test_precision_reaches_the_eval_config_of_every_command(command):
    parser = build_parser()
    assert eval_config_from(parser.parse_args(command)) == EvalConfig()  # the paper's, fp32, by default
    config = eval_config_from(parser.parse_args(command + ["--precision", "bf16", "--k", "0.01"]))
    assert (config.precision, config.k) == ("bf16", 0.01)
