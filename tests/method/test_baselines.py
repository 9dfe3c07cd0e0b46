"""Reconstruction baselines against independent computations."""

import numpy as np
import pytest
import torch

from srlib.method.baselines import ConvAutoencoder, PCAReconstruction, reconstruction_error, train_autoencoder
from srlib.errors import SrlibError
from srlib.method.restoration import anomaly_map


def test_the_error_map_is_the_channel_mean_of_the_squared_difference():
    x = torch.randn(5, 3, 8, 6)
    shift = torch.tensor([0.5, -1.0, 2.0])[:, None, None]
    maps = reconstruction_error(lambda b: b + shift, x, batch_size=2)
    assert maps.shape == (5, 1, 8, 6)
    expected = (0.25 + 1.0 + 4.0) / 3
    torch.testing.assert_close(maps, torch.full_like(maps, expected))
    # Reconstructing by zero leaves the mean square of each pixel over channels.
    torch.testing.assert_close(reconstruction_error(torch.zeros_like, x), (x**2).mean(dim=1, keepdim=True))


def test_a_reconstruction_of_the_wrong_shape_is_refused():
    with pytest.raises(SrlibError, match="reconstruction has shape"):
        reconstruction_error(lambda b: b[:, :1], torch.zeros(2, 3, 4, 4))


def test_pca_with_every_component_reconstructs_the_training_images_exactly():
    images = torch.randn(6, 3, 4, 4, dtype=torch.float64)
    pca = PCAReconstruction(n_components=6).fit(images)
    maps = reconstruction_error(pca, images)
    assert maps.max() < 1e-20
    assert pca.components == 6


def test_pca_error_is_the_distance_to_the_principal_subspace():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(40, 2, 3, 3)) * np.linspace(3, 0.1, 18).reshape(2, 3, 3)
    test = rng.normal(size=(7, 2, 3, 3))
    n = 4
    # Independently: SVD of the centred training matrix, orthogonal projection.
    flat = train.reshape(40, -1)
    centre = flat.mean(axis=0)
    basis = np.linalg.svd(flat - centre, full_matrices=False)[2][:n]
    residual = (test.reshape(7, -1) - centre) @ (np.eye(18) - basis.T @ basis)
    expected = (residual.reshape(7, 2, 3, 3) ** 2).mean(axis=1, keepdims=True)
    pca = PCAReconstruction(n_components=n).fit(torch.from_numpy(train))
    maps = reconstruction_error(pca, torch.from_numpy(test))
    np.testing.assert_allclose(maps.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_pca_keeps_the_fraction_of_variance_asked_for():
    # Variances 100, 10, 1, 0.1 along the axes: 0.9 of the total needs two components.
    rng = np.random.default_rng(1)
    data = rng.normal(size=(4000, 4)) * np.sqrt([100, 10, 1, 0.1])
    pca = PCAReconstruction(n_components=0.95).fit(torch.from_numpy(data).reshape(4000, 1, 2, 2))
    assert pca.components == 2


def test_pca_refuses_unfitted_use_bad_sizes_and_other_shapes():
    with pytest.raises(SrlibError, match="not fitted"):
        PCAReconstruction()(torch.zeros(1, 3, 4, 4))
    with pytest.raises(SrlibError, match="between 1 and 5"):
        PCAReconstruction(n_components=9).fit(torch.zeros(5, 3, 4, 4))
    pca = PCAReconstruction(n_components=2).fit(torch.randn(5, 3, 4, 4))
    with pytest.raises(SrlibError, match="fitted on"):
        pca(torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize("size,levels", [(16, 3), (64, 3), (32, 2)])
def test_the_autoencoder_keeps_the_image_shape(size, levels):
    model = ConvAutoencoder(width=4, levels=levels, latent_channels=2)
    x = torch.randn(2, 3, size, size)
    assert model(x).shape == x.shape
    assert model.encoder(x).shape == (2, 2, size // 2**levels, size // 2**levels)


def test_the_autoencoder_refuses_sides_that_do_not_halve():
    with pytest.raises(SrlibError, match="multiples of 8"):
        ConvAutoencoder(levels=3)(torch.zeros(1, 3, 20, 20))


def test_autoencoder_training_lowers_the_loss_and_is_reproducible():
    # Smooth images: a code of 2x2x4 numbers can hold them.
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    phases = torch.linspace(0, 3, 24)[:, None, None, None]
    images = torch.sin(2 * xx + phases) * torch.cos(yy + phases).expand(24, 3, 16, 16)

    def run():
        torch.manual_seed(0)
        model = ConvAutoencoder(width=8, levels=3, latent_channels=4)
        before = reconstruction_error(model, images).mean().item()
        history = train_autoencoder(model, images, epochs=30, batch_size=8, lr=3e-3, seed=0, progress=False)
        return model, before, history

    model, before, history = run()
    assert not model.training
    assert len(history["loss"]) == 30 and history["seconds"] > 0
    assert history["loss"][-1] < 0.2 * history["loss"][0]
    after = reconstruction_error(model, images)
    # The map's mean is the MSE the loss measures (up to the last epoch's steps).
    assert after.mean().item() < 0.2 * before
    assert after.mean().item() == pytest.approx(history["loss"][-1], rel=0.5)
    _, _, again = run()
    assert again["loss"] == history["loss"]


def test_baseline_maps_go_through_the_same_anomaly_map_as_restoration_maps():
    pca = PCAReconstruction(n_components=3).fit(torch.randn(10, 3, 16, 16))
    raw = reconstruction_error(pca, torch.randn(4, 3, 16, 16))
    assert anomaly_map(raw, out_size=32, kernel=3).shape == (4, 1, 32, 32)
