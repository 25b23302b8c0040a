"""Energy, enstrophy, palinstrophy and divergence against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from sciffd.grids import torus
from sciffd.noise import Matern
from sciffd.spectral import derivative
from sciffd.stats import divergence, energy, enstrophy, palinstrophy


def two_modes(g):
    """w = A cos(k1.x) + B sin(k2.x): E, Z, P in closed form, and its velocity."""
    y, x = g.mesh()
    ly, lx = g.lengths
    a, b = 0.7, -1.3
    k1 = np.array([2 * np.pi * 2 / ly, 2 * np.pi * 1 / lx])
    k2 = np.array([2 * np.pi * 1 / ly, 2 * np.pi * 3 / lx])
    n1, n2 = k1 @ k1, k2 @ k2
    t1, t2 = k1[0] * y + k1[1] * x, k2[0] * y + k2[1] * x
    w = a * np.cos(t1) + b * np.sin(t2)
    # psi = a cos(t1) / n1 + b sin(t2) / n2; (u, v) = (dpsi/dy, -dpsi/dx)
    u = -a * k1[0] * np.sin(t1) / n1 + b * k2[0] * np.cos(t2) / n2
    v = a * k1[1] * np.sin(t1) / n1 - b * k2[1] * np.cos(t2) / n2
    exact = {
        "E": (a**2 / n1 + b**2 / n2) / 4,
        "Z": (a**2 + b**2) / 4,
        "P": (a**2 * n1 + b**2 * n2) / 4,
    }
    return w, np.stack([u, v]), exact


def test_invariants_of_two_modes_match_closed_forms():
    g = torus((16, 24), lengths=(1.0, 1.5))
    w, velocity, exact = two_modes(g)
    np.testing.assert_allclose(energy(w, g), exact["E"], rtol=1e-12)
    np.testing.assert_allclose(energy(velocity, g, kind="velocity"), exact["E"], rtol=1e-12)
    np.testing.assert_allclose(enstrophy(w, g), exact["Z"], rtol=1e-12)
    np.testing.assert_allclose(palinstrophy(w, g), exact["P"], rtol=1e-12)


def test_palinstrophy_is_half_the_mean_squared_spectral_gradient():
    g = torus((9, 12))
    w = np.random.default_rng(4).standard_normal((2,) + g.shape)
    grad2 = sum(derivative(w, g, axis=i) ** 2 for i in range(2))
    np.testing.assert_allclose(palinstrophy(w, g), 0.5 * grad2.mean(axis=(-2, -1)),
                               rtol=1e-12)


def test_invariants_keep_leading_axes():
    g = torus(8)
    w = np.random.default_rng(5).standard_normal((3, 2) + g.shape)
    assert energy(w, g).shape == (3, 2)
    np.testing.assert_allclose(enstrophy(w, g), 0.5 * (w**2).mean(axis=(-2, -1)))


def test_divergence_of_a_curl_is_zero_to_rounding(xp):
    g = torus((24, 32), lengths=(1.0, 2.0))
    psi = Matern(alpha=2.0, tau=3.0).sample(g, 3, seed=1, dtype=np.float64)[:, 0]
    velocity = np.stack([derivative(psi, g, axis=0), -derivative(psi, g, axis=1)], axis=1)
    velocity = xp.asarray(velocity)
    div = divergence(velocity, g)
    assert type(div) is type(velocity)
    scale = float(np.abs(np.asarray(velocity)).max()) * 2 * np.pi * 12
    assert float(np.abs(np.asarray(div)).max()) < 1e-13 * scale


def test_divergence_of_a_compressible_field_and_component_order():
    g = torus(16, ndim=3)
    z, y, x = g.mesh()
    ux, uy, uz = np.sin(2 * np.pi * x), np.cos(4 * np.pi * y), np.sin(2 * np.pi * (z + x))
    exact = (2 * np.pi * np.cos(2 * np.pi * x) - 4 * np.pi * np.sin(4 * np.pi * y)
             + 2 * np.pi * np.cos(2 * np.pi * (z + x)))
    np.testing.assert_allclose(divergence(np.stack([ux, uy, uz]), g), exact, atol=1e-12)
    np.testing.assert_allclose(divergence(np.stack([uz, uy, ux]), g, component_order="axes"),
                               exact, atol=1e-12)


def test_bad_input():
    g = torus(8)
    with pytest.raises(ValueError, match="kind='speed'"):
        energy(np.zeros((8, 8)), g, kind="speed")
    with pytest.raises(ValueError, match=r"velocity has shape \(3, 8, 8\)"):
        divergence(np.zeros((3, 8, 8)), g)
    with pytest.raises(ValueError, match="component_order='zyx'"):
        divergence(np.zeros((2, 8, 8)), g, component_order="zyx")
    with pytest.raises(ValueError, match="vorticity has shape"):
        enstrophy(np.zeros((8, 9)), g)
    with pytest.raises(TypeError, match="grid is required"):
        palinstrophy(np.zeros((8, 8)))
