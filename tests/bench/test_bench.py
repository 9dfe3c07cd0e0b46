"""A tiny run of the benchmark: its JSON, equal maps, FLOPs counted against the layer shapes; no timing."""

import json

import pytest
import torch

from srlib.bench.command import main, mvtec_schedule_hours
from srlib.bench.sides import plain_anomaly_map, plain_forward, plain_restoration_error
from srlib.data.layouts import LAYOUTS, MVTEC_TRAIN_IMAGES
from srlib.method.unet import ScoreUNet

SIZE, WIDTH, BATCH = 24, 8, 2


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    argv = ["--sizes", str(SIZE), "--width", str(WIDTH), "--batch", str(BATCH), "--repeats", "1",
            "--threads", "1", "--matmul-size", "64", "--draws-per-pass", "--json", str(path)]
    assert main(argv) == 0
    return json.loads(path.read_text())


def forward_flops(width, size, images):
    """Multiply-adds x 2 of every convolution and linear layer, from the shapes they produce."""
    model, flops = ScoreUNet(width=width), []

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            flops.append(2 * module.in_channels * kh * kw * output.numel())
        elif isinstance(module, torch.nn.Linear):
            flops.append(2 * module.in_features * output.numel())

    for module in model.modules():
        module.register_forward_hook(count)
    with torch.no_grad():
        model(torch.zeros(images, 3, size, size), torch.full((images,), 1e-3))
    return sum(flops)


def test_the_json_has_every_figure(results, capsys):
    (size,) = results["sizes"]
    assert size["size"] == SIZE and results["settings"]["width"] == WIDTH
    for part in ("evaluation", "training"):
        figures = size[part]
        for key in ("plain_images_per_s", "srlib_images_per_s", "speedup", "srlib_gflops", "srlib_fraction_of_matmul"):
            assert figures[key] > 0, (part, key)
        assert figures["speedup"] == pytest.approx(figures["srlib_images_per_s"] / figures["plain_images_per_s"])
        assert set(figures["peak_memory_mib"]) == {"plain", "srlib"}
        assert len(figures["seconds"]["plain"]) == len(figures["seconds"]["srlib"]) == 1
    assert size["matmul"]["gflops"] > 0 and set(size["draws_per_pass"]) == {"1", "2", "3"}
    assert "mvtec_schedule_hours" not in size["training"]  # only for the paper's network at 192 px


def test_srlib_maps_equal_the_plain_baseline(results):
    evaluation = results["sizes"][0]["evaluation"]
    assert 0 <= evaluation["max_map_difference"] <= 1e-5
    assert results["sizes"][0]["training"]["first_loss_difference"] <= 1e-5


def test_flops_are_counted_not_assumed(results):
    # Evaluation: 3 draws of a forward pass per image; training: forward and backward (twice the forward's).
    forward = forward_flops(WIDTH, SIZE, 1)
    assert results["sizes"][0]["evaluation"]["gflop_per_image"] * 1e9 == pytest.approx(3 * forward, rel=1e-9)
    assert results["sizes"][0]["training"]["gflop_per_image"] * 1e9 == pytest.approx(3 * forward, rel=0.02)


def test_plain_baseline_is_algorithm_1_by_hand():
    torch.manual_seed(3)
    model = ScoreUNet(width=WIDTH).eval()
    x, noise = torch.randn(1, 3, 16, 16), torch.randn(2, 1, 3, 16, 16)
    std = float(torch.sqrt((25.0 ** (2 * torch.tensor(1e-3)) - 1) / (2 * torch.log(torch.tensor(25.0)))))
    expected = 0
    for eps in noise:
        with torch.no_grad():
            r = model(x + std * eps, torch.tensor([1e-3])) * std**2 + std * eps
        expected = expected + (r**2).mean(dim=1, keepdim=True) / 2
    torch.testing.assert_close(plain_restoration_error(model, x, noise), expected, rtol=1e-5, atol=0)
    flat = torch.ones(1, 1, 16, 16)
    smoothed = plain_anomaly_map(flat)  # a constant map: the mean filter counts the zero padding
    assert smoothed.shape == (1, 1, 256, 256)
    assert smoothed[0, 0, 128, 128] == pytest.approx(1.0) and smoothed[0, 0, 0, 0] == pytest.approx(16**2 / 31**2)


def test_mvtec_schedule_hours():
    assert tuple(MVTEC_TRAIN_IMAGES) == LAYOUTS["mvtec"].categories and sum(MVTEC_TRAIN_IMAGES.values()) == 3629
    one_hour = 3000 * 3629 / 3600  # images/s that make the whole schedule last one hour
    hours = mvtec_schedule_hours(one_hour)
    assert hours["all_categories"] == pytest.approx(1.0)
    assert hours["bottle"] == pytest.approx(209 / 3629)


def test_the_plain_network_is_the_same_function():
    torch.manual_seed(4)
    model = ScoreUNet(width=WIDTH)
    x, k = torch.randn(2, 3, 37, 20), torch.rand(2)
    assert torch.equal(plain_forward(model, x, k), model(x, k))  # training: the authors' arithmetic
    with torch.no_grad():  # evaluation: fused SiLU, in place; rounding differs
        expected = plain_forward(model, x, k)
        assert (model(x, k) - expected).abs().max() <= 1e-5 * expected.abs().max()
