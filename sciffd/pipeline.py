"""Models as users meet them: load by name, sample ensembles as xarray datasets.

:func:`load` turns a built-in name (``"ns2d"``) or a training directory into
a :class:`FieldModel`: a :class:`~sciffd.models.ScoreModel` together with
what it describes (the variable, its units, the grid it was trained on).
:meth:`FieldModel.sample` draws an ensemble on any grid of the same domain
and returns an ``xarray.Dataset`` with dim ``member``, CF attributes from the
model's variable metadata, and global attributes that record how it was
made (model, sampler, steps, seed, resolution, package version), ready for
:func:`sciffd.io.write_netcdf`.

Examples
--------
>>> from sciffd.grids import torus
>>> from sciffd.models import GaussianScore
>>> from sciffd.noise import Matern
>>> exact = GaussianScore(Matern(3.0, 5.0), Matern(2.0, 1.0))
>>> fm = FieldModel.from_score_model(
...     exact, variable={"name": "psi", "units": "1", "long_name": "stream function"},
...     grid=torus(16), name="gaussian")
>>> ds = fm.sample(members=2, sampler="heun", steps=4, progress=False)
>>> ds["psi"].dims
('member', 'y', 'x')
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, backend
from .grids import TorusGrid
from .models.base import ScoreModel
from .models.registry import resolve

__all__ = ["SAMPLER_NAMES", "FieldModel", "load"]

logger = logging.getLogger(__name__)

#: the sampler names :meth:`FieldModel.sample` accepts
SAMPLER_NAMES = ("em", "heun")

CONVENTIONS = "CF-1.8"


def _check_variable(variable: Any) -> dict:
    if isinstance(variable, str):
        raise TypeError(
            f"variable={variable!r} must be a mapping such as "
            "{'name': 'vorticity', 'units': 's-1', 'long_name': 'vorticity'}"
        )
    if not isinstance(variable, Mapping):
        raise TypeError(
            f"variable must be a mapping with 'name', 'units' and 'long_name', "
            f"got {type(variable).__name__}"
        )
    missing = [k for k in ("name", "units", "long_name") if k not in variable]
    if missing:
        raise ValueError(
            f"variable={dict(variable)!r} lacks {missing}; it needs 'name', 'units' "
            "and 'long_name'"
        )
    if not isinstance(variable["name"], str) or not variable["name"]:
        raise ValueError(f"variable name {variable['name']!r} must be a non-empty string")
    return dict(variable)


def _check_resolution(value: Any, ndim: int) -> tuple[int, ...]:
    """An int or a tuple of ints, each at least 2, as a shape of ``ndim`` axes."""
    shape = (value,) * ndim if isinstance(value, (int, np.integer)) else tuple(value)
    if len(shape) != ndim:
        raise ValueError(f"grid={value!r} must give {ndim} sizes, one per axis")
    for n in shape:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"grid={value!r} must contain integers, got {n!r}")
        if n < 2:
            raise ValueError(
                f"grid={value!r}: the resolution must be at least 2 points per axis"
            )
    return tuple(int(n) for n in shape)


def _grid_from_config(grid: Any) -> TorusGrid:
    if isinstance(grid, TorusGrid):
        return grid
    if isinstance(grid, Mapping) and "shape" in grid:
        return TorusGrid(tuple(grid["shape"]), grid.get("lengths"))
    raise TypeError(
        f"grid={grid!r} must be a TorusGrid or a mapping {{'shape': .., 'lengths': ..}}"
    )


#: the names of the guidance rules of :mod:`sciffd.inverse`, for output attributes
_METHOD_NAMES = {"MomentMatching": "mmps", "DPS": "dps", "Replacement": "replacement"}


def _coordinate_units(config: Mapping[str, Any]) -> str:
    """The units of the model's domain coordinates: ``config["grid"]["units"]``, else "1".

    Fields written by :meth:`FieldModel.sample` carry coordinates in these
    units; a training directory that does not record them is on a
    nondimensional domain (``"1"``), like the data sciffd generates.
    """
    grid = config.get("grid")
    units = grid.get("units") if isinstance(grid, Mapping) else None
    return "1" if units is None else str(units)


class FieldModel:
    """A score model with the metadata of the fields it generates.

    Parameters
    ----------
    model : ScoreModel
        The score model (exact Gaussian, FNO, ...).
    variable : mapping
        ``{"name", "units", "long_name"}`` and optionally ``standard_name``:
        the variable the model generates.
    grid : TorusGrid or mapping
        The grid the model was trained on; it fixes the domain lengths
        and the default resolution.
    name : str
        The model's name, recorded in output attributes.
    config : mapping, optional
        The full configuration of a loaded model.
    path : path-like, optional
        The model directory it was loaded from.

    Attributes
    ----------
    model, variable, grid, name, config, path
    """

    def __init__(self, model: ScoreModel, *, variable: Mapping[str, Any],
                 grid: TorusGrid | Mapping[str, Any], name: str,
                 config: Mapping[str, Any] | None = None,
                 path: str | os.PathLike | None = None) -> None:
        if not isinstance(model, ScoreModel):
            raise TypeError(
                f"model must be a sciffd.models.ScoreModel, got {type(model).__name__}"
            )
        if not isinstance(name, str) or not name:
            raise TypeError(f"name={name!r} must be a non-empty string")
        self.model = model
        self.variable = _check_variable(variable)
        self.grid = _grid_from_config(grid)
        self.name = name
        self.config = dict(config) if config is not None else {}
        self.path = None if path is None else Path(path)
        self._weights_sha256: str | None = None

    @classmethod
    def from_score_model(cls, model: ScoreModel, *, variable: Mapping[str, Any],
                         grid: TorusGrid | int | Sequence[int],
                         name: str = "custom") -> FieldModel:
        """Wrap a score model built in code (for example an exact ``GaussianScore``).

        Parameters
        ----------
        model : ScoreModel
            The model.
        variable : mapping
            ``{"name", "units", "long_name"}`` of the generated variable.
        grid : TorusGrid, int or tuple of int
            The default grid (an int or tuple means the unit torus at that
            resolution).
        name : str
            Name recorded in output attributes.
        """
        if not isinstance(grid, TorusGrid):
            if isinstance(grid, bool) or not isinstance(grid, (int, np.integer, tuple, list)):
                raise TypeError(
                    f"grid={grid!r} must be a TorusGrid, a resolution or a tuple of them"
                )
            ndim = 2 if isinstance(grid, (int, np.integer)) else len(grid)
            grid = TorusGrid(_check_resolution(grid, ndim))
        return cls(model, variable=variable, grid=grid, name=name)

    # -- sampling -----------------------------------------------------------
    def resolve_grid(self, grid: TorusGrid | int | Sequence[int] | None) -> TorusGrid:
        """The grid to sample on: the model's, at another resolution, or one given."""
        if grid is None:
            return self.grid
        if isinstance(grid, TorusGrid):
            if grid.ndim != self.grid.ndim:
                raise ValueError(
                    f"grid={grid!r} has {grid.ndim} axes; the model {self.name!r} "
                    f"generates fields with {self.grid.ndim}"
                )
            return grid
        if isinstance(grid, bool) or not isinstance(grid, (int, np.integer, tuple, list)):
            raise TypeError(
                f"grid={grid!r} must be None, a resolution (int or tuple) or a TorusGrid"
            )
        return self.grid.with_shape(_check_resolution(grid, self.grid.ndim))

    @property
    def default_sigma_stop(self) -> float | None:
        """The model's own ``sigma_stop`` (``config["sampling"]["sigma_stop"]``), or None."""
        value = (self.config.get("sampling") or {}).get("sigma_stop")
        return None if value is None else float(value)

    def resolve_sampler(self, sampler: Any = None, steps: int | None = None,
                        sigma_stop: Any = "default") -> Any:
        """The sampler object for a name (``"em"``, ``"heun"``), an object or None.

        ``sigma_stop="default"`` gives a named sampler the model's own
        :attr:`default_sigma_stop` and leaves a sampler object as it is; None
        or a number sets it (see :class:`~sciffd.sampling.Heun`).
        """
        from . import sampling

        if isinstance(sigma_stop, str) and sigma_stop != "default":
            raise ValueError(f"sigma_stop={sigma_stop!r} must be 'default', None or a "
                             "positive noise level")
        if sampler is None:
            sampler = "heun"
        options: dict[str, Any] = {} if steps is None else {"steps": steps}
        if isinstance(sampler, str):
            key = sampler.strip().lower()
            classes = {"em": sampling.EulerMaruyama, "heun": sampling.Heun}
            if key not in classes:
                raise ValueError(
                    f"sampler={sampler!r} is not known; expected one of {SAMPLER_NAMES} "
                    "or a sampler object"
                )
            stop = self.default_sigma_stop if sigma_stop == "default" else sigma_stop
            return classes[key](**options, sigma_stop=stop)
        if sigma_stop != "default":
            options["sigma_stop"] = sigma_stop
        if not options:
            return sampler
        if dataclasses.is_dataclass(sampler) and hasattr(sampler, "steps"):
            return dataclasses.replace(sampler, **options)
        raise TypeError(
            f"{', '.join(f'{k}={v!r}' for k, v in options.items())} cannot be applied to "
            f"the sampler {sampler!r}; give them to the sampler itself"
        )

    def provenance(self) -> dict:
        """``model_path`` and ``model_weights_sha256`` of a model loaded from a directory."""
        if self.path is None:
            return {}
        out = {"model_path": str(self.path)}
        weights = self.path / "weights.safetensors"
        if weights.is_file():
            if self._weights_sha256 is None:
                import hashlib

                digest = hashlib.sha256()
                with open(weights, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                self._weights_sha256 = digest.hexdigest()
            out["model_weights_sha256"] = self._weights_sha256
        return out

    def sample(
        self,
        members: int | Sequence[int] = 16,
        grid: TorusGrid | int | Sequence[int] | None = None,
        seed: int = 0,
        sampler: Any = None,
        steps: int | None = None,
        batch_size: int | None = None,
        progress: bool = True,
        sigma_stop: Any = "default",
    ) -> Any:
        """Draw an ensemble of fields as an ``xarray.Dataset``.

        Parameters
        ----------
        members : int or sequence of int
            A count ``M`` (members ``0 .. M-1``) or member ids; member ``m``
            of ``seed`` is the same however the ensemble is drawn.
        grid : None, int, tuple of int or TorusGrid
            The model's grid (None), the same domain at another resolution
            (int or tuple), or a grid.
        seed : int
            Ensemble seed.
        sampler : None, {"em", "heun"} or a sampler object
            ``"em"``: Euler-Maruyama on the reverse SDE; ``"heun"`` (the
            default): Heun on the probability-flow ODE.
        steps : int, optional
            Number of steps (default: the sampler's).
        batch_size : int, optional
            Members integrated together.
        progress : bool
            Show a progress bar (tqdm, on stderr).
        sigma_stop : "default", None or float
            End the reverse process at this noise level and take the Gaussian
            posterior step there (:func:`sciffd.sampling.gaussian_posterior_step`).
            ``"default"``: the model's own choice (:attr:`default_sigma_stop`;
            the built-in ``ns2d`` stops at 0.2, see its model card); None:
            integrate down to ``t_min``.

        Returns
        -------
        xarray.Dataset
            The variable with dims ``(member, *grid.dims)``
            (``(member, channel, ...)`` for models with several channels),
            float32, with ``units`` and ``long_name``; coordinates with
            ``units`` and ``axis``; global attributes ``Conventions``,
            ``model``, ``sampler``, ``steps``, ``seed``, ``resolution``,
            ``sciffd_version`` and ``history``.
        """
        from . import fields, sampling

        target = self.resolve_grid(grid)
        integrator = self.resolve_sampler(sampler, steps, sigma_stop)
        if isinstance(members, (int, np.integer)) and not isinstance(members, bool):
            ids = np.arange(int(members)) if members >= 1 else members
        else:
            ids = members
        u = sampling.sample(self.model, target, ids, seed, integrator,
                            batch_size=batch_size, progress=progress)
        u = backend.to_numpy(u)
        ids = np.asarray(ids)

        var = self.variable
        attrs = {k: var[k] for k in ("units", "long_name", "standard_name") if k in var}
        if u.shape[1] == 1:
            u, lead = u[:, 0], ("member",)
        else:
            lead = ("member", "channel")
        member = fields.member_coordinate(ids)
        now = fields.history_stamp()
        n_steps = int(getattr(integrator, "steps", -1))
        global_attrs = {
            "Conventions": CONVENTIONS,
            "title": f"{var['long_name']} ensemble from the sciffd model {self.name}",
            "source": f"sciffd {__version__}",
            "history": f"{now}: sampled with sciffd {__version__}",
            "model": self.name,
            **self.provenance(),
            "sampler": type(integrator).__name__,
            "sampler_config": repr(integrator),
            "steps": np.int32(n_steps),
            # "none": the reverse process ran to t_min
            "sigma_stop": "none" if getattr(integrator, "sigma_stop", None) is None
            else float(integrator.sigma_stop),
            "seed": int(seed),
            "members": np.int32(ids.size),
            "resolution": "x".join(str(n) for n in target.shape),
            "grid_shape": np.asarray(target.shape, dtype=np.int32),
            "grid_lengths": np.asarray(target.lengths, dtype=np.float64),
            "sciffd_version": __version__,
        }
        return fields.to_dataset(u, target, var["name"], attrs, lead,
                                 coords={"member": member}, global_attrs=global_attrs)

    def condition(
        self,
        observations: Any,
        members: int | Sequence[int] = 16,
        grid: TorusGrid | int | Sequence[int] | None = None,
        seed: int = 0,
        method: Any = "mmps",
        sampler: Any = None,
        steps: int | None = None,
        batch_size: int | None = None,
        progress: bool = True,
        **options: Any,
    ) -> Any:
        """Draw a posterior ensemble given observations, as an ``xarray.Dataset``.

        The members sample ``p(u | y)`` for ``y = H u + eta`` with this
        model as the prior (:func:`sciffd.inverse.condition`); the dataset
        adds their mean, their spread and the misfit of each member to the
        data.

        Parameters
        ----------
        observations : Observations or xarray.Dataset
            ``y``, ``H`` and the noise; a dataset is an observation file,
            read with :meth:`sciffd.inverse.Observations.from_xarray`:
            point observations (dim ``obs``, coordinates ``y``, ``x`` in
            the model's domain units, variable ``values``, attribute
            ``noise_std``), interpolated as their ``interpolation``
            attribute names (default ``"spectral"``), or coarse-grid
            observations (variable ``values`` on the coarse nodes, dims
            ``y``, ``x``, attributes ``operator``, ``coarse_shape``,
            ``noise_std``); block means condition grids whose shape is a
            multiple of the coarse shape, spectral coarse values any grid.
        members : int or sequence of int
            A count ``M >= 2`` or member ids (at least two, for the spread).
        grid : None, int, tuple of int or TorusGrid
            As for :meth:`sample`.
        seed : int
            Ensemble seed; member ``m`` is the same however the ensemble is
            split into batches.
        method : {"mmps", "dps", "replacement"} or a guidance object
            The conditional sampler (see :mod:`sciffd.inverse.conditional`);
            ``"mmps"``, moment matching, is exact for Gaussian priors.
        sampler : None, {"em", "heun"} or a sampler object
            As for :meth:`sample` (default ``"heun"``).
        steps : int, optional
            Number of sampler steps.
        batch_size : int, optional
            Members integrated together.
        progress : bool
            Show a progress bar (tqdm, on stderr).
        **options
            Of the method: ``cg_iterations``, ``cg_tol`` (``"mmps"``),
            ``weight`` (``"dps"``).

        Returns
        -------
        xarray.Dataset
            ``<name>`` ``(member, *grid.dims)``: the members, labelled as
            by :meth:`sample`; ``<name>_mean`` and ``<name>_spread``
            ``(*grid.dims)``: the ensemble mean and standard deviation
            (``ddof=1``); ``misfit`` ``(member,)``: ``||W (H u_m - y)|| /
            sqrt(n)``, which is ``||H u_m - y|| / (sqrt(n) sigma)`` for a
            scalar noise ``sigma`` (about 1 for members consistent with the
            data). Global attributes as for :meth:`sample`, plus
            ``method``, ``method_options`` (JSON), ``n_obs``,
            ``noise_std``, ``observation_operator`` and ``misfit_of_mean``.

        Raises
        ------
        ValueError
            For observation coordinates or values in units other than the
            model's, points outside the domain, NaN values, a non-positive
            noise level, fewer than two members, or observations that do
            not fit the grid.
        TypeError
            For observations that are neither ``Observations`` nor a
            dataset, or options the method does not take.

        Examples
        --------
        >>> from sciffd.grids import torus
        >>> from sciffd.models import GaussianScore
        >>> from sciffd.noise import Matern
        >>> from sciffd.inverse import Observations, PointObservation
        >>> fm = FieldModel.from_score_model(
        ...     GaussianScore(Matern(3.0, 5.0), Matern(2.0, 1.0)), grid=torus(16),
        ...     variable={"name": "psi", "units": "1", "long_name": "stream function"})
        >>> obs = Observations(PointObservation([[0.5, 0.25]], "spectral"), [1.0], 0.1)
        >>> ds = fm.condition(obs, members=3, steps=4, progress=False)
        >>> ds["psi_mean"].dims, ds["misfit"].dims
        (('y', 'x'), ('member',))
        """
        import json

        from . import fields, inverse
        from .inverse.conditional import _guidance

        target = self.resolve_grid(grid)
        obs = self._observations(observations, target)
        integrator = self.resolve_sampler(sampler, steps, sigma_stop=None)
        guidance = _guidance(method, options)
        if isinstance(members, (int, np.integer)) and not isinstance(members, bool):
            ids = np.arange(int(members)) if members >= 1 else members
        else:
            ids = members
        if np.ndim(ids) == 1 and np.size(ids) < 2:
            raise ValueError(
                f"members={members!r}: a posterior ensemble needs at least 2 members "
                "(the dataset records their spread)"
            )
        u = inverse.condition(self.model, obs, target, ids, seed, guidance, integrator,
                              batch_size=batch_size, progress=progress)
        u = backend.to_numpy(u)
        ids = np.asarray(ids)
        summary = inverse.summarize(u, obs, target)

        var = self.variable
        name = var["name"]
        attrs = {k: var[k] for k in ("units", "long_name", "standard_name") if k in var}
        if u.shape[1] == 1:
            u, lead, space = u[:, 0], ("member",), ()
            mean, spread = summary.mean[0], summary.spread[0]
        else:
            lead, space = ("member", "channel"), ("channel",)
            mean, spread = summary.mean, summary.spread
        member = fields.member_coordinate(ids)
        dims = space + tuple(target.dims)
        noise = obs.noise
        whitened = ("||H u - y|| / (sqrt(n) sigma)" if noise.is_scalar
                    else "||W (H u - y)|| / sqrt(n), R = (W^T W)^-1")
        data_vars = {
            f"{name}_mean": (dims, mean.astype(u.dtype), {
                "units": attrs["units"],
                "long_name": f"posterior mean of {var['long_name']} (ensemble mean)"}),
            f"{name}_spread": (dims, spread.astype(u.dtype), {
                "units": attrs["units"],
                "long_name": f"posterior spread of {var['long_name']} (ensemble "
                             "standard deviation, ddof=1)"}),
            "misfit": ("member", summary.misfit, {
                "units": "1",
                "long_name": f"observation misfit {whitened} of the member: the rms "
                             "residual in units of the noise, about 1 for a member "
                             "consistent with the data"}),
        }
        if noise.is_scalar:
            noise_std: Any = float(noise.std)
        else:
            noise_std = np.sqrt(noise.variance(obs.n_obs))
        now = fields.history_stamp()
        global_attrs = {
            "Conventions": CONVENTIONS,
            "title": f"posterior ensemble of {var['long_name']} from the sciffd model "
                     f"{self.name}, conditioned on {obs.n_obs} observations",
            "source": f"sciffd {__version__}",
            "history": f"{now}: conditioned with sciffd {__version__}",
            "model": self.name,
            **self.provenance(),
            "method": _METHOD_NAMES.get(type(guidance).__name__, type(guidance).__name__),
            "method_options": json.dumps(dataclasses.asdict(guidance)),
            "n_obs": np.int32(obs.n_obs),
            "noise_std": noise_std,
            "observation_operator": repr(obs.operator),
            "misfit_of_mean": float(summary.mean_misfit),
            "sampler": type(integrator).__name__,
            "sampler_config": repr(integrator),
            "steps": np.int32(int(getattr(integrator, "steps", -1))),
            "seed": int(seed),
            "members": np.int32(ids.size),
            "resolution": "x".join(str(n) for n in target.shape),
            "grid_shape": np.asarray(target.shape, dtype=np.int32),
            "grid_lengths": np.asarray(target.lengths, dtype=np.float64),
            "sciffd_version": __version__,
        }
        ds = fields.to_dataset(u, target, name, attrs, lead, coords={"member": member},
                               global_attrs=global_attrs)
        return ds.assign(data_vars)

    def _observations(self, observations: Any, grid: TorusGrid) -> Any:
        """``Observations`` from an observation dataset, checked against the model's units.

        Point files (dim ``obs``) and coarse-grid files (attribute
        ``operator``) are both read by ``Observations.from_xarray``; the
        ``interpolation`` attribute only concerns point files.
        """
        from .inverse import Observations

        units = _coordinate_units(self.config)
        if not isinstance(observations, Observations):
            import xarray as xr

            if not isinstance(observations, xr.Dataset):
                raise TypeError(
                    "observations must be a sciffd.inverse.Observations or an xarray.Dataset "
                    f"(an observation file), got {type(observations).__name__}"
                )
            variable = "values"
            if variable not in observations.variables and self.variable["name"] in \
                    observations.variables:
                variable = self.variable["name"]
            # point interpolation; a coarse-grid file names its operator itself
            method = str(observations.attrs.get("interpolation", "spectral"))
            observations = Observations.from_xarray(observations, grid, variable=variable,
                                                    method=method, units=units)
        given = observations.attrs.get("coordinate_units")
        if given is not None and str(given) != units:
            raise ValueError(
                f"the observation coordinates are in {given!r} but the model "
                f"{self.name!r} is on a domain in {units!r}; convert them to {units!r}"
            )
        given = observations.attrs.get("units")
        if given is not None and str(given) != str(self.variable["units"]):
            raise ValueError(
                f"the observed values are in {given!r} but the model {self.name!r} "
                f"generates {self.variable['name']} in {self.variable['units']!r}; "
                f"convert them to {self.variable['units']!r}"
            )
        return observations

    def __repr__(self) -> str:
        return (f"FieldModel(name={self.name!r}, variable={self.variable['name']!r}, "
                f"grid={self.grid!r}, model={type(self.model).__name__})")


def _load_model(path: Path, device: Any) -> tuple[ScoreModel, dict]:
    try:
        from .training.checkpoint import load_model
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("sciffd"):
            raise NotImplementedError(
                f"loading the model directory {str(path)!r} needs "
                "sciffd.training.checkpoint.load_model, which this installation lacks"
            ) from err
        raise
    accepts_device = "device" in inspect.signature(load_model).parameters
    if accepts_device:
        model, config = load_model(path, device=device)
    else:
        model, config = load_model(path)
        if device is not None:
            if not hasattr(model, "to"):
                raise ValueError(
                    f"device={device!r} cannot be applied to a {type(model).__name__}"
                )
            model = model.to(device) or model
    return model, dict(config)


def load(name_or_path: str | os.PathLike, device: Any = None) -> FieldModel:
    """Load a built-in model by name, or a trained model directory.

    Parameters
    ----------
    name_or_path : str or path-like
        A built-in name (see :func:`sciffd.models.registry.builtin_models`)
        or a directory with ``config.json`` (and weights), such as the
        output of :func:`sciffd.training.train`.
    device : optional
        Device for a torch model (``"cpu"``, ``"cuda:0"``).

    Returns
    -------
    FieldModel

    Raises
    ------
    ValueError
        If the name is not known (the message lists the available ones)
        or the configuration lacks the variable or grid metadata.
    """
    path = resolve(name_or_path)
    model, config = _load_model(path, device)
    for key in ("variable", "grid"):
        if key not in config:
            raise ValueError(f"the configuration of {str(path)!r} lacks {key!r}")
    name = config.get("name") or path.name
    logger.info("loaded model %s from %s", name, path)
    return FieldModel(model, variable=config["variable"], grid=config["grid"],
                      name=str(name), config=config, path=path)
