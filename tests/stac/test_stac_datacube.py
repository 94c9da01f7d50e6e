"""cube:dimensions and cube:variables on a synthetic cube with every kind of dimension."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pystac
import xarray as xr

from recipes_core.stac.axes import find_axes
from recipes_core.stac.datacube import apply_datacube, main_variable
from recipes_core.stac.extents import spatial_extent
from recipes_core.stac.validate import validate_document


def cube() -> xr.Dataset:
    time = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-05"])  # irregular
    ds = xr.Dataset(
        {
            "ta": (("time", "member", "level", "lat", "lon"),
                   np.zeros((3, 2, 3, 4, 5), "f4"),
                   {"units": "K", "long_name": "Air temperature"}),
            "time_bnds": (("time", "nv"), np.zeros((3, 2), "datetime64[ns]")),
        },
        coords={
            "time": ("time", time, {"bounds": "time_bnds"}),
            "member": ("member", ["r1", "r2"]),
            "level": ("level", [1000.0, 850.0, 500.0], {"units": "hPa", "positive": "down",
                                                       "standard_name": "air_pressure"}),
            "lat": ("lat", [60.0, 50.0, 40.0, 30.0], {"units": "degrees_north"}),
            "lon": ("lon", [0.0, 10.0, 20.0, 30.0, 40.0], {"units": "degrees_east"}),
            "orography": (("lat", "lon"), np.ones((4, 5)), {"units": "m"}),
        },
    )
    ds["ta"].encoding = {"chunks": (1, 1, 3, 4, 5), "_FillValue": np.float32(-999.0)}
    return ds


def collection_for(ds: xr.Dataset) -> pystac.Collection:
    collection = pystac.Collection(
        id="cube", description="a cube", license="CC0-1.0",
        extent=pystac.Extent(pystac.SpatialExtent([[-180, -90, 180, 90]]),
                             pystac.TemporalExtent([[None, None]])),
    )
    axes = find_axes(ds)
    apply_datacube(collection, ds, axes, spatial_extent(ds, axes))
    return collection


def test_every_kind_of_dimension():
    ds = cube()
    document = collection_for(ds).to_dict(include_self_link=False)
    dims = document["cube:dimensions"]
    assert dims["time"]["type"] == "temporal"
    assert dims["time"]["step"] is None  # irregular: null, and the values are listed
    assert dims["time"]["values"][-1] == "2020-01-05T00:00:00Z"
    assert dims["lat"] == {"type": "spatial", "axis": "y", "extent": [30.0, 60.0],
                           "step": -10.0, "reference_system": 4326}
    assert dims["lon"]["axis"] == "x" and dims["lon"]["step"] == 10.0
    assert dims["level"]["type"] == "spatial" and dims["level"]["axis"] == "z"
    assert dims["level"]["values"] == [1000.0, 850.0, 500.0] and dims["level"]["unit"] == "hPa"
    assert dims["member"] == {"type": "other", "values": ["r1", "r2"]}
    assert dims["nv"]["type"] == "other" and dims["nv"]["extent"] == [0, 1]
    assert validate_document(document) == []


def test_variables_carry_the_v2_2_fields_and_what_a_reader_needs():
    variables = collection_for(cube()).to_dict(include_self_link=False)["cube:variables"]
    ta = variables["ta"]
    assert ta["type"] == "data"
    assert ta["dimensions"] == ["time", "member", "level", "lat", "lon"]
    assert (ta["unit"], ta["description"]) == ("K", "Air temperature")
    assert ta["shape"] == [3, 2, 3, 4, 5] and ta["chunks"] == [1, 1, 3, 4, 5]
    assert ta["nodata"] == -999.0 and ta["data_type"] == "float32"
    assert ta["attrs"] == {"units": "K", "long_name": "Air temperature"}
    assert variables["time_bnds"]["type"] == "auxiliary"  # named by time's `bounds`
    assert variables["orography"]["type"] == "auxiliary"  # a coordinate
    assert "lat" not in variables  # dimensions are not repeated as variables


def test_main_variable_prefers_the_recipe_then_the_first_field():
    ds = cube()
    assert main_variable(ds) == "ta"
    assert main_variable(ds, "ta") == "ta"
    assert main_variable(ds, "missing") == "ta"
    assert main_variable(xr.Dataset({"x": ("a", [1.0])})) is None
