"""Tests of the observation operators, noise and observation files of sciffd.inverse.

References are independent of the code: trigonometric polynomials
evaluated in closed form at arbitrary points, bilinear interpolation
written out corner by corner, block means by loops, and the Euclidean
adjoint checked by ``<H u, y> = <u, H^T y>`` and against autograd.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from references import TrigPolynomial

from sciffd.grids import torus
from sciffd.inverse import (
    Blur,
    CoarseGrain,
    LinearOperator,
    MaskObservation,
    ObservationNoise,
    Observations,
    PointObservation,
    operator_from_config,
)
from sciffd.spectral import resample


def trig_at(poly: TrigPolynomial, points: np.ndarray) -> np.ndarray:
    """``sum_n a_n cos(k_n . x) + b_n sin(k_n . x)`` at points ``(P, d)``."""
    k = 2 * np.pi * poly.modes / np.asarray(poly.lengths)
    theta = points @ k.T
    return (poly.a * np.cos(theta) + poly.b * np.sin(theta)).sum(axis=1)


def random_points(rng, n, lengths):
    return rng.uniform(0, 1, (n, len(lengths))) * np.asarray(lengths)


GRIDS = [torus(16, ndim=1), torus((8, 12), lengths=(1.0, 2.0)), torus((6, 5, 8))]


def all_operators(grid, rng):
    """One operator of each kind (and method) that applies to ``grid``."""
    pts = random_points(rng, 7, grid.lengths)
    coarse = tuple(max(2, n // 2) for n in grid.shape)
    ops = [PointObservation(pts, "spectral"), PointObservation(pts, "bilinear"),
           MaskObservation(lambda *c: c[-1] < 0.4 * grid.lengths[-1]),
           CoarseGrain(shape=coarse, method="spectral"),
           Blur(0.05), Blur(0.05, shape=coarse)]
    if all(n % 2 == 0 for n in grid.shape):
        ops.append(CoarseGrain(2))
        ref = grid.with_shape(coarse)
        ops.append(MaskObservation(rng.random(ref.shape) < 0.5, ref))  # nodes of a coarse grid
    fine = grid.refine(2)
    ops.append(MaskObservation(rng.random(fine.shape) < 0.3, fine))  # off-grid: interpolated
    return ops


# -- values -------------------------------------------------------------------
@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: str(g.shape))
def test_spectral_point_values_are_exact_for_band_limited_fields(grid, rng):
    poly = TrigPolynomial.random(rng, grid.shape, grid.lengths, terms=5)
    u = poly.values(grid.shape)[None, None]
    pts = random_points(rng, 11, grid.lengths)
    got = PointObservation(pts, "spectral").apply(u, grid)[0]
    np.testing.assert_allclose(got, trig_at(poly, pts), atol=1e-11)


def test_spectral_points_split_the_nyquist_mode(rng):
    # cos(pi N x / L) is the real band-limited interpolant of (-1)^j
    grid = torus(8, lengths=2.0, ndim=1)
    u = np.cos(np.pi * 8 * grid.coords(0) / 2.0)[None, None]
    pts = random_points(rng, 5, grid.lengths)
    got = PointObservation(pts, "spectral").apply(u, grid)[0]
    np.testing.assert_allclose(got, np.cos(np.pi * 8 * pts[:, 0] / 2.0), atol=1e-12)


def test_spectral_points_reproduce_node_values(rng):
    grid = torus((6, 8))
    u = rng.standard_normal((2, 3) + grid.shape)
    j = np.array([[0, 0], [5, 7], [2, 3]])
    pts = j * np.asarray(grid.spacing)
    got = PointObservation(pts, "spectral").apply(u, grid).reshape(2, 3, 3)
    np.testing.assert_allclose(got, u[:, :, j[:, 0], j[:, 1]], atol=1e-12)


def test_bilinear_values_written_out(rng):
    grid = torus((8, 12), lengths=(1.0, 3.0))
    u = rng.standard_normal((1, 1) + grid.shape)
    pts = np.vstack([random_points(rng, 6, grid.lengths), [[0.95, 2.9]]])  # one wraps
    got = PointObservation(pts, "bilinear").apply(u, grid)[0]
    hy, hx = grid.spacing
    ref = []
    for y, x in pts:
        i, j = int(y // hy), int(x // hx)
        fy, fx = y / hy - i, x / hx - j
        i1, j1 = (i + 1) % 8, (j + 1) % 12
        f = u[0, 0]
        ref.append((1 - fy) * (1 - fx) * f[i, j] + (1 - fy) * fx * f[i, j1]
                   + fy * (1 - fx) * f[i1, j] + fy * fx * f[i1, j1])
    np.testing.assert_allclose(got, ref, atol=1e-13)


def test_mask_selects_nodes_and_interpolates_elsewhere(rng):
    ref = torus((4, 6))
    region = rng.random(ref.shape) < 0.5
    H = MaskObservation(region, ref)
    # on the reference grid: the values of the nodes in the region
    u = rng.standard_normal((2, 1) + ref.shape)
    np.testing.assert_array_equal(H.apply(u, ref), u[:, 0][:, region])
    # on a refinement the same physical nodes are selected
    fine = ref.refine(3)
    uf = rng.standard_normal((2, 1) + fine.shape)
    np.testing.assert_array_equal(H.apply(uf, fine), uf[:, 0, ::3, ::3][:, region])
    # on a grid that does not contain them, exact trigonometric interpolation
    other = torus((10, 10))
    poly = TrigPolynomial.random(rng, (4, 6), (1.0, 1.0), terms=4)
    values = H.apply(poly.values(other.shape)[None, None], other)[0]
    np.testing.assert_allclose(values, trig_at(poly, H.points), atol=1e-12)


def test_mask_function_is_evaluated_on_each_grid():
    H = MaskObservation(lambda y, x: (x < 0.5) & (y < 0.25))
    assert H.n_obs(torus(8)) == 8 and H.n_obs(torus(16), channels=2) == 64


def test_block_mean_written_out(rng):
    grid = torus((8, 12))
    u = rng.standard_normal((2, 1) + grid.shape)
    got = CoarseGrain(4).apply(u, grid).reshape(2, 2, 3)
    ref = np.array([[[u[b, 0, 4 * i:4 * i + 4, 4 * j:4 * j + 4].mean() for j in range(3)]
                     for i in range(2)] for b in range(2)])
    np.testing.assert_allclose(got, ref, atol=1e-14)


def test_spectral_coarse_grain_is_resampling(rng):
    grid = torus((16, 12))
    u = rng.standard_normal((3, 2) + grid.shape)
    got = CoarseGrain(4, "spectral").apply(u, grid)
    np.testing.assert_allclose(got, resample(u, grid, (4, 3)).reshape(3, -1), atol=1e-13)
    # a fixed coarse grid observes a band-limited field the same at every resolution
    poly = TrigPolynomial.random(rng, (5, 5), (1.0, 1.0), terms=4)
    H = CoarseGrain(shape=(6, 6), method="spectral")
    a = H.apply(poly.values((16, 16))[None, None], torus(16))
    b = H.apply(poly.values((30, 24))[None, None], torus((30, 24)))
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_gaussian_blur_of_a_mode():
    grid = torus(32, lengths=2.0)
    y, x = grid.mesh()
    k = 2 * np.pi * np.array([3, 2]) / 2.0
    u = np.cos(k[0] * y + k[1] * x)[None, None]
    got = Blur(0.07).apply(u, grid).reshape(grid.shape)
    np.testing.assert_allclose(got, np.exp(-0.5 * 0.07**2 * (k**2).sum()) * u[0, 0],
                               atol=1e-13)


# -- adjoints -------------------------------------------------------------------
@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: str(g.shape))
def test_adjoint_is_the_transpose(grid, rng):
    for H in all_operators(grid, rng):
        u = rng.standard_normal((3, 2) + grid.shape)
        hu = H.apply(u, grid)
        assert hu.shape == (3, H.n_obs(grid, 2)), H
        y = rng.standard_normal(hu.shape)
        lhs, rhs = (hu * y).sum(), (u * H.adjoint(y, grid, 2)).sum()
        assert abs(lhs - rhs) <= 1e-11 * (1 + abs(lhs)), (H, lhs, rhs)


@pytest.mark.parametrize("grid", GRIDS[1:], ids=lambda g: str(g.shape))
def test_torch_agrees_with_numpy_and_autograd(grid, rng):
    for H in all_operators(grid, rng):
        u = rng.standard_normal((2, 1) + grid.shape)
        y = rng.standard_normal((2, H.n_obs(grid)))
        ut = torch.from_numpy(u).requires_grad_(True)
        hut = H.apply(ut, grid)
        (grad,) = torch.autograd.grad(hut, ut, grad_outputs=torch.from_numpy(y))
        np.testing.assert_allclose(hut.detach().numpy(), H.apply(u, grid), atol=1e-12)
        np.testing.assert_allclose(grad.numpy(), H.adjoint(y, grid, 1), atol=1e-12)
        np.testing.assert_allclose(H.adjoint(torch.from_numpy(y), grid, 1).numpy(),
                                   H.adjoint(y, grid, 1), atol=1e-12)


def test_float32_torch_fields_stay_float32(rng):
    grid = torus(16)
    u = torch.randn(2, 1, 16, 16)
    for H in all_operators(grid, rng):
        assert H.apply(u, grid).dtype == torch.float32, H


def test_linear_operator_adjoint_by_autograd(rng):
    grid = torus((6, 8))
    w = torch.from_numpy(rng.standard_normal((5, 48)))

    def mix(u):
        return u.reshape(u.shape[0], -1) @ w.T

    H = LinearOperator(mix, 5)
    u = rng.standard_normal((3, 1) + grid.shape)
    y = rng.standard_normal((3, 5))
    np.testing.assert_allclose(H.apply(u, grid), u.reshape(3, -1) @ w.numpy().T, atol=1e-12)
    np.testing.assert_allclose(H.adjoint(y, grid).reshape(3, -1), y @ w.numpy(), atol=1e-12)


def test_configurations_round_trip(rng):
    grid = torus((8, 8))
    u = rng.standard_normal((2, 1) + grid.shape)
    for H in [PointObservation(random_points(rng, 4, (1, 1)), "bilinear"),
              MaskObservation(rng.random((4, 4)) < 0.5, torus(4)), CoarseGrain(2),
              CoarseGrain(shape=(4, 4), method="spectral"), Blur(0.1, shape=(4, 4))]:
        again = operator_from_config(H.to_config())
        np.testing.assert_array_equal(again.apply(u, grid), H.apply(u, grid))
    with pytest.raises(TypeError, match="no configuration form"):
        LinearOperator(lambda u: u.reshape(u.shape[0], -1), 64).to_config()


def test_nodes_of_points_on_the_grid():
    grid = torus((4, 8))
    H = PointObservation([[0.25, 0.125], [0.0, 0.875]], "spectral")
    np.testing.assert_array_equal(H.nodes(grid), [1 * 8 + 1, 7])
    assert PointObservation([[0.3, 0.125]], "spectral").nodes(grid) is None


# -- bad input ------------------------------------------------------------------
def test_points_outside_the_domain_are_refused():
    H = PointObservation([[0.1, 0.2], [0.5, 1.0]], "spectral")
    with pytest.raises(ValueError, match=r"coords\[1\] = \(0.5, 1.0\) lies outside the "
                                         r"domain \[0, 1\) x \[0, 1\)"):
        H.apply(np.zeros((1, 1, 8, 8)), torus(8))
    with pytest.raises(ValueError, match=r"coords\[0\] .* outside the domain \[0, 2\)"):
        PointObservation([[-0.1]], "bilinear", lengths=2.0)


def test_nan_points_and_unknown_methods_are_refused():
    with pytest.raises(ValueError, match=r"coords\[1\] = \(nan, 0.2\) is not finite"):
        PointObservation([[0.1, 0.2], [np.nan, 0.2]], "spectral")
    with pytest.raises(ValueError, match="method='linear' is not supported; expected one of "
                                         r"\('spectral', 'bilinear'\)"):
        PointObservation([[0.1, 0.2]], "linear")
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'method'"):
        PointObservation([[0.1, 0.2]])


def test_shape_errors_name_the_expected_shape():
    H = PointObservation([[0.1, 0.2]], "spectral")
    with pytest.raises(ValueError, match=r"expected fields \(B, C, \*S\) with S the grid "
                                         r"shape \(8, 8\)"):
        H.apply(np.zeros((8, 8)), torus(8))
    with pytest.raises(ValueError, match="block means need a grid shape that is a multiple"):
        CoarseGrain(shape=(3, 3)).apply(np.zeros((1, 1, 8, 8)), torus(8))
    with pytest.raises(ValueError, match="needs grid="):
        MaskObservation(np.ones((4, 4), dtype=bool))


@pytest.mark.parametrize("std, message", [
    (0.0, r"std=0.0 must be finite and positive"),
    (-1.0, r"std=-1.0 must be finite and positive"),
    (np.nan, r"std=nan must be finite and positive"),
    ([0.1, 0.0, 0.2], r"std=0.0 at observation 1 must be finite and positive"),
])
def test_bad_noise_levels_are_refused(std, message):
    with pytest.raises(ValueError, match=message):
        ObservationNoise(std=std)


def test_noise_covariance_checks_and_whitening(rng):
    with pytest.raises(ValueError, match="not positive definite"):
        ObservationNoise(covariance=[[1.0, 2.0], [2.0, 1.0]])
    a = rng.standard_normal((4, 4))
    r = a @ a.T + 0.1 * np.eye(4)
    noise = ObservationNoise(covariance=r)
    e = rng.standard_normal((3, 4))
    # ||W e||^2 = e^T R^-1 e, and W^T W = R^-1
    np.testing.assert_allclose((noise.whiten(e) ** 2).sum(-1),
                               np.einsum("bi,ij,bj->b", e, np.linalg.inv(r), e))
    np.testing.assert_allclose(noise.whiten_transpose(noise.whiten(e)), e @ np.linalg.inv(r),
                               atol=1e-10)
    draws = noise.sample(4, members=range(3), seed=2)
    np.testing.assert_array_equal(draws[1:], noise.sample(4, members=[1, 2], seed=2))


def test_observations_refuse_nan_and_size_mismatch():
    H = PointObservation([[0.1, 0.2], [0.3, 0.4]], "spectral")
    with pytest.raises(ValueError, match=r"values\[1\] = nan is not finite"):
        Observations(H, [1.0, np.nan], 0.1)
    with pytest.raises(ValueError, match="given for 3 observations, but there are 2"):
        Observations(H, [1.0, 2.0], ObservationNoise(std=[0.1, 0.1, 0.1]))
    obs = Observations(H, [1.0, 2.0], 0.1)
    with pytest.raises(ValueError, match="observes 4 values of a 2-channel field"):
        obs.check(torus(8), channels=2)


# -- observation files ------------------------------------------------------------
def observation_file(points, values, **attrs):
    import xarray as xr

    return xr.Dataset(
        {"values": ("obs", values, {"units": "m s-1", "long_name": "wind speed"})},
        coords={"y": ("obs", points[:, 0], {"units": "m"}),
                "x": ("obs", points[:, 1], {"units": "m"})},
        attrs=attrs)


def test_observation_file_round_trip(rng):
    grid = torus(16, lengths=1000.0)
    pts = random_points(rng, 5, grid.lengths)
    ds = observation_file(pts, rng.standard_normal(5), noise_std=0.3)
    obs = Observations.from_xarray(ds, grid, method="bilinear", units="m")
    assert obs.n_obs == 5 and obs.noise.std == 0.3 and obs.operator.method == "bilinear"
    np.testing.assert_array_equal(obs.operator.coords, pts)
    out = obs.to_xarray()
    assert out["values"].attrs["units"] == "m s-1" and out["x"].attrs["units"] == "m"
    again = Observations.from_xarray(out, grid, units="m")
    np.testing.assert_array_equal(again.values, obs.values)
    np.testing.assert_array_equal(again.operator.coords, pts)


def test_observation_file_per_point_noise(rng):
    import xarray as xr

    grid = torus(8)
    pts = random_points(rng, 3, grid.lengths)
    ds = observation_file(pts, np.ones(3))
    ds["noise_std"] = xr.DataArray([0.1, 0.2, 0.3], dims="obs")
    obs = Observations.from_xarray(ds, grid)
    np.testing.assert_allclose(obs.noise.variance(3), [0.01, 0.04, 0.09])


@pytest.mark.parametrize("change, message", [
    ("outside", r"points\[2\] = .* lies outside the domain \[0, 1000\) x \[0, 1000\)"),
    ("nan_value", r"variable 'values'\[1\] = nan is not finite"),
    ("nan_coord", r"observation 0 has NaN or infinite coordinates"),
    ("units", r"coordinate 'y' has units 'km' but the model's domain is in 'm'"),
    ("no_noise", r"gives no noise level: set the attribute noise_std"),
    ("zero_noise", r"std=0.0 must be finite and positive"),
    ("no_coord", r"no coordinate 'x'"),
])
def test_bad_observation_files_are_refused(change, message, rng):
    grid = torus(16, lengths=1000.0)
    pts = random_points(rng, 4, grid.lengths)
    values = rng.standard_normal(4)
    attrs = {"noise_std": 0.5}
    if change == "outside":
        pts[2, 1] = 1000.0
    if change == "nan_value":
        values[1] = np.nan
    if change == "nan_coord":
        pts[0, 0] = np.nan
    if change == "no_noise":
        attrs = {}
    if change == "zero_noise":
        attrs = {"noise_std": 0.0}
    ds = observation_file(pts, values, **attrs)
    if change == "units":
        ds["y"].attrs["units"] = "km"
    if change == "no_coord":
        ds = ds.drop_vars("x")
    with pytest.raises(ValueError, match=message):
        Observations.from_xarray(ds, grid, units="m")


def test_coarse_grain_integer_shape_applies_to_every_axis():
    from sciffd.inverse import CoarseGrain

    g = torus(24)
    u = np.random.default_rng(0).normal(size=(2, 1, 24, 24))
    by_int = CoarseGrain(shape=6).apply(u, g)
    by_tuple = CoarseGrain(shape=(6, 6)).apply(u, g)
    np.testing.assert_array_equal(by_int, by_tuple)
    blocks = u.reshape(2, 1, 6, 4, 6, 4).mean(axis=(3, 5)).reshape(2, -1)
    np.testing.assert_allclose(by_int, blocks, rtol=1e-12)
