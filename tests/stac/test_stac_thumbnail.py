"""Thumbnails keep the geography: north up whatever the latitude order, edges at cell edges."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from recipes_core.stac.axes import find_axes
from recipes_core.stac.thumbnail import _extent, render_thumbnail


def north_bright(lat: np.ndarray) -> xr.Dataset:
    """1 in the northern hemisphere, 0 in the southern, over two time steps."""
    values = np.where(lat[:, None] > 0, 1.0, 0.0) * np.ones((lat.size, 36))
    return xr.Dataset(
        {"v": (("time", "lat", "lon"), np.stack([values, 1 - values]).astype("f4"),
               {"units": "K", "long_name": "north is bright"})},
        coords={"time": np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[ns]"),
                "lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", np.arange(5.0, 360, 10), {"units": "degrees_east"})},
    )


@pytest.mark.parametrize("lat", [np.arange(85.0, -90, -10), np.arange(-85.0, 90, 10)],
                         ids=["descending", "ascending"])
def test_north_is_up_in_either_latitude_order(lat, tmp_path):
    import matplotlib.image

    ds = north_bright(lat)
    extent, origin = _extent(ds.v.isel(time=0))
    assert extent == [0.0, 360.0, -90.0, 90.0]
    assert origin == ("upper" if lat[0] > lat[-1] else "lower")

    path = render_thumbnail(ds, "v", find_axes(ds), tmp_path / "t.png")
    image = matplotlib.image.imread(path)  # rows from the top, RGBA in 0..1
    height, width = image.shape[:2]
    x = int(width * 0.45)
    north, south = image[int(height * 0.35), x], image[int(height * 0.65), x]
    # First time step: the north is 1 (viridis yellow), the south 0 (viridis purple).
    assert north[1] > 0.8 and south[1] < 0.2, (north, south)


def test_curvilinear_grids_use_latitude_to_put_north_up():
    """A Lambert grid (cfgrib's y/x without coordinates): 2-D latitudes say which row is north."""
    yy, xx = np.mgrid[0:4, 0:5]
    field = xr.DataArray(np.zeros((4, 5)), dims=("y", "x"))
    northwards = xr.DataArray(10.0 + yy + 0.1 * xx, dims=("y", "x"))
    assert _extent(field, northwards) == (None, "lower")
    assert _extent(field, northwards[::-1]) == (None, "upper")
    assert _extent(field) == (None, "upper")  # no geography: the image convention


def test_the_thumbnail_has_a_labelled_colour_bar(tmp_path):
    """Drawn through the same function as the PNG: a map and a colour bar that names the
    variable and its units, with the map's axes labelled by their dimensions."""
    import matplotlib.image

    from recipes_core.stac.thumbnail import thumbnail_figure

    ds = north_bright(np.arange(85.0, -90, -10))
    fig = thumbnail_figure(ds, "v", find_axes(ds))
    assert len(fig.axes) == 2
    themap, bar = fig.axes
    assert (themap.get_xlabel(), themap.get_ylabel()) == ("lon", "lat")
    assert bar.get_ylabel() == "v [K]"  # a vertical colour bar's label
    assert "north is bright" in themap.get_title()
    assert "time=2020-01-01" in themap.get_title()
    fig.savefig(tmp_path / "t.png", format="png")  # as render_thumbnail does; lays it out
    bar_box, map_box = bar.get_position(), themap.get_position()
    # In the PNG: the bar is right of the map, and its middle column runs through the colours.
    assert bar_box.x0 > map_box.x1
    image = matplotlib.image.imread(tmp_path / "t.png")
    height, width = image.shape[:2]
    column = int(width * (bar_box.x0 + bar_box.x1) / 2)
    rows = range(int(height * (1 - bar_box.y1)) + 3, int(height * (1 - bar_box.y0)) - 3)
    colours = {tuple(np.round(image[r, column, :3], 2)) for r in rows}
    assert len(colours) > 20, "the colour bar is missing or flat"
