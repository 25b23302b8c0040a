"""Observations ``y = H u + eta`` with Gaussian noise ``eta ~ N(0, R)``.

:class:`ObservationNoise` holds ``R``: a scalar standard deviation
(``R = sigma^2 I``), one per observation (``R`` diagonal) or a full
covariance matrix. It whitens residuals with ``W = L^(-1)``, ``R = L L^T``
(Cholesky), so that ``||W r||^2 = r^T R^(-1) r``.

:class:`Observations` bundles an operator, the observed values and the
noise, checks them, and reads and writes an observation file in one of
two forms:

- point observations: one point per entry of the dim ``obs``, the point
  coordinates as variables or coordinates ``x``, ``y`` (``z``) along
  ``obs``, the observed ``values`` and the attribute ``noise_std`` (or a
  variable ``noise_std`` along ``obs``);
- coarse-grid observations (:class:`~sciffd.inverse.CoarseGrain`): the
  coarse field itself as a CF gridded variable ``values`` with the grid's
  axis names as dims (``y``, ``x`` in 2D) and the coarse nodes
  ``j L_i / Nc_i`` as coordinates (with ``units`` and ``period``), the
  attributes ``operator`` (``"block_mean"`` or ``"spectral"``),
  ``coarse_shape`` and ``noise_std`` (or a variable ``noise_std`` on the
  coarse grid), and ``cell_methods = "y: x: mean"`` on the variable of a
  block mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import backend
from .._nested import member_generator
from ..grids import AXIS_NAMES, TorusGrid
from ..spectral import as_array_like
from .operators import (
    METHODS_COARSE,
    METHODS_POINT,
    CoarseGrain,
    MaskObservation,
    ObservationOperator,
    PointObservation,
    check_points_in_domain,
)

__all__ = ["OBSERVATION_NOISE_STREAM", "ObservationNoise", "Observations"]

#: the nested-noise stream of observation noise draws
#: (``member_generator(seed, member, 0, OBSERVATION_NOISE_STREAM)``)
OBSERVATION_NOISE_STREAM = 2**30


class ObservationNoise:
    """Gaussian observation noise ``N(0, R)``.

    Parameters
    ----------
    std : float or array of shape ``(n_obs,)``, optional
        Standard deviation: one for every observation (``R = std^2 I``) or
        one per observation (``R = diag(std^2)``). Each must be finite and
        positive.
    covariance : array, shape ``(n_obs, n_obs)``, optional
        A full covariance matrix (symmetric positive definite), instead of
        ``std``.

    Examples
    --------
    >>> R = ObservationNoise(std=0.1)
    >>> R.variance(3).tolist()
    [0.010000000000000002, 0.010000000000000002, 0.010000000000000002]
    >>> ObservationNoise(std=0.0)
    Traceback (most recent call last):
    ...
    ValueError: std=0.0 must be finite and positive: ...
    """

    def __init__(self, std: Any = None, covariance: Any = None) -> None:
        if (std is None) == (covariance is None):
            raise TypeError("give exactly one of std= (a scalar or one per observation) or "
                            f"covariance= (a matrix); got std={std!r}, "
                            f"covariance={covariance!r}")
        self.std = None
        self.covariance = None
        self.size: int | None = None
        if std is not None:
            if isinstance(std, bool):
                raise TypeError(f"std={std!r} must be a number or an array of numbers")
            try:
                s = np.array(std, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"std={std!r} must be a number or an array of numbers") from None
            if s.ndim > 1:
                raise ValueError(
                    f"std has shape {s.shape}; give a scalar or one value per observation, "
                    "and a covariance matrix as covariance="
                )
            bad = np.flatnonzero(~(np.isfinite(s.reshape(-1)) & (s.reshape(-1) > 0)))
            if bad.size:
                where = "" if s.ndim == 0 else f" at observation {int(bad[0])}"
                value = float(s.reshape(-1)[bad[0]])
                raise ValueError(
                    f"std={value!r}{where} must be finite and positive: observations "
                    "without noise make the posterior singular; use a small std for "
                    "nearly exact data"
                )
            if s.ndim == 1:
                if s.size == 0:
                    raise ValueError("std is an empty array; expected one value per observation")
                self.size = int(s.size)
            self.std = float(s) if s.ndim == 0 else s
            return
        try:
            r = np.array(covariance, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError("covariance must be a square matrix of numbers") from None
        if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] == 0:
            raise ValueError(f"covariance has shape {r.shape}; expected a square (n_obs, n_obs)")
        if not np.isfinite(r).all():
            raise ValueError("covariance has NaN or infinite entries")
        if not np.allclose(r, r.T, rtol=1e-10, atol=1e-14 * np.abs(r).max()):
            raise ValueError("covariance must be symmetric")
        try:
            lower = np.linalg.cholesky(r)
        except np.linalg.LinAlgError:
            raise ValueError(
                "covariance is not positive definite (its Cholesky factorisation failed); "
                "every observation needs positive noise"
            ) from None
        self.covariance = r
        self.size = int(r.shape[0])
        self._lower = lower
        self._whitener = np.linalg.inv(lower)  # W = L^(-1)

    # -- shape -----------------------------------------------------------------
    def check(self, n_obs: int) -> None:
        """Raise ``ValueError`` if the noise is sized for another number of observations."""
        if self.size is not None and self.size != n_obs:
            raise ValueError(
                f"the observation noise is given for {self.size} observations, but there "
                f"are {n_obs}"
            )

    @property
    def is_scalar(self) -> bool:
        """Whether ``R = sigma^2 I``."""
        return self.covariance is None and np.ndim(self.std) == 0

    def variance(self, n_obs: int) -> np.ndarray:
        """The diagonal of ``R``, shape ``(n_obs,)``."""
        self.check(n_obs)
        if self.covariance is not None:
            return np.diag(self.covariance).copy()
        return np.broadcast_to(np.asarray(self.std) ** 2, (n_obs,)).copy()

    def matrix(self, n_obs: int) -> np.ndarray:
        """``R`` as a dense matrix ``(n_obs, n_obs)``."""
        self.check(n_obs)
        if self.covariance is not None:
            return self.covariance.copy()
        return np.diag(self.variance(n_obs))

    def whitener(self, n_obs: int) -> np.ndarray:
        """``W = L^(-1)`` with ``R = L L^T``, dense ``(n_obs, n_obs)``."""
        self.check(n_obs)
        if self.covariance is not None:
            return self._whitener.copy()
        return np.diag(1.0 / np.sqrt(self.variance(n_obs)))

    # -- on arrays (numpy or torch), shape (B, n_obs) -----------------------------
    def whiten(self, r: Any) -> Any:
        """``W r`` for residuals ``r`` of shape ``(B, n_obs)``."""
        n = int(r.shape[-1])
        self.check(n)
        if self.covariance is None:
            inv_std = 1.0 / np.broadcast_to(np.asarray(self.std, dtype=np.float64), (n,))
            return r * as_array_like(inv_std, r)
        return r @ as_array_like(self._whitener.T, r)

    def whiten_transpose(self, z: Any) -> Any:
        """``W^T z`` for ``z`` of shape ``(B, n_obs)``."""
        if self.covariance is None:
            return self.whiten(z)
        self.check(int(z.shape[-1]))
        return z @ as_array_like(self._whitener, z)

    def sample(self, n_obs: int, members: int | Sequence[int] = 1, seed: int = 0) -> np.ndarray:
        """Draws of ``eta``, shape ``(M, n_obs)`` (float64), nested like the field noise.

        Member ``m`` uses ``member_generator(seed, m, 0, OBSERVATION_NOISE_STREAM)``.
        """
        from ..noise import _check_seed, _member_ids

        ids = _member_ids(members)
        seed = _check_seed(seed)
        self.check(n_obs)
        z = np.stack([member_generator(seed, int(m), 0, OBSERVATION_NOISE_STREAM)
                      .standard_normal(n_obs) for m in ids])
        if self.covariance is not None:
            return z @ self._lower.T
        return z * np.sqrt(self.variance(n_obs))

    def to_config(self) -> dict:
        """A JSON-ready description."""
        if self.covariance is not None:
            return {"covariance": self.covariance.tolist()}
        return {"std": self.std if np.ndim(self.std) == 0 else self.std.tolist()}

    def __repr__(self) -> str:
        if self.covariance is not None:
            return f"ObservationNoise(covariance=<{self.size}x{self.size}>)"
        if np.ndim(self.std) == 0:
            return f"ObservationNoise(std={self.std:g})"
        return f"ObservationNoise(std=<{self.size} values>)"


def _check_values(values: Any, name: str = "values") -> np.ndarray:
    try:
        y = np.array(backend.to_numpy(values), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers, shape (n_obs,)") from None
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"{name} has shape {y.shape}; expected a non-empty (n_obs,)")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ValueError(
            f"{name}[{int(bad[0])}] = {y[bad[0]]} is not finite ({bad.size} NaN or infinite "
            "values); drop those observations before conditioning"
        )
    return y


def _noise_attribute(ds: Any, da: Any, where: str) -> Any:
    """The ``noise_std`` attribute of the variable or the dataset, or a clear error."""
    if "noise_std" in da.attrs or "noise_std" in ds.attrs:
        return da.attrs.get("noise_std", ds.attrs.get("noise_std"))
    raise ValueError(
        "the dataset gives no noise level: set the attribute noise_std (a standard "
        f"deviation in the units of the values) or a variable noise_std {where}"
    )


def _file_attrs(da: Any, variable: str, units: str | None) -> dict:
    """The metadata an observation file gives :class:`Observations`."""
    attrs = {"units": da.attrs.get("units", "1"),
             "long_name": da.attrs.get("long_name", f"observed {variable}"),
             "name": variable}
    if units is not None:
        attrs["coordinate_units"] = units
    return attrs


class Observations:
    """Observed values ``y`` of ``H u + eta``.

    Parameters
    ----------
    operator : ObservationOperator
        ``H``.
    values : array, shape ``(n_obs,)``
        The observed values ``y``, finite.
    noise : ObservationNoise or float
        ``eta ~ N(0, R)``; a number is a standard deviation.
    attrs : mapping, optional
        Metadata written by :meth:`to_xarray`: ``units`` and ``long_name``
        of the values, ``coordinate_units`` of point coordinates.

    Examples
    --------
    >>> obs = Observations(PointObservation([[0.5, 0.25]], "spectral"), [1.2], 0.1)
    >>> obs.n_obs
    1
    """

    def __init__(self, operator: ObservationOperator, values: Any,
                 noise: ObservationNoise | float,
                 attrs: Mapping[str, Any] | None = None) -> None:
        if not isinstance(operator, ObservationOperator):
            raise TypeError(
                "operator must be an observation operator (PointObservation, "
                f"MaskObservation, CoarseGrain, Blur, LinearOperator), got "
                f"{type(operator).__name__}"
            )
        self.operator = operator
        self.values = _check_values(values)
        if not isinstance(noise, ObservationNoise):
            noise = ObservationNoise(std=noise)
        noise.check(self.values.size)
        self.noise = noise
        self.attrs = dict(attrs or {})

    @property
    def n_obs(self) -> int:
        """Number of observations."""
        return int(self.values.size)

    def check(self, grid: TorusGrid, channels: int = 1) -> None:
        """Raise ``ValueError`` unless the operator gives ``n_obs`` values on ``grid``."""
        expected = self.operator.n_obs(grid, channels)
        if expected != self.n_obs:
            raise ValueError(
                f"{self.operator!r} observes {expected} values of a {channels}-channel field "
                f"on {grid}, but {self.n_obs} values were given"
            )

    def residual(self, u: Any, grid: TorusGrid) -> Any:
        """``y - H u``, shape ``(B, n_obs)``, in the namespace of ``u``."""
        hu = self.operator.apply(u, grid)
        return as_array_like(self.values, hu) - hu

    def misfit(self, u: Any, grid: TorusGrid) -> np.ndarray:
        """``||W (H u - y)|| / sqrt(n_obs)`` per field (``||H u - y|| / (sqrt(n) sigma)``).

        About 1 for fields consistent with the data, growing with the
        distance to them. Returns numpy, shape ``(B,)``.
        """
        r = backend.to_numpy(self.noise.whiten(self.residual(u, grid)))
        return np.sqrt((r**2).mean(axis=-1))

    # -- files ------------------------------------------------------------------
    @classmethod
    def from_xarray(
        cls,
        ds: Any,
        grid: TorusGrid,
        *,
        variable: str = "values",
        method: str = "spectral",
        units: str | None = None,
    ) -> Observations:
        """Observations from an observation file (an ``xarray.Dataset``).

        Reads both forms of the file (see the module docstring): point
        observations, whose variable lies along the dim ``obs``, and
        coarse-grid observations, whose variable lies on the grid's axis
        dims and whose attribute ``operator`` names the coarse graining.

        Parameters
        ----------
        ds : xarray.Dataset
            Point observations: one observation per entry of the dim
            ``obs``; coordinates (or variables) named after the grid axes
            (``y``, ``x`` in 2D) give each point's position, ``variable``
            its value; the noise is the attribute ``noise_std`` (of the
            dataset or the variable), or a variable ``noise_std`` along
            ``obs``. Coarse-grid observations: ``variable`` on the dims
            ``grid.dims`` of a coarse grid of the same domain, coordinates
            the coarse nodes ``j L_i / Nc_i``; attributes (of the dataset
            or the variable) ``operator`` (``"block_mean"`` or
            ``"spectral"``), optionally ``coarse_shape`` (checked against
            the variable's shape) and ``noise_std`` (or a variable
            ``noise_std`` on the same dims). They are read into
            ``CoarseGrain(shape=coarse_shape, method=operator)`` with the
            values flattened in the operator's order (C order over
            ``grid.dims``).
        grid : TorusGrid
            The model's domain and the grid the observations condition:
            points must lie in ``[0, L_i)``; coarse nodes must be those of
            ``L_i``, and block means need a ``grid`` whose shape is a
            multiple of the coarse shape (spectral coarse observations fit
            any resolution).
        variable : str
            Name of the observed variable.
        method : {"spectral", "bilinear"}
            Interpolation of :class:`PointObservation` (point files only;
            a coarse file names its operator itself).
        units : str, optional
            The model's domain units; coordinates whose ``units`` attribute
            says otherwise are refused.

        Raises
        ------
        ValueError
            For a missing variable or coordinate, NaN values or
            coordinates, points outside the domain, coordinates in other
            units, or a missing or non-positive noise level; for a coarse
            file also an unknown or missing ``operator``, a
            ``coarse_shape`` that disagrees with the variable, coordinates
            that are not the coarse nodes of the model's domain, and
            block means on a grid that is not a multiple of the coarse
            shape.
        """
        import xarray as xr

        if not isinstance(ds, xr.Dataset):
            raise TypeError(f"ds must be an xarray.Dataset, got {type(ds).__name__}")
        if not isinstance(grid, TorusGrid):
            raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
        if method not in METHODS_POINT:
            raise ValueError(f"method={method!r} is not supported; expected one of "
                             f"{METHODS_POINT}")
        if variable not in ds.variables:
            names = sorted(map(str, ds.variables))
            raise ValueError(
                f"the dataset has no variable {variable!r}; it has {names}; pass "
                "variable= to name the observed one"
            )
        da = ds[variable]
        if "obs" not in da.dims and _file_attr(ds, da, "operator") is not None:
            return cls._coarse_from_xarray(ds, grid, variable, units)
        if da.dims != ("obs",):
            raise ValueError(
                f"variable {variable!r} has dims {da.dims}; expected ('obs',), one value "
                f"per observation, or the coarse grid dims {AXIS_NAMES[grid.ndim]} of a "
                "coarse-grid observation file with an attribute 'operator'"
            )
        columns = []
        for name in AXIS_NAMES[grid.ndim]:
            if name not in ds.variables:
                raise ValueError(
                    f"the dataset has no coordinate {name!r}; a {grid.ndim}-dimensional "
                    f"observation file needs {AXIS_NAMES[grid.ndim]} along 'obs'"
                )
            c = ds[name]
            if c.dims != ("obs",):
                raise ValueError(f"coordinate {name!r} has dims {c.dims}; expected ('obs',)")
            c_units = c.attrs.get("units")
            if units is not None and c_units is not None and str(c_units) != str(units):
                raise ValueError(
                    f"coordinate {name!r} has units {c_units!r} but the model's domain is in "
                    f"{units!r}; convert the coordinates to {units!r} first"
                )
            columns.append(np.asarray(c.values, dtype=np.float64))
        points = np.stack(columns, axis=1)
        bad = np.flatnonzero(~np.isfinite(points).all(axis=1))
        if bad.size:
            raise ValueError(
                f"observation {int(bad[0])} has NaN or infinite coordinates "
                f"{tuple(float(v) for v in points[bad[0]])} ({bad.size} such points)"
            )
        check_points_in_domain(points, grid.lengths, name="points")
        values = _check_values(da.values, name=f"variable {variable!r}")

        if "noise_std" in ds.variables:
            std = np.asarray(ds["noise_std"].values, dtype=np.float64)
        else:
            std = _noise_attribute(ds, da, "along 'obs'")
        noise = ObservationNoise(std=std)
        return cls(PointObservation(points, method), values, noise,
                   _file_attrs(da, variable, units))

    @classmethod
    def _coarse_from_xarray(cls, ds: Any, grid: TorusGrid, variable: str,
                            units: str | None) -> Observations:
        """Coarse-grid observations from a file checked by :meth:`from_xarray` so far."""
        da = ds[variable]
        dims = AXIS_NAMES[grid.ndim]
        kind = str(_file_attr(ds, da, "operator"))
        if kind not in METHODS_COARSE:
            raise ValueError(
                f"attribute operator={kind!r} is not a coarse graining sciffd knows; expected "
                f"one of {METHODS_COARSE}"
            )
        if sorted(da.dims) != sorted(dims):
            raise ValueError(
                f"variable {variable!r} has dims {da.dims}; a coarse-grid observation file "
                f"of a {grid.ndim}-dimensional domain holds it on the dims {dims}"
            )
        da = da.transpose(*dims)
        shape = tuple(int(da.sizes[d]) for d in dims)
        given = _file_attr(ds, da, "coarse_shape")
        if given is not None:
            try:
                recorded = tuple(int(n) for n in np.atleast_1d(np.asarray(given)).reshape(-1))
            except (TypeError, ValueError):
                raise ValueError(f"attribute coarse_shape={given!r} is not a list of "
                                 "integers") from None
            if recorded != shape:
                raise ValueError(
                    f"attribute coarse_shape={list(recorded)} disagrees with the shape "
                    f"{list(shape)} of variable {variable!r} on {dims}"
                )
        if min(shape) < 2:
            raise ValueError(
                f"variable {variable!r} has the shape {shape} on {dims}; a coarse grid "
                "needs at least 2 nodes per axis"
            )
        coarse = grid.with_shape(shape)
        file_units = set()
        for axis, name in enumerate(dims):
            if name not in ds.coords and name not in ds.variables:
                raise ValueError(
                    f"the dataset has no coordinate {name!r}; a coarse-grid observation "
                    f"file needs the coarse nodes of every axis {dims}"
                )
            c = ds[name]
            if c.dims != (name,):
                raise ValueError(f"coordinate {name!r} has dims {c.dims}; expected ({name!r},)")
            c_units = c.attrs.get("units")
            if c_units is not None:
                file_units.add(str(c_units))
            if units is not None and c_units is not None and str(c_units) != str(units):
                raise ValueError(
                    f"coordinate {name!r} has units {c_units!r} but the model's domain is in "
                    f"{units!r}; convert the coordinates to {units!r} first"
                )
            x = np.asarray(c.values, dtype=np.float64)
            if not np.isfinite(x).all():
                raise ValueError(f"coordinate {name!r} has NaN or infinite values")
            length = grid.lengths[axis]
            period = c.attrs.get("period")
            if period is not None:
                period = float(np.asarray(period).reshape(-1)[0])
                if not abs(period - length) <= 1e-9 * length:
                    raise ValueError(
                        f"coordinate {name!r} has period {period:g} but the model's domain "
                        f"has length {length:g} along {name!r}; the observations belong to "
                        "another domain"
                    )
            nodes = coarse.coords(axis)
            if not np.allclose(x, nodes, rtol=0, atol=1e-9 * length):
                span = shape[axis] * (x[1] - x[0])
                raise ValueError(
                    f"coordinate {name!r} is not the coarse nodes j L / Nc of the model's "
                    f"domain (L = {length:g}, Nc = {shape[axis]}, expected "
                    f"{_preview(nodes)}, got {_preview(x)}, which span a period of "
                    f"{span:g}); the observations belong to another domain, or their "
                    "nodes are shifted or not ascending"
                )
        operator = CoarseGrain(shape=shape, method=kind)
        try:
            operator.obs_grid(grid)
        except ValueError:
            raise _ResolutionError(
                f"block-mean observations on the coarse grid {_shape_text(shape)} need a "
                f"grid whose shape is a multiple of it on every axis, but the grid is "
                f"{_shape_text(grid.shape)}; choose a resolution that is a multiple of "
                f"{_shape_text(shape)}, or observe with the operator 'spectral' (valid at "
                "any resolution)"
            ) from None
        field = np.asarray(da.values, dtype=np.float64)
        bad = np.argwhere(~np.isfinite(field))
        if bad.size:
            where = ", ".join(f"{d}={int(i)}" for d, i in zip(dims, bad[0], strict=True))
            raise ValueError(
                f"variable {variable!r} is not finite at {where} ({len(bad)} NaN or infinite "
                "values on the coarse grid); a coarse-grid observation file needs every "
                "coarse value"
            )
        values = _check_values(field.reshape(-1), name=f"variable {variable!r}")

        if "noise_std" in ds.variables:
            s = ds["noise_std"]
            if s.ndim == 0:
                std: Any = float(s.values)
            elif sorted(s.dims) == sorted(dims):
                std = np.asarray(s.transpose(*dims).values, dtype=np.float64).reshape(-1)
            else:
                raise ValueError(
                    f"variable 'noise_std' has dims {s.dims}; expected {dims}, one standard "
                    "deviation per coarse value"
                )
        else:
            std = _noise_attribute(ds, da, f"on {dims}")
        noise = ObservationNoise(std=std)
        if units is None and len(file_units) == 1:
            units = file_units.pop()
        return cls(operator, values, noise, _file_attrs(da, variable, units))

    def to_xarray(self, grid: TorusGrid | None = None) -> Any:
        """The observations as an ``xarray.Dataset``, the form of an observation file.

        Point observations and masks on a reference grid are written as
        points (a mask's nodes, read back as spectral point observations);
        :class:`CoarseGrain` observations as the coarse field on its grid,
        with the attributes ``operator``, ``coarse_shape`` and
        ``noise_std`` (module docstring).

        Parameters
        ----------
        grid : TorusGrid, optional
            For coarse-grid observations: the grid the operator was
            applied on (any grid of the domain for an operator given by
            ``shape``); it gives the domain lengths of the coarse nodes
            and, for an operator given by ``factor``, the coarse shape.
            Not used by point observations.
        """
        op = self.operator
        if isinstance(op, CoarseGrain):
            return self._coarse_to_xarray(grid)

        import xarray as xr

        if isinstance(op, PointObservation):
            points, method = op.coords, op.method
        elif isinstance(op, MaskObservation) and op.grid is not None:
            points, method = op.points, "spectral"
        else:
            raise NotImplementedError(
                f"{op!r} has no observation-file form; to_xarray writes point observations "
                "and masks on a reference grid"
            )
        n_points = points.shape[0]
        if self.n_obs != n_points:
            raise NotImplementedError(
                f"{self.n_obs} values for {n_points} points (several channels); the "
                "observation file holds one value per point"
            )
        dims = AXIS_NAMES[points.shape[1]]
        c_units = self.attrs.get("coordinate_units", "1")
        coords = {
            d: ("obs", points[:, i], {"units": c_units, "long_name": f"{d} coordinate of "
                                      "the observation", "axis": d.upper()})
            for i, d in enumerate(dims)
        }
        coords["obs"] = ("obs", np.arange(n_points),
                         {"long_name": "observation index", "units": "1"})
        name = self.attrs.get("name", "values")
        data = {name: ("obs", self.values, {
            "units": self.attrs.get("units", "1"),
            "long_name": self.attrs.get("long_name", "observed values")})}
        # a CF discrete sampling geometry: scattered points along the dimension obs
        attrs = {"interpolation": method, "featureType": "point"}
        if self.noise.covariance is not None:
            raise NotImplementedError("an observation file stores noise_std, not a covariance")
        if self.noise.is_scalar:
            attrs["noise_std"] = float(self.noise.std)
        else:
            data["noise_std"] = ("obs", np.asarray(self.noise.std), {
                "units": self.attrs.get("units", "1"),
                "long_name": "standard deviation of the observation noise"})
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def _coarse_to_xarray(self, grid: TorusGrid | None) -> Any:
        import xarray as xr

        op = self.operator
        if grid is None:
            raise ValueError(
                f"{op!r} observations need grid= (a grid of the model's domain) to be "
                "written: the file records the coarse nodes j L / Nc"
            )
        if not isinstance(grid, TorusGrid):
            raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
        coarse = op.obs_grid(grid)
        if self.n_obs != coarse.size:
            raise NotImplementedError(
                f"{self.n_obs} values for the {coarse.size} nodes of the coarse grid "
                f"{_shape_text(coarse.shape)} (several channels); the observation file holds "
                "one value per coarse node"
            )
        if self.noise.covariance is not None:
            raise NotImplementedError("an observation file stores noise_std, not a covariance")
        dims = coarse.dims
        c_units = self.attrs.get("coordinate_units", "1")
        coords = {
            d: (d, coarse.coords(i), {"units": c_units, "long_name": f"{d} coordinate of "
                                      "the coarse grid", "axis": d.upper(),
                                      "period": coarse.lengths[i]})
            for i, d in enumerate(dims)
        }
        units = self.attrs.get("units", "1")
        var_attrs = {"units": units,
                     "long_name": self.attrs.get("long_name", "observed values")}
        bounds = {}
        if op.method == "block_mean":
            var_attrs["cell_methods"] = " ".join(f"{d}:" for d in dims) + " mean"
            var_attrs["comment"] = (
                "mean of the nodes of the observed grid in each block that starts at the "
                "coarse node (sciffd.inverse.CoarseGrain, method block_mean)")
            # CF cell bounds: block j covers [j L / Nc, (j + 1) L / Nc)
            for i, d in enumerate(dims):
                start = coarse.coords(i)
                coords[d][2]["bounds"] = f"{d}_bounds"
                bounds[f"{d}_bounds"] = ((d, "nv"), np.stack(
                    [start, start + coarse.lengths[i] / coarse.shape[i]], axis=1),
                    {"units": c_units})
        else:
            var_attrs["comment"] = (
                "the observed field truncated to the Fourier modes |m_i| < Nc_i / 2 and "
                "sampled on the coarse nodes (sciffd.inverse.CoarseGrain, method spectral)")
        name = self.attrs.get("name", "values")
        data = {name: (dims, self.values.reshape(coarse.shape), var_attrs), **bounds}
        attrs: dict[str, Any] = {"operator": op.method,
                                 "coarse_shape": np.asarray(coarse.shape, dtype=np.int32)}
        if self.noise.is_scalar:
            attrs["noise_std"] = float(self.noise.std)
        else:
            data["noise_std"] = (dims, np.asarray(self.noise.std).reshape(coarse.shape), {
                "units": units,
                "long_name": "standard deviation of the observation noise"})
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def __repr__(self) -> str:
        return f"Observations({self.operator!r}, n_obs={self.n_obs}, noise={self.noise!r})"


class _ResolutionError(ValueError):
    """Coarse observations that do not fit the resolution of the grid they condition."""


def _file_attr(ds: Any, da: Any, name: str) -> Any:
    """Attribute ``name`` of the variable ``da``, else of the dataset ``ds``, else None."""
    return da.attrs.get(name, ds.attrs.get(name))


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(n)) for n in shape)


def _preview(x: np.ndarray, count: int = 3) -> str:
    head = ", ".join(f"{v:.6g}" for v in x[:count])
    return f"[{head}{', ...' if x.size > count else ''}]"
