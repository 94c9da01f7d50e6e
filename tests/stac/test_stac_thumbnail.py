"""Thumbnails keep the geography: north up whatever the latitude order, edges at cell edges."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from recipes_core.stac.axes import find_axes
from recipes_core.stac.thumbnail import (
    HEIGHT,
    MISSING,
    WIDTH,
    _extent,
    _label,
    _ticks,
    draw_thumbnail,
    render_thumbnail,
)


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


def pixels(path) -> np.ndarray:
    """The PNG's RGB values in 0..1, rows from the top (read back with matplotlib)."""
    import matplotlib.image

    return matplotlib.image.imread(path)[..., :3]


@pytest.mark.parametrize("lat", [np.arange(85.0, -90, -10), np.arange(-85.0, 90, 10)],
                         ids=["descending", "ascending"])
def test_north_is_up_in_either_latitude_order(lat, tmp_path):
    ds = north_bright(lat)
    extent, origin = _extent(ds.v.isel(time=0))
    assert extent == [0.0, 360.0, -90.0, 90.0]
    assert origin == ("upper" if lat[0] > lat[-1] else "lower")

    thumbnail = draw_thumbnail(ds, "v", find_axes(ds))
    image = pixels(render_thumbnail(ds, "v", find_axes(ds), tmp_path / "t.png"))
    left, top, right, bottom = thumbnail.layout.map_box
    x = (left + right) // 2
    north, south = image[top + (bottom - top) // 4, x], image[bottom - (bottom - top) // 4, x]
    # First time step: the north is 1 (viridis yellow), the south 0 (viridis purple).
    assert north[1] > 0.8 and south[1] < 0.2, (north, south)
    # Degrees are degrees both ways: the map is twice as wide as it is high.
    assert (right - left) == pytest.approx(2 * (bottom - top), abs=2)


def test_missing_values_are_grey_and_the_range_ignores_outliers(tmp_path):
    ds = north_bright(np.arange(85.0, -90, -10))
    values = ds.v.values.copy()
    values[0, :, :18] = np.nan  # the western half of the first step is missing
    values[0, 0, 20] = 1e6  # one wild value: the colour range is the 1st-99th percentile
    ds["v"] = ds.v.copy(data=values)
    thumbnail = draw_thumbnail(ds, "v", find_axes(ds))
    left, top, right, bottom = thumbnail.layout.map_box
    image = np.asarray(thumbnail.image)
    west = image[(top + bottom) // 2, left + (right - left) // 4]
    assert tuple(west) == MISSING
    north_east = image[top + (bottom - top) // 4, right - (right - left) // 4] / 255
    assert north_east[1] > 0.8, "a single outlier stretched the colours"


def test_curvilinear_grids_use_latitude_to_put_north_up():
    """A Lambert grid (cfgrib's y/x without coordinates): 2-D latitudes say which row is north."""
    yy, xx = np.mgrid[0:4, 0:5]
    field = xr.DataArray(np.zeros((4, 5)), dims=("y", "x"))
    northwards = xr.DataArray(10.0 + yy + 0.1 * xx, dims=("y", "x"))
    assert _extent(field, northwards) == (None, "lower")
    assert _extent(field, northwards[::-1]) == (None, "upper")
    assert _extent(field) == (None, "upper")  # no geography: the image convention


@pytest.mark.parametrize("north", ["last row", "first row"])
def test_a_curvilinear_thumbnail_has_north_up_and_index_ticks_that_say_so(north):
    """Without 1-D coordinates the ticks count rows and columns; when the last row is the
    northernmost it is drawn at the top, and the row ticks run upwards with it."""
    yy, xx = np.mgrid[0:40, 0:50]
    lat = 30.0 + 0.5 * yy + 0.01 * xx
    if north == "first row":
        lat = lat[::-1]
    ds = xr.Dataset({"t": (("y", "x"), lat, {"units": "degrees_north"})},
                    coords={"latitude": (("y", "x"), lat), "longitude": (("y", "x"), 0.5 * xx)})
    thumbnail = draw_thumbnail(ds, "t", find_axes(ds))
    rows = dict((text, y) for y, text in thumbnail.ticks["y"])
    assert set(rows) >= {"0", "30"}
    assert (rows["0"] > rows["30"]) == (north == "last row")  # row 0 lower on the picture
    left, top, right, bottom = thumbnail.layout.map_box
    image = np.asarray(thumbnail.image) / 255
    upper, lower = image[top + 3, (left + right) // 2], image[bottom - 4, (left + right) // 2]
    assert upper[1] > 0.8 and lower[1] < 0.2  # the field is latitude: yellow in the north
    columns = [text for _, text in thumbnail.ticks["x"]]
    assert columns[:2] == ["0", "10"]
    bar = thumbnail.ticks["bar"]
    assert bar[0][0] > bar[-1][0]  # the colour bar's values rise upwards


def inked(image: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """How many dark (text, tick or frame) pixels lie inside ``box``."""
    left, top, right, bottom = box
    return int((image[top:bottom, left:right].max(axis=-1) < 0.4).sum())


def test_the_thumbnail_has_a_labelled_colour_bar(tmp_path):
    """A framed map and, right of it, a colour bar running from low (bottom) to high (top)
    that names the variable and its units; the axes are labelled by their dimensions, with
    ticks, and the title names the variable and the time step drawn."""
    ds = north_bright(np.arange(85.0, -90, -10))
    thumbnail = draw_thumbnail(ds, "v", find_axes(ds))
    layout = thumbnail.layout
    assert (layout.x_label, layout.y_label, layout.bar_label) == ("lon", "lat", "v [K]")
    assert "north is bright" in layout.title and "time=2020-01-01" in layout.title
    image = pixels(thumbnail.save(tmp_path / "t.png"))
    assert image.shape[:2] == (HEIGHT, WIDTH)

    (left, top, right, bottom), (bar_left, bar_top, bar_right, bar_bottom) = (
        layout.map_box, layout.bar_box)
    assert bar_left > right
    column = [tuple(np.round(image[r, (bar_left + bar_right) // 2], 2))
              for r in range(bar_top + 1, bar_bottom - 1)]
    assert len(set(column)) > 20, "the colour bar is missing or flat"
    assert column[0][1] > 0.8 and column[-1][1] < 0.2  # viridis: yellow on top, purple below
    # Something is written where each label and the ticks go (text is dark ink on white).
    assert inked(image, (0, 0, WIDTH, top - 1)) > 100  # the title
    assert inked(image, (left, bottom + 1, right, HEIGHT)) > 100  # x ticks, labels, "lon"
    assert inked(image, (0, top, left - 1, bottom)) > 100  # y ticks, labels, "lat"
    assert inked(image, (bar_right + 1, top, WIDTH, bottom)) > 100  # bar ticks and label


def test_tick_labels_are_round_and_readable():
    assert _ticks(0.0, 360.0, 5) == [0.0, 80.0, 160.0, 240.0, 320.0]
    assert _ticks(-90.0, 90.0, 4) == [-50.0, 0.0, 50.0]
    ticks = _ticks(0.1, 0.9, 4)
    assert [_label(t, ticks) for t in ticks] == ["0.2", "0.4", "0.6", "0.8"]
    small = _ticks(1e-5, 9e-5, 4)
    assert [_label(t, small) for t in small][:2] == ["2e-05", "4e-05"]
    assert _label(-0.0, [-1.0, 0.0, 1.0]) == "0"
    assert _ticks(1.0, 1.0, 5) == [1.0]  # a constant field still gets a tick


def test_a_thumbnail_is_drawn_without_matplotlibs_figure_machinery(tmp_path):
    """The catalogue's picture costs colour maps and a tick locator, not pyplot or a Figure
    (their imports alone were 0.45 s of every bake)."""
    code = (
        "import sys, numpy as np, xarray as xr\n"
        "from recipes_core.stac.axes import find_axes\n"
        "from recipes_core.stac.thumbnail import render_thumbnail\n"
        "ds = xr.Dataset({'v': (('y', 'x'), np.arange(12.0).reshape(3, 4))})\n"
        f"render_thumbnail(ds, 'v', find_axes(ds), {str(tmp_path / 't.png')!r})\n"
        "print(sorted(m for m in ('matplotlib.figure', 'matplotlib.pyplot',\n"
        "      'matplotlib.backends.backend_agg') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
    assert (tmp_path / "t.png").stat().st_size > 500
