"""Apply recipe transforms to an opened dataset: pure functions of xarray objects.

Each transform model in :mod:`recipes_core.model.transforms` has one function here, looked up by
name. Errors name the transform, its position in the recipe and the fix, because a contributor
reads them in a pull-request check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import xarray as xr

from recipes_core.errors import SchemaError
from recipes_core.model import transforms as t


def _missing(ds: xr.Dataset, names: Sequence[str], what: str) -> None:
    absent = [n for n in names if n not in ds.variables and n not in ds.dims]
    if absent:
        have = ", ".join(sorted(map(str, ds.variables))) or "none"
        raise KeyError(f"{what} {', '.join(absent)} not in the dataset (it has: {have})")


def _select_variables(ds: xr.Dataset, step: t.SelectVariables, key: Any) -> xr.Dataset:
    _missing(ds, step.select_variables, "variable(s)")
    return ds[list(step.select_variables)]


def _drop_variables(ds: xr.Dataset, step: t.DropVariables, key: Any) -> xr.Dataset:
    _missing(ds, step.drop_variables, "variable(s)")
    return ds.drop_vars(step.drop_variables)


def _rename(ds: xr.Dataset, step: t.Rename, key: Any) -> xr.Dataset:
    _missing(ds, list(step.rename), "name(s)")
    return ds.rename(step.rename)


def _set_attrs(ds: xr.Dataset, step: t.SetAttrs, key: Any) -> xr.Dataset:
    ds = ds.copy()
    _apply_attrs(ds.attrs, step.set_attrs.dataset)
    _missing(ds, list(step.set_attrs.variables), "variable(s)")
    for name, attrs in step.set_attrs.variables.items():
        _apply_attrs(ds[name].attrs, attrs)
    return ds


def _apply_attrs(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    for name, value in update.items():
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value


def _label(ds: xr.Dataset, dim: str, value: Any) -> Any:
    """Cast a recipe label (a string from YAML) to what xarray expects for the coordinate.

    Dates stay strings so that partial dates select like xarray: ``stop: 2010-02`` includes
    the whole of February, not just its first instant. A bare year that YAML read as an
    integer is the same as the string.
    """
    if value is None or dim not in ds.coords:
        return value
    if np.issubdtype(ds[dim].dtype, np.datetime64) and isinstance(value, int):
        return str(value)
    return value


def _sel(ds: xr.Dataset, step: t.Sel, key: Any) -> xr.Dataset:
    _missing(ds, list(step.sel), "dimension(s)")
    indexers: dict[str, Any] = {}
    for dim, spec in step.sel.items():
        if isinstance(spec, t.Bound):
            indexers[dim] = slice(
                _label(ds, dim, spec.start), _label(ds, dim, spec.stop), spec.step
            )
        else:
            indexers[dim] = _label(ds, dim, spec)
    return ds.sel(indexers)


def _isel(ds: xr.Dataset, step: t.Isel, key: Any) -> xr.Dataset:
    _missing(ds, list(step.isel), "dimension(s)")
    indexers = {
        dim: slice(spec.start, spec.stop, spec.step)
        if isinstance(spec, t.PositionalBound)
        else spec
        for dim, spec in step.isel.items()
    }
    return ds.isel(indexers)


def _astype(ds: xr.Dataset, step: t.AsType, key: Any) -> xr.Dataset:
    _missing(ds, list(step.astype), "variable(s)")
    ds = ds.copy()
    for name, dtype in step.astype.items():
        encoding = dict(ds[name].encoding)
        ds[name] = ds[name].astype(dtype)
        # The stored dtype follows the cast unless the recipe packs it explicitly later.
        encoding.pop("dtype", None)
        ds[name].encoding = encoding
    return ds


def _squeeze(ds: xr.Dataset, step: t.Squeeze, key: Any) -> xr.Dataset:
    if step.squeeze:
        _missing(ds, step.squeeze, "dimension(s)")
        return ds.squeeze(list(step.squeeze), drop=False)
    return ds.squeeze(drop=False)


def _expand_dims(ds: xr.Dataset, step: t.ExpandDims, key: Any) -> xr.Dataset:
    spec = step.expand_dims
    if spec.from_key:
        if not isinstance(key, Mapping) or spec.dim not in key:
            raise KeyError(f"from_key needs a pattern dimension named '{spec.dim}'")
        value = key[spec.dim]
        if isinstance(value, datetime):
            value = np.datetime64(value, "ns")
    else:
        value = spec.value
    if value is None:
        return ds.expand_dims(spec.dim)
    if spec.dim not in ds.coords or spec.dim in ds.dims:
        return ds.expand_dims({spec.dim: [value]})
    # A scalar coordinate becomes the new dimension: its value is replaced, but its attributes
    # (CF units, standard_name) and, for values of the same kind, its stored encoding stay.
    old = ds.variables[spec.dim]
    ds = ds.drop_vars(spec.dim).expand_dims({spec.dim: [value]})
    new = ds.variables[spec.dim]
    new.attrs = dict(old.attrs)
    if new.dtype.kind == old.dtype.kind:
        kept = ("units", "calendar", "dtype")
        new.encoding = {k: v for k, v in old.encoding.items() if k in kept}
    return ds


def _set_encoding(ds: xr.Dataset, step: t.SetEncoding, key: Any) -> xr.Dataset:
    _missing(ds, list(step.set_encoding), "variable(s)")
    ds = ds.copy()
    for name, spec in step.set_encoding.items():
        encoding = dict(ds[name].encoding)
        for field, value in spec.model_dump(by_alias=True, exclude_unset=True).items():
            if field == "drop_missing_value":
                if value:
                    encoding.pop("missing_value", None)
            elif value is None:
                encoding.pop(field, None)
            else:
                encoding[field] = value
        ds[name].encoding = encoding
    return ds


_APPLY: dict[str, Callable[[xr.Dataset, Any, Any], xr.Dataset]] = {
    "select_variables": _select_variables,
    "drop_variables": _drop_variables,
    "rename": _rename,
    "set_attrs": _set_attrs,
    "sel": _sel,
    "isel": _isel,
    "astype": _astype,
    "squeeze": _squeeze,
    "expand_dims": _expand_dims,
    "set_encoding": _set_encoding,
}
assert set(_APPLY) == set(t.TRANSFORM_NAMES), "every registered transform needs a function"


def apply_transforms(
    ds: xr.Dataset,
    steps: Sequence[Any],
    *,
    key: Mapping[str, Any] | None = None,
    where: str = "",
) -> xr.Dataset:
    """Apply the recipe's transforms in order. ``key`` maps pattern dims to this file's keys."""
    for position, step in enumerate(steps):
        try:
            ds = _APPLY[step.name](ds, step, key)
        except (KeyError, IndexError, ValueError, TypeError) as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            raise SchemaError(
                f"transform {position + 1} ({step.name}) failed: {message}",
                where=where or None,
                fix=f"check transforms[{position}] against the variables and dimensions the "
                "source has at that step (run `arco plan --inspect`).",
            ) from None
    return ds
