"""Reading and atomic writing of netCDF files.

:func:`write_netcdf` never leaves a half-written file: it writes to a
temporary file in the folder of the target (so that the rename stays on one
file system), then renames it over the target with :func:`os.replace`, which
is atomic on POSIX and Windows. If anything fails, the temporary file is
removed and a file that was at the target before is left as it was.

:func:`read_netcdf` loads a file into memory and closes it, so the file can
be replaced afterwards (also on Windows).
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._files import ordinary_permissions

__all__ = ["read_netcdf", "write_netcdf"]

logger = logging.getLogger(__name__)

#: zlib level used when ``compress=True`` (4 is the usual speed/size balance)
COMPLEVEL = 4


def _encoding(ds: Any, compress: bool, float32: bool) -> dict:
    """Per-variable netCDF encoding: compression, float64 data as float32."""
    encoding = {}
    for name, var in ds.variables.items():
        enc = {}
        is_coord = name in ds.coords
        if compress and var.ndim > 0 and var.dtype.kind in "fiub":
            enc.update(zlib=True, complevel=COMPLEVEL)
        if var.dtype == np.float64 and float32 and not is_coord:
            enc["dtype"] = "float32"
        if is_coord and var.dtype.kind == "f":
            # coordinates have no missing values; keep them free of _FillValue
            enc["_FillValue"] = None
        encoding[name] = enc
    return encoding


def write_netcdf(ds: Any, path: str | os.PathLike, *, compress: bool = True,
                 float32: bool = True) -> Path:
    """Write a dataset to netCDF-4, atomically.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        What to write (a named ``DataArray`` is written as a one-variable
        dataset).
    path : str or path-like
        Target file. Its folder must exist; an existing file is replaced
        only once the new one is complete.
    compress : bool
        zlib-compress the variables (level :data:`COMPLEVEL`).
    float32 : bool
        Store float64 data variables as float32 (coordinates keep float64,
        so that their spacing stays exact).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FileNotFoundError
        If the folder of ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a directory.
    TypeError, ValueError
        From xarray or netCDF4 when the dataset cannot be stored (for
        example an attribute of a type netCDF has not); nothing is left
        behind.
    """
    import xarray as xr

    if isinstance(ds, xr.DataArray):
        if ds.name is None:
            raise ValueError("a DataArray needs a name to be written; set da.name first")
        ds = ds.to_dataset()
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be an xarray.Dataset or DataArray, got {type(ds).__name__}")
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder {str(folder)!r} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"output path {str(path)!r} is a directory, not a file")

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4",
                     encoding=_encoding(ds, compress, float32))
        ordinary_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise
    logger.info("wrote %s", path)
    return path


def read_netcdf(path: str | os.PathLike, variable: str | None = None) -> Any:
    """Read a netCDF file into memory.

    Parameters
    ----------
    path : str or path-like
        The file.
    variable : str, optional
        A data variable to return alone.

    Returns
    -------
    xarray.Dataset, or xarray.DataArray if ``variable`` is given
        Values decoded (scale, offset, fill values) and loaded; the file is
        closed. A ``_FillValue`` that does not conform to the stored type
        (as in some archived files) is dropped by xarray; this is logged,
        not warned.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not netCDF, or has no data variable ``variable``.
    """
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory, not a netCDF file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", xr.SerializationWarning)
        try:
            with xr.open_dataset(path, engine="netcdf4") as opened:
                ds = opened.load()
        except OSError as err:
            raise ValueError(f"{str(path)!r} is not a readable netCDF file ({err})") from err
    for w in caught:
        if issubclass(w.category, xr.SerializationWarning):
            logger.info("%s: %s", path, w.message)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if variable is None:
        return ds
    if variable not in ds.data_vars:
        raise ValueError(
            f"{str(path)!r} has no variable {variable!r}; its variables are "
            f"{sorted(map(str, ds.data_vars))}"
        )
    return ds[variable]
