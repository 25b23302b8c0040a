"""Increments, structure functions, two-point correlations and integral
scales against closed forms and direct sums."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from sciffd.grids import torus
from sciffd.stats import (
    increment_pdf,
    increments,
    integral_length_scale,
    structure_function,
    two_point_correlation,
)


def test_increments_match_direct_indexing():
    g = torus((6, 10), lengths=(0.6, 1.0))
    u = np.random.default_rng(0).standard_normal((2,) + g.shape)
    i = np.arange(10)
    np.testing.assert_array_equal(increments(u, g, separation=0.3, axis=-1),
                                  u[..., (i + 3) % 10] - u)
    j = np.arange(6)
    np.testing.assert_array_equal(increments(u, g, separation=0.2, axis=0),
                                  u[:, (j + 2) % 6, :] - u)


def test_structure_functions_of_a_sine_are_closed_form():
    # u = a sin(k x): delta_r u = 2 a sin(k r / 2) cos(k x + k r / 2), so
    # S_2 = a^2 (1 - cos k r), S_3 = 0, S_4 = 6 a^4 sin^4(k r / 2)
    a, k = 1.7, 2 * np.pi * 2 / 3.0
    g = torus(48, lengths=3.0, ndim=1)
    u = a * np.sin(k * g.coords(0))
    r, s2 = structure_function(u, g)
    np.testing.assert_allclose(r, np.arange(25) * 3.0 / 48)
    np.testing.assert_allclose(s2, a**2 * (1 - np.cos(k * r)), atol=1e-12)
    np.testing.assert_allclose(structure_function(u, g, order=3)[1], 0.0, atol=1e-12)
    np.testing.assert_allclose(structure_function(u, g, order=4)[1],
                               6 * a**4 * np.sin(k * r / 2) ** 4, atol=1e-11)
    np.testing.assert_allclose(structure_function(u, g, order=2.0, absolute=True)[1], s2,
                               atol=1e-12)


def test_longitudinal_structure_function_of_a_velocity_averages_the_axes():
    # u_x = a sin(k x), u_y = b sin(k y): along x only u_x counts, along y only u_y
    g = torus(32)
    y, x = g.mesh()
    a, b, k = 1.0, 0.5, 2 * np.pi * 3
    velocity = np.stack([a * np.sin(k * x), b * np.sin(k * y)])[None]
    r, s2 = structure_function(velocity, g, kind="velocity")
    np.testing.assert_allclose(s2[0], (a**2 + b**2) / 2 * (1 - np.cos(k * r)), atol=1e-12)
    r_axes, s2_axes = structure_function(velocity, g, kind="velocity", average_axes=False)
    assert r_axes.shape == (2, 17) and s2_axes.shape == (1, 2, 17)
    np.testing.assert_allclose(s2_axes[0, 0], b**2 * (1 - np.cos(k * r)), atol=1e-12)  # y
    np.testing.assert_allclose(s2_axes[0, 1], a**2 * (1 - np.cos(k * r)), atol=1e-12)  # x
    # components in array-axis order give the same
    swapped = velocity[:, ::-1]
    np.testing.assert_allclose(
        structure_function(swapped, g, kind="velocity", component_order="axes")[1], s2)


def test_second_order_structure_function_against_a_direct_sum():
    g = torus((8, 8), lengths=(1.0, 1.0))
    u = np.random.default_rng(1).standard_normal((3,) + g.shape)
    # S_2 by Wiener-Khinchin against the mean of squared rolled differences
    direct = np.stack([
        np.mean([((np.roll(u, -j, axis=ax) - u) ** 2).mean(axis=(-2, -1)) for ax in (-2, -1)],
                axis=0) for j in range(5)], axis=-1)
    np.testing.assert_allclose(structure_function(u, g)[1], direct, atol=1e-12)
    r, s = structure_function(u, g, max_separation=0.25)
    assert r.tolist() == [0.0, 0.125, 0.25] and s.shape == (3, 3)


def test_two_point_correlation_of_a_cosine_is_a_cosine():
    g = torus(20, lengths=2.0, ndim=1)
    k = 2 * np.pi * 3 / 2.0
    r, R = two_point_correlation(4.0 + np.cos(k * g.coords(0)), g)  # the mean is removed
    np.testing.assert_allclose(R, np.cos(k * r) / 2, atol=1e-12)
    g2 = torus(16)
    y, x = g2.mesh()
    r2, R2 = two_point_correlation(np.cos(2 * np.pi * 2 * x), g2, average_axes=False)
    np.testing.assert_allclose(R2[1], np.cos(2 * np.pi * 2 * r2[1]) / 2, atol=1e-12)  # along x
    np.testing.assert_allclose(R2[0], 0.5, atol=1e-12)  # along y the field is constant


def test_two_point_correlation_against_a_direct_sum():
    g = torus((5, 6), lengths=(5.0, 6.0))
    u = np.random.default_rng(2).standard_normal(g.shape)
    d = u - u.mean()
    r, R = two_point_correlation(u, g, average_axes=False)
    direct_y = [np.mean(d * np.roll(d, -j, axis=0)) for j in range(3)]
    direct_x = [np.mean(d * np.roll(d, -j, axis=1)) for j in range(3)]
    np.testing.assert_allclose(R, [direct_y, direct_x], atol=1e-12)


def field_with_power(g, power, seed):
    """A real field whose |u_hat|^2 is exactly ``power`` (random phases)."""
    noise = np.random.default_rng(seed).standard_normal(g.shape)
    w_hat = np.fft.rfftn(noise)
    u_hat = np.sqrt(power) * w_hat / np.abs(w_hat)
    return np.fft.irfftn(u_hat * g.size, s=g.shape, axes=(0, 1))  # coefficients are norm="forward"


def test_integral_scale_of_a_gaussian_covariance():
    # |u_hat[k]|^2 = (2 pi l^2 / |D|) exp(-l^2 |k|^2 / 2), the Fourier coefficients of
    # K(r) = exp(-|r|^2 / (2 l^2)), with the mean mode removed (S_0 = 2 pi l^2):
    # R(r) = K(r) - S_0 and L_int = (l sqrt(pi/2) erf(1 / (2 sqrt 2 l)) - S_0 / 2) / (1 - S_0)
    g, ell = torus(128), 0.05
    power = 2 * np.pi * ell**2 * np.exp(-(ell**2) * g.k_squared / 2)
    s0 = power.flat[0]
    power.flat[0] = 0.0
    u = field_with_power(g, power, seed=3)
    exact = (ell * np.sqrt(np.pi / 2) * erf(1 / (2 * np.sqrt(2) * ell)) - s0 / 2) / (1 - s0)
    np.testing.assert_allclose(integral_length_scale(u, g), exact, rtol=1e-6)
    np.testing.assert_allclose(integral_length_scale(u, g, average_axes=False), [exact] * 2,
                               rtol=1e-6)
    r, R = two_point_correlation(u, g)
    np.testing.assert_allclose(R, np.exp(-(r**2) / (2 * ell**2)) - s0, atol=1e-9)


def test_increment_pdf_is_the_histogram_of_increments():
    g = torus(32, ndim=1)
    u = np.random.default_rng(4).standard_normal((50,) + g.shape)
    centres, pdf = increment_pdf(u, g, separations=[1 / 32, 4 / 32], axis=0, bins=10)
    assert centres.shape == (10,) and pdf.shape == (2, 10)
    width = centres[1] - centres[0]
    np.testing.assert_allclose(pdf.sum(axis=1) * width, 1.0)
    d = (np.roll(u, -4, axis=-1) - u).ravel()
    m = max(np.abs(np.roll(u, -1, axis=-1) - u).max(), np.abs(d).max())
    expected, _ = np.histogram(d, bins=10, range=(-m, m), density=True)
    np.testing.assert_allclose(pdf[1], expected)
    _, standard = increment_pdf(u, g, separations=[4 / 32], axis=0, bins=10,
                                range_=(-3, 3), standardize=True)
    np.testing.assert_allclose(standard[0],
                               np.histogram(d / d.std(), bins=10, range=(-3, 3),
                                            density=True)[0])


def test_bad_input():
    g = torus(8)
    u = np.zeros((8, 8))
    with pytest.raises(ValueError, match="separation=0.1 is not a multiple"):
        increments(u, g, separation=0.1)
    with pytest.raises(ValueError, match="axis=2 is out of range"):
        increments(u, g, separation=0.125, axis=2)
    with pytest.raises(ValueError, match="order=1.5 must be a positive integer"):
        structure_function(u, g, order=1.5)
    with pytest.raises(ValueError, match="kind='vector'"):
        structure_function(u, g, kind="vector")
    with pytest.raises(ValueError, match="average_axes=True needs the same spacing"):
        two_point_correlation(np.zeros((8, 8)), torus(8, lengths=(1.0, 2.0)))
    with pytest.raises(ValueError, match="separations is empty"):
        increment_pdf(u, g, separations=[])
    with pytest.raises(ValueError, match="components on axis -3"):
        structure_function(u, g, kind="velocity")
