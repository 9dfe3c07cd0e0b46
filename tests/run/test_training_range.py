"""The training range of k (TrainConfig.k_max, k_draw): the draws, the paper's range kept bit-identical, refusals."""

import math

import numpy as np
import pytest
import torch

from srlib.cli import main
from srlib.errors import SrlibError
from srlib.method.sde import K_MIN, VESDE, draw_times, dsm_loss, time_share
from srlib.run.config import TrainConfig
from srlib.run.ema import ema_of
from srlib.run.train import make_optimizer, train, train_step
from srlib.method.unet import ScoreUNet


def authors_dsm_loss(model, x, sde, generator):
    """The loss as the authors wrote it (and srlib did before k_max): k ~ U(1e-5, 1), then z."""
    eps = 1e-5
    k = torch.rand(x.shape[0], generator=generator, dtype=x.dtype) * (1.0 - eps) + eps
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    std = sde.marginal_std(k)[:, None, None, None]
    residual = model(x + z * std, k) * std + z
    return residual.pow(2).sum(dim=(1, 2, 3)).mean()


def test_the_paper_range_draws_the_authors_times_bit_for_bit():
    ours = draw_times(1000, generator=torch.Generator().manual_seed(5))
    theirs = torch.rand(1000, generator=torch.Generator().manual_seed(5)) * (1.0 - 1e-5) + 1e-5
    assert torch.equal(ours, theirs)
    paper = TrainConfig.preset_for("paper", "mvtec", "/data", "bottle")
    assert (paper.k_max, paper.k_draw) == (1.0, "uniform")


def test_paper_training_steps_are_bit_identical_to_the_authors_loss():
    """Two steps of the paper's range through train_step against an optimizer driven by the authors' loss."""
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    config = TrainConfig.preset_for("paper", "mvtec", "/data", "bottle", width=8, image_size=16, device="cpu")
    runs = []
    for ours in (True, False):
        torch.manual_seed(0)
        model = ScoreUNet(width=8, sde=VESDE(config.sigma))
        ema, optimizer = ema_of(model, config.ema_decay), make_optimizer(model, config, torch.device("cpu"))
        for step in range(2):
            g = torch.Generator().manual_seed(100 + step)
            if ours:
                train_step(model, model, ema, optimizer, x, g, torch.autocast("cpu", enabled=False),
                           config.k_max, config.k_draw)
            else:
                loss = authors_dsm_loss(model, x, model.sde, g)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


@pytest.mark.parametrize("draw", ["uniform", "log-uniform"])
def test_times_stay_in_the_range(draw):
    k = draw_times(20000, 0.03, draw, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert K_MIN <= k.min() and k.max() <= 0.03


def test_log_uniform_gives_each_decade_the_same_share():
    # [1e-5, 1e-1] spans four decades: each should hold a quarter of the draws (binomial sd ~0.002 at n = 40000).
    k = draw_times(40000, 0.1, "log-uniform", generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    shares = np.histogram(np.log10(k.numpy()), bins=[-5, -4, -3, -2, -1])[0] / len(k)
    assert np.allclose(shares, 0.25, atol=0.01)
    # Uniform over the same range puts 90 % of the draws in the top decade.
    u = draw_times(40000, 0.1, "uniform", generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert float((u > 0.01).double().mean()) == pytest.approx((0.1 - 0.01) / (0.1 - 1e-5), abs=0.01)


def test_the_loss_only_sees_noise_up_to_k_max():
    """The DSM loss of a model recording its inputs' times: none above k_max."""
    seen = []

    def model(x_tilde, k):
        seen.append(k)
        return torch.zeros_like(x_tilde)

    x = torch.zeros(64, 1, 4, 4)
    loss = dsm_loss(model, x, VESDE(), generator=torch.Generator().manual_seed(3), k_max=0.01, draw="log-uniform")
    assert float(seen[0].max()) <= 0.01
    # A zero score leaves the residual z: the loss is the mean of sum(z^2), close to 16 per image.
    assert loss.item() == pytest.approx(16, rel=0.15)


@pytest.mark.parametrize("k_max", [0.0, 1e-5, 1.5, -0.1, math.nan, math.inf])
def test_a_range_outside_the_schedule_is_refused(k_max):
    with pytest.raises(SrlibError, match=r"k_max \(the largest training time\) must be in \(1e-05, 1\]"):
        TrainConfig.preset_for("cpu", "mvtec", "/data", "brick", k_max=k_max)


def test_an_unknown_draw_is_refused():
    with pytest.raises(SrlibError, match="unknown k_draw 'normal': choose one of uniform, log-uniform"):
        TrainConfig.preset_for("cpu", "mvtec", "/data", "brick", k_draw="normal")
    with pytest.raises(SrlibError, match="unknown draw of k 'normal'"):
        draw_times(3, 0.1, "normal")


def test_the_command_line_sets_the_range_and_refuses_a_bad_one(tmp_path, capsys):
    assert main(["train", "--dataset", "mvtec", "--root", str(tmp_path / "data"), "--category", "brick",
                 "--preset", "cpu", "--k-max", "2", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "k_max (the largest training time) must be in (1e-05, 1]" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["train", "--k-draw", "gaussian"])
    assert "invalid choice: 'gaussian'" in capsys.readouterr().err


def test_a_resumed_run_keeps_its_range(textures_root, tmp_path):
    tiny = dict(epochs=1, image_size=32, width=8, batch_size=40, device="cpu", k_max=0.1)
    config = TrainConfig.preset_for("cpu", "mvtec", textures_root, "brick", **tiny)
    assert train(config, tmp_path, progress=False).finished
    longer = dict(tiny, epochs=2, k_max=0.03, k_draw="log-uniform")
    with pytest.raises(SrlibError, match=r"--resume refused: .*k_max 0\.1 -> 0\.03, k_draw 'uniform' -> 'log-uniform'"):
        train(TrainConfig.preset_for("cpu", "mvtec", textures_root, "brick", **longer), tmp_path, resume=True)
    # A configuration saved before k_max existed was trained on the authors' range.
    saved = config.to_dict()
    del saved["k_max"], saved["k_draw"]
    assert TrainConfig.from_dict(saved).k_max == 1.0


@pytest.mark.parametrize("k_max, draw", [(1.0, "uniform"), (0.1, "uniform"), (0.1, "log-uniform"), (1.0, "log-uniform")])
def test_the_share_of_steps_in_a_range_matches_the_draws(k_max, draw):
    k = draw_times(100000, k_max, draw, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for a, b in [(1e-5, 1e-3), (1e-3, 1e-2), (0.05, 0.3), (0.31, 1.0)]:
        counted = float(((k >= a) & (k <= b)).double().mean())
        assert time_share(a, b, k_max, draw) == pytest.approx(counted, abs=0.005)


def test_the_issue_s_shares_of_the_authors_range():
    # Issue 17's figures, worked by hand: k > 0.1 takes (1 - 0.1) / (1 - 1e-5) of the steps, k <= 1e-3 ~0.1 %.
    assert time_share(0.1, 1.0) == pytest.approx(0.9 / (1 - 1e-5))
    assert time_share(0, 1e-3) == pytest.approx((1e-3 - 1e-5) / (1 - 1e-5))


def test_the_objective_share_of_a_constant_loss_is_the_step_share():
    # With the same loss at every level, the objective's share is the share of the steps.
    from srlib.method.sde import objective_shares

    ks = np.geomspace(1e-5, 1.0, 4001)
    for k_max, draw in [(1.0, "uniform"), (0.1, "log-uniform"), (0.1, "uniform")]:
        shares = objective_shares(ks, np.ones_like(ks), k_max, draw)
        at = np.searchsorted(ks, 1e-3)
        assert shares[at] == pytest.approx(time_share(0, ks[at], k_max, draw), abs=1e-4)
        assert shares[-1] == 1.0 and np.all(np.diff(shares) >= 0)


def test_the_objective_share_weighs_each_level_by_its_loss():
    # loss(k) = 1/k under the log-uniform draw: the density times the loss is 1/(k^2 ln(1/eps)),
    # whose integral from eps to K is (1/eps - 1/K) / ln(1/eps): the share up to K is (1/eps - 1/K) / (1/eps - 1).
    from srlib.method.sde import objective_shares

    ks = np.geomspace(1e-5, 1.0, 20001)
    shares = objective_shares(ks, 1 / ks, 1.0, "log-uniform")
    at = np.searchsorted(ks, 1e-4)
    assert shares[at] == pytest.approx((1e5 - 1 / ks[at]) / (1e5 - 1), rel=1e-3)


def test_the_cpu_preset_is_the_recipe_the_study_chose():
    """The cpu preset's range and budget are what the committed study's rule picks (validation rows only)."""
    from pathlib import Path

    from srlib.results.study import choose, read_study

    rows = read_study(Path(__file__).parents[2] / "notebooks" / "weights" / "k_range_study.csv")
    cpu = TrainConfig.preset_for("cpu", "mvtec", "/data", "brick")
    assert choose(rows) == (cpu.k_max, cpu.k_draw, cpu.epochs, cpu.width, cpu.batch_size)
