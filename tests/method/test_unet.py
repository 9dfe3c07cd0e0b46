"""ScoreUNet: the authors' checkpoint layout, shapes, and its forward checked piece by piece."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from srlib.method.sde import VESDE, marginal_std
from srlib.method.unet import ScoreUNet, upsample_to

LAYOUT = Path(__file__).parent / "data" / "authors-checkpoint-layout.tsv"


def test_default_width_has_the_authors_checkpoint_layout():
    model = ScoreUNet()
    expected = [line.split("\t") for line in LAYOUT.read_text().splitlines() if line]
    ours = [[key, str(tuple(value.shape))] for key, value in model.state_dict().items()]
    assert ours == expected
    assert sum(p.numel() for p in model.parameters()) == 17_843_331
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert [p.numel() for p in frozen] == [128] and frozen[0] is model.embed[0].W
    assert model.width == 64


@pytest.mark.parametrize("size", [(16, 16), (64, 64), (190, 190), (200, 150)])
def test_output_has_the_input_shape(size):
    torch.manual_seed(0)
    model = ScoreUNet(width=16).eval()
    x = torch.randn(2, 3, *size)
    with torch.inference_mode():
        out = model(x, torch.tensor([1e-3, 0.6]))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_time_embedding_by_hand():
    torch.manual_seed(1)
    model = ScoreUNet(width=16)
    k = [1e-3, 0.37]
    W = model.embed[0].W.double().numpy()
    assert 20 < W.std() < 40  # frequencies drawn N(0, 30^2)
    features = np.array([[math.sin(2 * math.pi * ki * w) for w in W] + [math.cos(2 * math.pi * ki * w) for w in W]
                         for ki in k])
    linear = model.embed[1]
    pre = features @ linear.weight.double().detach().numpy().T + linear.bias.double().detach().numpy()
    swish = pre / (1 + np.exp(-pre))
    with torch.no_grad():
        ours_features = model.embed[0](torch.tensor(k))
        ours = model.time_embedding(torch.tensor(k))
    np.testing.assert_allclose(ours_features.numpy(), features, atol=2e-4)
    np.testing.assert_allclose(ours.numpy(), swish, atol=2e-4)


def test_output_is_the_last_conv_divided_by_sigma_k():
    torch.manual_seed(2)
    model = ScoreUNet(width=16).eval()
    captured = {}
    model.outc.register_forward_hook(lambda module, args, out: captured.update(out=out))
    k = torch.tensor([1e-3, 0.25, 1.0])
    with torch.no_grad():
        out = model(torch.randn(3, 3, 32, 32), k)
    torch.testing.assert_close(out * marginal_std(k, 25.0)[:, None, None, None], captured["out"])


def test_the_output_is_divided_by_its_own_schedules_sigma_k():
    torch.manual_seed(3)
    model = ScoreUNet(width=16, sde=VESDE(9.0)).eval()
    captured = {}
    model.outc.register_forward_hook(lambda module, args, out: captured.update(out=out))
    k = torch.tensor([1e-3, 0.5])
    with torch.no_grad():
        out = model(torch.randn(2, 3, 16, 16), k)
    expected = torch.sqrt((9.0 ** (2 * k) - 1) / (2 * math.log(9.0)))  # the closed form, base 9
    torch.testing.assert_close(out * expected[:, None, None, None], captured["out"])


def bilinear_matrix(n_in, n_out):
    """Rows interpolate n_in samples at n_out points spread corner to corner (align_corners=True)."""
    positions = np.arange(n_out) * (n_in - 1) / (n_out - 1)
    return np.stack([np.interp(positions, np.arange(n_in), np.eye(n_in)[j]) for j in range(n_in)], axis=1)


@pytest.mark.parametrize("target", [(8, 10), (9, 11), (11, 13)])
def test_upsample_to_interpolates_corner_to_corner_and_pads_bottom_right_first(target):
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    out = upsample_to(x, target)
    up = np.stack([bilinear_matrix(4, 8) @ c @ bilinear_matrix(5, 10).T for c in x[0].numpy()])
    top, left = (target[0] - 8) // 2, (target[1] - 10) // 2
    expected = np.zeros((2, *target))
    expected[:, top:top + 8, left:left + 10] = up
    assert out.shape == (1, 2, *target)
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-12)


def test_channels_last_gives_the_same_score():
    torch.manual_seed(3)
    model = ScoreUNet(width=16).eval()
    x = torch.randn(2, 3, 40, 36)
    k = torch.tensor([1e-3, 0.5])
    with torch.no_grad():
        plain = model(x, k)
        model.to(memory_format=torch.channels_last)
        fast = model(x.contiguous(memory_format=torch.channels_last), k)
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-3)
