"""Spectra beyond the basics: a direct-DFT reference, velocity against
vorticity, bands, the xarray form and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st
from references import direct_dft, full_modes

from sciffd.fields import to_dataarray
from sciffd.grids import torus
from sciffd.spectral import dealias_mask, derivative
from sciffd.stats import (
    band_limit,
    energy_spectrum,
    enstrophy_spectrum,
    log_spectral_error,
    power_spectrum,
)

VORTICITY = {"units": "s-1", "long_name": "vorticity", "seed": 7}


def streamfunction_modes(g):
    """psi = A cos(k1.x) + B sin(k2.x) and its velocity (u, v) = (dpsi/dy, -dpsi/dx)
    and vorticity w = -Laplacian psi, all in closed form."""
    y, x = g.mesh()
    ly, lx = g.lengths
    (a, k1y, k1x), (b, k2y, k2x) = (0.7, 2 * np.pi * 1 / ly, 2 * np.pi * 3 / lx), (
        -1.3, 2 * np.pi * 4 / ly, 2 * np.pi * 2 / lx)
    t1, t2 = k1y * y + k1x * x, k2y * y + k2x * x
    u = -a * k1y * np.sin(t1) + b * k2y * np.cos(t2)
    v = a * k1x * np.sin(t1) - b * k2x * np.cos(t2)
    w = a * (k1y**2 + k1x**2) * np.cos(t1) + b * (k2y**2 + k2x**2) * np.sin(t2)
    return u, v, w


def test_power_spectrum_against_a_direct_dft():
    # odd and even axes, unequal lengths: shells from |k| L_max / 2 pi of the full spectrum
    g = torus((5, 6), lengths=(1.0, 1.5))
    u = np.random.default_rng(1).standard_normal(g.shape)
    u_hat = direct_dft(u).reshape(-1)
    m = full_modes(g.shape)
    kappa = np.sqrt(((m / np.asarray(g.lengths)) ** 2).sum(axis=1)) * max(g.lengths)
    shells = np.floor(kappa + 0.5).astype(int)
    expected = np.bincount(shells, weights=np.abs(u_hat) ** 2)
    np.testing.assert_allclose(power_spectrum(u, g), expected, rtol=1e-12, atol=1e-15)


def test_energy_spectrum_from_velocity_equals_the_one_from_vorticity():
    g = torus((24, 32), lengths=(1.0, 2.0))
    u, v, w = streamfunction_modes(g)
    from_velocity = energy_spectrum(np.stack([u, v]), g, kind="velocity")
    from_vorticity = energy_spectrum(w, g)
    np.testing.assert_allclose(from_velocity, from_vorticity, rtol=1e-12, atol=1e-14)
    # and both sum to the mean kinetic energy of the closed-form velocity
    np.testing.assert_allclose(from_velocity.sum(), 0.5 * np.mean(u**2 + v**2), rtol=1e-12)
    np.testing.assert_allclose(enstrophy_spectrum(w, g).sum(), 0.5 * np.mean(w**2), rtol=1e-12)


@pytest.mark.property
@given(ny=st.integers(6, 20), nx=st.integers(6, 20), lx=st.floats(0.5, 2.0),
       seed=st.integers(0, 2**31 - 1))
def test_velocity_and_vorticity_spectra_agree_for_band_limited_fields(ny, nx, lx, seed):
    # psi with modes inside the 2/3 band only (no Nyquist content); u = dpsi/dy,
    # v = -dpsi/dx by spectral derivatives, w = -Laplacian psi = dv/dx - du/dy
    g = torus((ny, nx), lengths=(1.0, lx))
    rng = np.random.default_rng(seed)
    psi_hat = np.fft.rfft2(rng.standard_normal(g.shape)) * dealias_mask(g)
    psi = np.fft.irfft2(psi_hat, s=g.shape)
    u, v = derivative(psi, g, axis=0), -derivative(psi, g, axis=1)
    w = derivative(v, g, axis=1) - derivative(u, g, axis=0)
    np.testing.assert_allclose(energy_spectrum(np.stack([u, v]), g, kind="velocity"),
                               energy_spectrum(w, g), rtol=1e-10, atol=1e-14)


def test_log_spectral_error_per_band_is_the_ratio_of_band_sums():
    rng = np.random.default_rng(2)
    p, r = rng.uniform(0.5, 2.0, (3, 12)), rng.uniform(0.5, 2.0, (4, 12))
    pm, rm = p.mean(axis=0), r.mean(axis=0)
    got = log_spectral_error(p, r, n_max=9, bands=[1, 2, 5, 10])
    expected = [abs(np.log10(pm[a:b].sum() / rm[a:b].sum())) for a, b in [(1, 2), (2, 5), (5, 10)]]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(log_spectral_error(p, r)[:3], np.abs(np.log10(pm / rm))[1:4])


def test_band_limit_is_a_third_of_the_coarsest_axis():
    assert band_limit(torus((30, 64))) == 10
    assert band_limit(to_dataarray(np.zeros((1, 9, 12)), torus((9, 12)), "w",
                                   VORTICITY)) == 3


def test_dataarray_spectra_match_arrays_and_keep_labels():
    g = torus(16, lengths=2.0)
    w = np.random.default_rng(3).standard_normal((3, 16, 16))
    da = to_dataarray(w, g, "vorticity",
                      {**VORTICITY, "standard_name": "atmosphere_relative_vorticity"})
    P = power_spectrum(da)
    np.testing.assert_array_equal(P.values, power_spectrum(w, g))
    assert P.dims == ("member", "wavenumber")
    np.testing.assert_array_equal(P.wavenumber, np.arange(P.sizes["wavenumber"]))
    np.testing.assert_allclose(P.angular_wavenumber, np.pi * P.wavenumber)  # 2 pi n / L, L = 2
    assert P.attrs["units"] == "(s-1)^2" and P.attrs["seed"] == 7
    assert "standard_name" not in P.attrs
    assert {"units", "long_name"} <= set(P.wavenumber.attrs)
    np.testing.assert_array_equal(enstrophy_spectrum(da).values, 0.5 * power_spectrum(w, g))
    np.testing.assert_array_equal(energy_spectrum(da).values, energy_spectrum(w, g))

    # spatial dims need not come last, and other names work with dims=
    swapped = da.transpose("y", "member", "x")
    np.testing.assert_allclose(power_spectrum(swapped).transpose("member", ...).values,
                               P.values, rtol=1e-12)
    renamed = da.rename(y="lat_index", x="lon_index")
    np.testing.assert_allclose(power_spectrum(renamed, dims=("lat_index", "lon_index")).values,
                               P.values, rtol=1e-12)
    err = log_spectral_error(P, 2 * P, n_max=4)
    assert err.dims == ("wavenumber",)
    np.testing.assert_allclose(err.values, np.log10(2.0))


def test_dataarray_velocity_spectrum_with_a_component_dim():
    g = torus(24)
    u, v, w = streamfunction_modes(g)
    vel = to_dataarray(np.stack([u, v])[None], g, "velocity",
                       {"units": "m s-1", "long_name": "velocity"},
                       leading_dims=("time", "component"))
    E = energy_spectrum(vel, kind="velocity", component_dim="component")
    assert E.dims == ("time", "wavenumber") and E.attrs["units"] == "(m s-1)^2"
    np.testing.assert_allclose(E.values[0], energy_spectrum(w, g), rtol=1e-12, atol=1e-14)


def test_bad_input_names_the_argument():
    g = torus(8)
    with pytest.raises(TypeError, match="grid is required"):
        power_spectrum(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="kind='speed'"):
        energy_spectrum(np.zeros((8, 8)), g, kind="speed")
    with pytest.raises(ValueError, match="needs a 2D grid"):
        energy_spectrum(np.zeros(8), torus(8, ndim=1))
    with pytest.raises(ValueError, match="components on axis -3"):
        energy_spectrum(np.zeros((8, 8)), g, kind="velocity")
    da = to_dataarray(np.zeros((2, 8, 8)), g, "w", VORTICITY)
    with pytest.raises(ValueError, match="does not match the coordinates"):
        power_spectrum(da, torus(8, lengths=2.0))
    with pytest.raises(ValueError, match=r"no dim 'channel' \(given as component_dim\)"):
        energy_spectrum(da, kind="velocity")
    with pytest.raises(TypeError, match="Dataset"):
        power_spectrum(da.to_dataset())
    with pytest.raises(ValueError, match="bands="):
        log_spectral_error(np.ones(8), np.ones(8), bands=[3, 2])
    with pytest.raises(ValueError, match="no dim 'z'"):
        power_spectrum(xr.DataArray(np.zeros((8, 8)), dims=("y", "x")), dims=("z", "x"))
