"""Tests of sciffd.domains.fluids: the 2D Navier-Stokes solver, the ns2d recipe and data.

Exact references: the Taylor-Green vortex (advection vanishes, so the
scheme reduces to Crank-Nicolson on a linear decay) and the spectral
identities of the velocity. The nonlinear forced solver is checked by the
fitted order of its time error.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from sciffd.domains.fluids import (
    BENCHMARK_FORCING,
    NavierStokes2D,
    NS2DRecipe,
    SinusoidalForcing,
    cfl_number,
    generate_ns2d,
    iter_ns2d,
    stream_function,
    velocity,
    write_ns2d,
)
from sciffd.grids import torus
from sciffd.noise import Matern
from sciffd.spectral import derivative, laplacian, resample

ROOT = Path(__file__).resolve().parents[1]
EPS = np.finfo(np.float64).eps

#: the benchmark's initial measure, N(0, 7^3 (-Laplacian + 49)^(-2.5))
BENCHMARK_INITIAL = Matern(alpha=2.5, tau=7.0, sigma=7.0**1.5)


def _zero_mean(w):
    return w - w.mean(axis=(-2, -1), keepdims=True)


def _initial(grid, members=2, seed=3, scale=1.0):
    w0 = BENCHMARK_INITIAL.sample(grid, members, seed, dtype=np.float64)[:, 0]
    return scale * _zero_mean(w0)


def _taylor_green(grid, m):
    """``w = sin(k x) sin(k y)``, ``k = 2 pi m / L`` (the same L on both axes), and ``|k|^2``."""
    y, x = grid.mesh()
    k = 2 * np.pi * m / grid.lengths[0]
    return np.sin(k * x) * np.sin(k * y), 2 * k**2


# -- (a) Taylor-Green vortex: the nonlinear term vanishes -----------------------
@pytest.mark.parametrize("length", [1.0, 2 * np.pi])
def test_taylor_green_is_crank_nicolson_to_rounding(length):
    # w is an eigenfunction of the Laplacian, so psi = w / |k|^2 and u . grad w = 0:
    # every step multiplies w by the exact CN factor R = (1 - th/2) / (1 + th/2),
    # th = dt nu |k|^2. n = 100 steps of rounding: a relative error of 1e-13 is
    # several hundred eps and far below any error of the scheme (1e-4 below).
    grid = torus(32, lengths=length)
    w0, k2 = _taylor_green(grid, m=2)
    nu, dt, t = 0.01 * length**2, 0.01, 1.0
    w = NavierStokes2D(grid, nu, None, dt).run(w0[None], t)[0, 0]
    theta = dt * nu * k2
    R = (1 - theta / 2) / (1 + theta / 2)
    np.testing.assert_allclose(w, R**100 * w0, rtol=0, atol=1e-13 * np.abs(w0).max())


@pytest.mark.parametrize("dt", [0.02, 0.01])
def test_taylor_green_decay_is_second_order(dt):
    # against the continuous decay w0 exp(-nu |k|^2 t): log R = -th - th^3/12 - th^5/80 ..,
    # so |R^n / exp(-n th) - 1| = n th^3/12 (1 + O(th^2)) = t (nu |k|^2)^3 dt^2 / 12 (..)
    grid = torus(32)
    w0, k2 = _taylor_green(grid, m=2)
    nu, t = 0.01, 1.0
    w = NavierStokes2D(grid, nu, None, dt).run(w0[None], t)[0, 0]
    exact = np.exp(-nu * k2 * t) * w0
    rel = np.abs(w - exact).max() / np.abs(exact).max()
    bound = t * (nu * k2) ** 3 * dt**2 / 12
    theta = dt * nu * k2
    assert 0.95 * bound <= rel <= bound * (1 + theta**2)


# -- (b) convergence order of the nonlinear forced solver ----------------------------
@pytest.mark.parametrize("viscosity", [1e-3, 1e-2])
def test_time_step_convergence_order_is_two(viscosity):
    # a vigorous flow (the benchmark's initial field x10, CFL 0.52 at the largest dt),
    # forced; errors at dt, dt/2, dt/4 against dt/16, relative L2 at t = 2
    grid = torus(32)
    w0 = _initial(grid, scale=10.0)
    dts = np.array([0.02, 0.01, 0.005])
    ref = NavierStokes2D(grid, viscosity, BENCHMARK_FORCING, dts[0] / 16).run(w0, 2.0)
    errors = []
    for dt in dts:
        w = NavierStokes2D(grid, viscosity, BENCHMARK_FORCING, dt).run(w0, 2.0)
        errors.append(np.sqrt(((w - ref) ** 2).mean() / (ref**2).mean()))
    order = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert 1.8 <= order <= 2.3, (errors, order)


# -- (c) velocity and stream function -------------------------------------------------
@pytest.mark.parametrize("lengths", [(1.0, 1.0), (2.0, 3.0)])
def test_velocity_is_divergence_free_and_its_curl_is_w(lengths):
    grid = torus((32, 48), lengths=lengths)
    w = _initial(grid, members=3, seed=5)
    u, v = velocity(w, grid)
    scale = np.abs(w).max()
    div = derivative(u, grid, axis=1) + derivative(v, grid, axis=0)
    curl = derivative(v, grid, axis=1) - derivative(u, grid, axis=0)
    # spectral derivatives of band-limited fields are exact up to the rounding of a
    # few FFTs (1536 points), which a derivative amplifies by up to k_max / k_min = 24:
    # 1e-12 of the field's scale is about 5000 eps
    tol = 1e-12 * scale
    assert np.abs(div).max() < tol
    np.testing.assert_allclose(curl, w, rtol=0, atol=tol)
    psi = stream_function(w, grid)
    np.testing.assert_allclose(-laplacian(psi, grid), w, rtol=0, atol=tol)
    np.testing.assert_allclose(u, derivative(psi, grid, axis=0), rtol=0, atol=tol)
    np.testing.assert_allclose(v, -derivative(psi, grid, axis=1), rtol=0, atol=tol)


def test_velocity_of_a_single_mode():
    # w = sin(2 pi x): psi = sin(2 pi x) / (4 pi^2), u = psi_y = 0, v = -psi_x
    grid = torus(16)
    y, x = grid.mesh()
    u, v = velocity(np.sin(2 * np.pi * x), grid)
    np.testing.assert_allclose(u, 0.0, atol=1e-15)
    np.testing.assert_allclose(v, -np.cos(2 * np.pi * x) / (2 * np.pi), atol=1e-15)
    psi = stream_function(np.sin(2 * np.pi * x) + 3.0, grid)  # the mean is ignored
    np.testing.assert_allclose(psi, np.sin(2 * np.pi * x) / (4 * np.pi**2), atol=1e-15)


def test_cfl_number_formula():
    grid = torus(16)
    y, x = grid.mesh()
    # v = -cos(2 pi x) / (2 pi), u = 0: c = dt max|v| / dy
    c = cfl_number(np.sin(2 * np.pi * x), grid, 0.1)
    assert c == pytest.approx(0.1 * 16 / (2 * np.pi), rel=1e-12)


# -- (d) invariants ---------------------------------------------------------------------
def test_mean_vorticity_stays_zero():
    grid = torus(32)
    w0 = _initial(grid, scale=10.0)
    w = NavierStokes2D(grid, 1e-3, BENCHMARK_FORCING, 0.01).run(w0, 1.0, [0.5, 1.0])
    rms = np.sqrt((w**2).mean())
    assert np.abs(w.mean(axis=(-2, -1))).max() < 1e-14 * rms


def test_forcing_with_mean_is_projected():
    # a forcing with a mean would drive the (zero) mean vorticity: the solver drops it
    grid = torus(16)
    ns = NavierStokes2D(grid, 1e-2, lambda x, y: 1.0 + 0 * x, 0.01)
    w = ns.run(_initial(grid), 0.5)
    assert np.abs(w.mean(axis=(-2, -1))).max() < 1e-15


def test_batch_members_are_independent():
    grid = torus(32)
    w0 = _initial(grid, members=3, scale=5.0)
    ns = NavierStokes2D(grid, 1e-3, BENCHMARK_FORCING, 0.01)
    together = ns.run(w0, 0.5, [0.25, 0.5])
    alone = ns.run(w0[1:2], 0.5, [0.25, 0.5])
    np.testing.assert_allclose(together[1:2], alone, rtol=0, atol=1e-14)


def test_snapshots_and_dtype():
    grid = torus(16)
    w0 = _initial(grid).astype(np.float32)
    ns = NavierStokes2D(grid, 1e-3, BENCHMARK_FORCING, 0.01)
    w = ns.run(w0, 0.1, [0.0, 0.05, 0.1])
    assert w.shape == (2, 3, 16, 16) and w.dtype == np.float32
    np.testing.assert_allclose(w[:, 0], w0, atol=1e-6)
    np.testing.assert_allclose(w[:, 2], ns.run(w0, 0.1)[:, 0], atol=0)


def test_progress_bar(capsys):
    grid = torus(16)
    ns = NavierStokes2D(grid, 1e-3, None, 0.01)
    ns.run(_initial(grid), 0.05, progress=True)
    assert "Navier-Stokes 2D" in capsys.readouterr().err
    ns.run(_initial(grid), 0.05)
    assert capsys.readouterr().err == ""


# -- (e) bad input ------------------------------------------------------------------------
@pytest.fixture
def solver():
    return NavierStokes2D(torus(16), 1e-3, BENCHMARK_FORCING, 0.01)


def test_nan_initial_field(solver):
    w0 = _initial(solver.grid)
    w0[1, 3, 4] = np.nan
    with pytest.raises(ValueError, match=r"w0 contains NaN or infinite .*members \[1\]"):
        solver.run(w0, 0.1)


@pytest.mark.parametrize("shape", [(16, 16), (2, 16, 8), (2, 1, 16, 16)])
def test_wrong_shape(solver, shape):
    with pytest.raises(ValueError, match=r"w0 has shape .*expected \(B, 16, 16\)"):
        solver.run(np.zeros(shape), 0.1)


def test_nonzero_mean(solver):
    with pytest.raises(ValueError, match="nonzero mean .*subtract it"):
        solver.run(_initial(solver.grid) + 0.5, 0.1)


def test_complex_initial_field(solver):
    with pytest.raises(TypeError, match="w0 must be a real array"):
        solver.run(np.zeros((1, 16, 16), dtype=complex), 0.1)


@pytest.mark.parametrize("dt", [0.0, -0.01, math.nan, math.inf])
def test_bad_time_step(dt):
    with pytest.raises(ValueError, match=r"time_step=.* must be finite and positive"):
        NavierStokes2D(torus(16), 1e-3, None, dt)


@pytest.mark.parametrize("nu", [0.0, -1e-3, math.nan])
def test_bad_viscosity(nu):
    with pytest.raises(ValueError, match=r"viscosity=.* must be finite and positive"):
        NavierStokes2D(torus(16), nu, None, 0.01)


def test_bad_grid_and_forcing():
    with pytest.raises(ValueError, match="needs a 2D grid"):
        NavierStokes2D(torus(16, ndim=3), 1e-3, None, 0.01)
    with pytest.raises(TypeError, match="grid must be a sciffd.grids.TorusGrid"):
        NavierStokes2D((16, 16), 1e-3, None, 0.01)
    with pytest.raises(TypeError, match="forcing must be a callable f.x, y. or None, got ndarray"):
        NavierStokes2D(torus(16), 1e-3, np.zeros((16, 16)), 0.01)
    with pytest.raises(ValueError, match="does not broadcast to the grid shape"):
        NavierStokes2D(torus(16), 1e-3, lambda x, y: np.zeros(3), 0.01)
    with pytest.raises(ValueError, match="NaN or infinite"):
        NavierStokes2D(torus(16), 1e-3, lambda x, y: np.full_like(x, np.nan), 0.01)


def test_unstable_time_step_is_refused():
    grid = torus(32)
    w0 = _initial(grid, scale=10.0)
    dt = 0.1
    assert cfl_number(w0, grid, dt) > 1
    with pytest.raises(ValueError, match=r"time_step=0.1 is unstable .*CFL number .*at t=0.*"
                                         r"use time_step <= "):
        NavierStokes2D(grid, 1e-3, BENCHMARK_FORCING, dt).run(w0, 1.0)


def test_bad_times(solver):
    w0 = _initial(solver.grid)
    with pytest.raises(ValueError, match=r"t_final=0.105 is not a multiple of time_step=0.01"):
        solver.run(w0, 0.105)
    with pytest.raises(ValueError, match="t_final=-1.0 must be a finite, non-negative time"):
        solver.run(w0, -1.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        solver.run(w0, 0.1, [0.05, 0.05])
    with pytest.raises(ValueError, match="beyond t_final"):
        solver.run(w0, 0.1, [0.2])
    with pytest.raises(ValueError, match="snapshot_times entry=0.015 is not a multiple"):
        solver.run(w0, 0.1, [0.015])


def test_forcing_expression():
    assert BENCHMARK_FORCING.expression == "0.1 * (sin(2*pi*(x + y)) + cos(2*pi*(x + y)))"
    f = SinusoidalForcing(amplitude=0.5, mode_x=2, mode_y=0)
    assert f.expression == "0.5 * (sin(2*pi*(2*x)) + cos(2*pi*(2*x)))"
    y, x = torus(8).mesh()
    np.testing.assert_allclose(BENCHMARK_FORCING(x, y), 0.1 * (np.sin(2 * np.pi * (x + y))
                                                              + np.cos(2 * np.pi * (x + y))))
    with pytest.raises(TypeError, match="mode_x=1.5 must be an integer"):
        SinusoidalForcing(mode_x=1.5)


# -- recipe ---------------------------------------------------------------------------------
def test_benchmark_initial_measure_eigenvalues():
    # N(0, 7^3 (-Laplacian + 49)^(-2.5)) on [0, 1)^2: -Laplacian e_m = 4 pi^2 |m|^2 e_m
    grid = torus(16)
    lam = NS2DRecipe().initial.eigenvalues(grid)
    my = grid.mode_indices(0)[:, None]
    mx = grid.mode_indices(1)[None, :]
    expected = 7.0**3 * (4 * np.pi**2 * (mx**2 + my**2) + 49.0) ** -2.5
    expected[~grid.nyquist_mask] = 0.0
    np.testing.assert_allclose(lam, expected, rtol=1e-14)


def test_recipe_toml_agrees_with_code():
    with open(ROOT / "datasets" / "ns2d.toml", "rb") as f:
        data = tomllib.load(f)
    recipe = NS2DRecipe()
    assert data == recipe.to_dict()
    assert NS2DRecipe.from_dict(data) == recipe


def test_recipe_validation():
    with pytest.raises(ValueError, match="is not a multiple of time_step"):
        NS2DRecipe(snapshot_times=(1.0, 1.005))
    with pytest.raises(ValueError, match="strictly increasing"):
        NS2DRecipe(snapshot_times=(2.0, 1.0))
    with pytest.raises(ValueError, match="members=0 must be a positive integer"):
        NS2DRecipe(members=0)
    with pytest.raises(TypeError, match="must be a 2D sciffd.noise.Matern"):
        NS2DRecipe(initial=Matern(alpha=1.0, ndim=1))
    bad = NS2DRecipe().to_dict()
    bad["forcing"]["expression"] = "sin(x)"
    with pytest.raises(ValueError, match="disagrees with its parameters"):
        NS2DRecipe.from_dict(bad)


def test_initial_condition_has_zero_mean_and_is_nested():
    recipe = NS2DRecipe()
    w32 = recipe.initial_condition(torus(32), [0, 5], seed=2)
    w16 = recipe.initial_condition(torus(16), [5], seed=2)
    assert np.abs(w32.mean(axis=(-2, -1))).max() < 1e-15
    # the same member has the same low modes at every resolution
    np.testing.assert_allclose(resample(w32[1:], torus(32), 16), w16, atol=1e-12)


# -- dataset ----------------------------------------------------------------------------------
#: a small, fast recipe with the dataset's structure
TINY = NS2DRecipe(solver_resolution=16, output_resolution=16, time_step=0.01,
                  snapshot_times=(0.05, 0.1), members=3, test_members=1)


def test_generate_ns2d_layout():
    ds = generate_ns2d(3, resolution=8, seed=4, recipe=TINY, progress=False)
    w = ds["vorticity"]
    assert w.dims == ("member", "time", "y", "x")
    assert w.shape == (3, 2, 8, 8) and w.dtype == np.float32
    assert w.attrs["units"] == "1" and w.attrs["long_name"] == "vorticity"
    np.testing.assert_array_equal(ds["member"], [0, 1, 2])
    np.testing.assert_allclose(ds["time"], [0.05, 0.1])
    np.testing.assert_allclose(ds["x"], np.arange(8) / 8)
    assert ds["x"].attrs["axis"] == "X" and ds["y"].attrs["axis"] == "Y"
    assert ds["time"].attrs == {"long_name": "non-dimensional time", "units": "1", "axis": "T"}
    for c in ("x", "y"):
        assert ds[c].attrs["units"] == "1" and "long_name" in ds[c].attrs
    a = ds.attrs
    assert a["Conventions"] == "CF-1.8"
    assert a["source"].startswith("sciffd ") and a["source"].endswith(" ns2d solver")
    assert a["viscosity"] == 1e-3 and a["time_step"] == 0.01
    assert a["forcing"] == BENCHMARK_FORCING.expression
    assert a["initial_measure"].startswith("Matern(alpha=2.5, tau=7.0")
    assert "N(0, 343 (-Laplacian + 49)^(-2.5))" in a["initial_measure"]
    assert a["solver_resolution"] == 16 and a["output_resolution"] == 8
    assert a["seed"] == 4 and a["members"] == 3
    assert "generate_ns2d(members=3, resolution=8, seed=4)" in a["history"]


def test_members_reproduce_in_any_subset():
    full = generate_ns2d(3, resolution=16, seed=4, recipe=TINY, progress=False)
    part = generate_ns2d([2, 0], resolution=16, seed=4, recipe=TINY, progress=False)
    np.testing.assert_array_equal(part["member"], [2, 0])
    np.testing.assert_array_equal(part["vorticity"].values,
                                  full["vorticity"].sel(member=[2, 0]).values)


def test_output_is_the_restriction_of_the_solve():
    # resolution above solver_resolution: the solve runs at the output resolution
    fine = generate_ns2d([1], resolution=32, seed=4, recipe=TINY, progress=False)
    assert fine.attrs["solver_resolution"] == 32
    solver = TINY.solver(32)
    w0 = TINY.initial_condition(solver.grid, [1], seed=4)
    w = solver.run(w0, 0.1, TINY.snapshot_times)
    np.testing.assert_allclose(fine["vorticity"].values, w, atol=1e-6)


def test_progress_of_generation(capsys):
    generate_ns2d(1, resolution=16, recipe=TINY, progress=True)
    assert "ns2d" in capsys.readouterr().err
    generate_ns2d(1, resolution=16, recipe=TINY, progress=False)
    assert capsys.readouterr().err == ""


def test_bad_generation_arguments():
    with pytest.raises(ValueError, match="members=0 must be a positive count"):
        generate_ns2d(0, recipe=TINY, progress=False)
    with pytest.raises(ValueError, match="members=.* non-negative integer member ids"):
        generate_ns2d([-1], recipe=TINY, progress=False)
    with pytest.raises(ValueError, match="resolution=1 must be an integer of at least 3"):
        generate_ns2d(1, resolution=1, recipe=TINY, progress=False)
    with pytest.raises(ValueError, match="resolution=2 must be .* hold no other mode"):
        generate_ns2d(1, resolution=2, recipe=TINY, progress=False)
    with pytest.raises(TypeError, match="recipe must be an NS2DRecipe"):
        generate_ns2d(1, recipe={"viscosity": 1e-3}, progress=False)


def test_chunks_and_file_hold_the_same_fields(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("netCDF4")
    whole = generate_ns2d(5, resolution=8, seed=1, recipe=TINY, progress=False)
    chunks = list(iter_ns2d(5, resolution=8, seed=1, recipe=TINY, chunk_size=2,
                            progress=False))
    assert [c.sizes["member"] for c in chunks] == [2, 2, 1]
    np.testing.assert_array_equal(xr.concat(chunks, "member")["vorticity"].values,
                                  whole["vorticity"].values)

    path = write_ns2d(tmp_path / "ns2d.nc", 5, resolution=8, seed=1, recipe=TINY,
                      chunk_size=2, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ns2d.nc"]
    with xr.open_dataset(path, engine="netcdf4") as ds:
        np.testing.assert_array_equal(ds["member"], np.arange(5))
        np.testing.assert_array_equal(ds["vorticity"].values, whole["vorticity"].values)
        assert ds["vorticity"].dtype == np.float32
        assert ds.attrs["members"] == 5 and "write_ns2d" in ds.attrs["history"]
        assert ds["time"].attrs["axis"] == "T"


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="members=0"):
        write_ns2d(tmp_path / "ns2d.nc", 0, recipe=TINY, progress=False)
    assert list(tmp_path.iterdir()) == []
