"""The spectral output scaling of the FNO denoiser (``output="spectral"``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sciffd.grids import torus  # noqa: E402
from sciffd.models.fno import FNO, FNODenoiser, _shells, _tail_eigenvalues  # noqa: E402
from sciffd.noise import Matern  # noqa: E402
from sciffd.sde import VPProcess  # noqa: E402
from sciffd.training.dsm import denoising_loss, draw_batch, network_loss  # noqa: E402

#: a steep shell spectrum: shells 1..5 kept by the network, 6.. in the tail
TABLE = np.array([0.0, 1.0, 0.2, 3e-2, 4e-3, 5e-4, 5e-5, 1e-6, 1e-8, 1e-10])
STD = 0.4


def _model(output: str, modes: int = 8, seed: int = 0) -> FNODenoiser:
    torch.manual_seed(seed)
    net = FNO(1, width=6, layers=1, modes=modes).double()
    torch.nn.init.normal_(net.project[2].weight)
    noise = Matern.unit_variance(3.0, 8.0, 2)
    return FNODenoiser(net, VPProcess(), noise, data_std=STD, lengths=(1.0, 1.0),
                       tail_variance=TABLE[None], skip="gaussian", output=output)


def test_band_count_is_the_number_of_kept_modes():
    model = _model("spectral")
    assert model.tail_start == 6
    # modes with |m_i| < 8 and round(|m|) <= 5, counted on a grid that holds them all
    m = np.arange(-8, 9)
    mx, my = np.meshgrid(m, m)
    keep = (np.abs(mx) < 8) & (np.abs(my) < 8) & (np.floor(np.hypot(mx, my) + 0.5) < 6)
    assert model._band_modes == keep.sum()


@pytest.mark.parametrize("shape", [(32, 32), (24, 40)])
def test_each_mode_is_scaled_by_the_gaussian_posterior_deviation(shape):
    """``O(F)_hat = sqrt(n_band v) / std F_hat``, ``v = q s^2 c / (q + s^2 c)``, mode by mode,
    against the formula evaluated directly on single Fourier modes."""
    model = _model("spectral")
    grid = torus(shape)
    q = _tail_eigenvalues(TABLE[None], grid)[0]
    c = model.noise.eigenvalues(grid)
    y, x = np.meshgrid(np.arange(shape[0]) / shape[0], np.arange(shape[1]) / shape[1],
                       indexing="ij")
    sigma = torch.tensor([0.05, 0.7], dtype=torch.float64)
    for my, mx in [(1, 0), (0, 2), (2, 3), (-4, 1), (5, 0), (3, -5), (7, 7)]:
        wave = np.cos(2 * np.pi * (my * y + mx * x)) + 0.5 * np.sin(2 * np.pi * (my * y + mx * x))
        f = torch.as_tensor(np.stack([wave, wave])[:, None])
        with torch.no_grad():
            got = model.output_term(f, sigma).numpy()[:, 0]
        i, j = my % shape[0], mx % shape[1]
        if j > shape[1] // 2:  # the half spectrum holds the mirror
            i, j = (-my) % shape[0], (-mx) % shape[1]
        for b, s in enumerate(sigma.numpy()):
            v = q[i, j] * s**2 * c[i, j] / (q[i, j] + s**2 * c[i, j])
            want = math.sqrt(model._band_modes * v) / STD * wave
            np.testing.assert_allclose(got[b], want, atol=1e-12 * max(1.0, np.abs(want).max()))


def test_network_target_is_white_on_the_band_for_gaussian_data():
    """For data ``N(0, q)`` the target ``(u_0' - S(x')) / scale`` of each kept mode has
    variance ``1 / n_band`` at every noise level (unit pointwise variance on the band)."""
    model = _model("spectral")
    grid = torus(32)
    q = _tail_eigenvalues(TABLE[None], grid)[0]
    c = model.noise.eigenvalues(grid)
    rng = np.random.default_rng(3)
    n = 4000
    keep = (_shells(grid) >= 1) & (_shells(grid) < model.tail_start) & grid.nyquist_mask
    keep[:, 0] &= np.arange(grid.shape[0]) <= grid.shape[0] // 2  # one of each conjugate pair
    keep[:, 0] &= np.arange(grid.shape[0]) > 0
    for s in [0.02, 0.3, 3.0]:
        # per-mode complex Gaussians: u_0 with variance q, noise with variance s^2 c
        z = lambda: (rng.standard_normal((n,) + q.shape) +  # noqa: E731
                     1j * rng.standard_normal((n,) + q.shape)) / math.sqrt(2)
        u0 = np.sqrt(q) * z()
        x = u0 + s * np.sqrt(c) * z()
        den = np.where(q + s**2 * c > 0, q + s**2 * c, 1.0)
        gain, v = q / den, q * s**2 * c / den
        scale = np.sqrt(model._band_modes * v) / STD
        target = (u0 - gain * x) / STD / np.where(scale > 0, scale, 1.0)
        power = (np.abs(target[:, keep]) ** 2).mean(axis=0) * model._band_modes
        # each entry is a mean of n exponential variables: relative sd 1 / sqrt(n); 5 sd
        assert np.all(np.abs(power - 1) < 5 / math.sqrt(n))


def test_spectral_loss_is_the_edm_weighted_denoising_loss():
    model = _model("spectral")
    g = torus(16)
    samples = torch.as_tensor(Matern(2.5, 8.0, 0.4).sample(g, 16, seed=2, dtype=np.float64))
    b = draw_batch(samples, g, model.process, model.noise, step=0, batch_size=8, seed=0,
                   sigma_ref=STD)
    with torch.no_grad():
        direct = denoising_loss(model.denoise_rescaled(b.x, b.sigma), b.u0, b.sigma,
                                torch.tensor([STD], dtype=torch.float64)).mean()
        torch.testing.assert_close(network_loss(model, b), direct, rtol=1e-10, atol=0)


def test_zero_network_is_the_same_gaussian_model_for_both_scalings():
    grid = torus(20)
    spectral, scalar = _model("spectral"), _model("scalar")
    for m in (spectral, scalar):
        torch.nn.init.zeros_(m.network.project[2].weight)
        torch.nn.init.zeros_(m.network.project[2].bias)
    u = torch.as_tensor(spectral.noise.sample(grid, 2, seed=1, dtype=np.float64))
    with torch.no_grad():
        for t in (0.01, 0.5):
            torch.testing.assert_close(spectral.denoise(u, t, grid), scalar.denoise(u, t, grid),
                                       rtol=0, atol=1e-14)


def test_training_stores_the_output_scaling_and_loading_restores_it(tmp_path):
    from sciffd.training import train
    from sciffd.training.checkpoint import load_model

    g = torus(16)
    data = Matern(2.5, 8.0, 1.0).sample(g, 24, seed=1, dtype=np.float64)
    out = train(data[:, None], tmp_path / "run", grid=g, steps=3, batch_size=4,
                progress=False, output="spectral",
                model_options={"width": 4, "layers": 1, "modes": 4})
    model, config = load_model(out)
    assert model.output == "spectral" and config["denoiser"]["output"] == "spectral"
    assert model.config()["output"] == "spectral"


def test_bad_output_options_are_refused(tmp_path):
    from sciffd.training import train

    net = FNO(1, width=4, layers=1, modes=4)
    noise = Matern.unit_variance(3.0, 8.0, 2)
    with pytest.raises(ValueError, match="output='white'"):
        FNODenoiser(net, VPProcess(), noise, output="white")
    with pytest.raises(ValueError, match="tail_variance"):
        FNODenoiser(net, VPProcess(), noise, output="spectral")
    g = torus(16)
    data = Matern(2.5, 8.0, 1.0).sample(g, 8, seed=1)[:, None]
    with pytest.raises(ValueError, match="balance"):
        train(data, tmp_path / "a", grid=g, steps=2, progress=False, output="spectral",
              balance=0.5)
    with pytest.raises(ValueError, match="output"):
        train(data, tmp_path / "b", grid=g, steps=2, progress=False, output="per-mode")
