"""The Gaussian tail of the FNO denoiser against the exact Gaussian denoiser."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sciffd.grids import torus  # noqa: E402
from sciffd.models import GaussianScore  # noqa: E402
from sciffd.models.fno import (  # noqa: E402
    FNO,
    FNODenoiser,
    _band_mask,
    _shells,
    _tail_eigenvalues,
    shell_variance,
)
from sciffd.noise import Matern, SpectralGaussian  # noqa: E402
from sciffd.sde import VPProcess  # noqa: E402


def test_shell_variance_of_a_matern_sample():
    grid = torus(16)
    mu = Matern(3.0, 4.0, sigma=50.0)
    u = mu.sample(grid, 2000, seed=4, dtype=np.float64)
    q = shell_variance(u, grid)[0]
    lam = mu.eigenvalues(grid)
    shells = _shells(grid)
    w = grid.hermitian_weight * grid.nyquist_mask
    count = np.bincount(shells.ravel(), w.ravel())
    expected = np.bincount(shells.ravel(), (w * lam).ravel()) / np.maximum(count, 1.0)
    # shell n >= 1 pools at least 8 real dofs per field: relative sd of the mean power
    # is at most 1/sqrt(4 * 2000); 5 sd
    n = np.arange(1, 8)
    assert np.all(np.abs(q[n] / expected[n] - 1) < 5 / np.sqrt(4 * 2000))


@pytest.mark.parametrize("t", [0.05, 0.4, 0.9])
def test_tail_modes_equal_the_exact_gaussian_denoiser(t):
    grid = torus(24)
    noise = Matern.unit_variance(3.0, 10.0, 2)
    table = np.abs(np.sin(np.arange(20.0))) * 1e-3 + 1e-6
    table[0] = 0.0
    net = FNO(1, width=4, layers=1, modes=5)
    model = FNODenoiser(net, VPProcess(), noise, tail_variance=table[None])
    q = _tail_eigenvalues(table[None], grid)[0]

    def spectrum(k2):
        # the per-mode table as a spectrum of |k|^2 on this grid
        n = np.floor(np.sqrt(k2) / (2 * np.pi) + 0.5).astype(int)
        return np.where(n < table.size, table[np.minimum(n, table.size - 1)], 0.0)

    exact = GaussianScore(SpectralGaussian(spectrum, ndim=2), noise, VPProcess())
    u = torch.as_tensor(noise.sample(grid, 3, seed=1, dtype=np.float64))
    with torch.no_grad():
        out = model.denoise(u.float(), t, grid).double()
    got = torch.fft.rfftn(out, dim=(-2, -1),
                          norm="forward").numpy()
    want = np.fft.rfftn(exact.denoise(u.numpy(), t, grid), axes=(-2, -1), norm="forward")
    tail = ~(_band_mask(grid, net.modes) & (_shells(grid) < model.tail_start))
    assert np.any(q[tail] > 0)
    # float32 network arithmetic: relative 1e-5 of the field's coefficients
    scale = np.abs(want).max()
    np.testing.assert_allclose(got[..., tail], want[..., tail], atol=1e-5 * scale)


def test_tail_start_follows_the_dynamic_range():
    table = np.array([0.0, 1.0, 1e-2, 1e-3, 5e-5, 1e-6])
    model = FNODenoiser(FNO(1, width=4, layers=1, modes=3), VPProcess(),
                        Matern.unit_variance(2.0, 5.0, 2), tail_variance=table)
    assert model.tail_start == 4


def test_bad_tail_is_refused():
    with pytest.raises(ValueError, match="tail_variance"):
        FNODenoiser(FNO(1, width=4, layers=1, modes=3), VPProcess(),
                    Matern.unit_variance(2.0, 5.0, 2), tail_variance=[[-1.0, 2.0]])
