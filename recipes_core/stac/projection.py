"""Longitudes and latitudes of a projected grid (x/y plus a CF grid mapping), through pyproj.

pyproj is optional: without it a projected grid that has no latitude/longitude coordinates gets
the whole world as its box, with a note (see :mod:`recipes_core.stac.extents`).

pyproj runs in a child interpreter. The eccodes wheel (cfgrib's backend, which xarray loads
whenever it guesses an engine) bundles a libproj of its own; once that is loaded, pyproj's calls
resolve to it, it rejects pyproj's database, and the interpreter aborts with a double free
(measured: pyproj 3.7.2 after ``import eccodes``). A bake loads eccodes, and an abort there
would kill the bake after its data was written, so the projection gets a fresh interpreter that
imports nothing else. It costs a few tenths of a second, only for such grids.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Any

import numpy as np

from recipes_core.stac.jsonvalue import json_value

# Points per side of the sampled grid: enough to follow a projected edge or a disk's limb.
SAMPLES_PER_SIDE = 200
TIMEOUT_S = 120

_CHILD = r"""
import json, sys
import numpy as np
from pyproj import CRS, Transformer

request = json.load(sys.stdin)
mapping = request["grid_mapping"]
crs = CRS.from_cf(mapping)
x, y = np.asarray(request["x"], float), np.asarray(request["y"], float)
units = request["units"].strip().lower()
if mapping.get("grid_mapping_name") == "geostationary" and units.startswith("rad"):
    # CF geostationary x/y are scanning angles; PROJ's geos wants them times the height.
    scale = float(mapping["perspective_point_height"])
elif units in ("km", "kilometre", "kilometer", "kilometres", "kilometers"):
    scale = 1000.0
else:
    scale = 1.0
xx, yy = np.meshgrid(x * scale, y * scale)
lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(xx.ravel(), yy.ravel())
lon, lat = np.asarray(lon), np.asarray(lat)
ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90)  # off a disk's limb: inf
epsg = crs.to_epsg()
json.dump({"lon": lon[ok].tolist(), "lat": lat[ok].tolist(),
           "crs": epsg if epsg else crs.to_wkt()}, sys.stdout)
"""


class ProjectionUnavailable(Exception):
    """pyproj is missing or cannot read the grid mapping; the reason is the message."""


def _sample(values: np.ndarray) -> list[float]:
    values = np.unique(np.asarray(values, dtype=float))
    values = values[np.isfinite(values)]
    if values.size > SAMPLES_PER_SIDE:
        values = values[np.linspace(0, values.size - 1, SAMPLES_PER_SIDE).round().astype(int)]
    return values.tolist()


def projected_lonlat(
    grid_mapping: dict[str, Any], xs: np.ndarray, ys: np.ndarray, *, x_units: str = ""
) -> tuple[np.ndarray, np.ndarray, int | str]:
    """Longitudes and latitudes of a sampled grid of ``xs`` by ``ys``, and the grid's CRS.

    The CRS is an EPSG code when PROJ knows one, else WKT2.
    """
    if importlib.util.find_spec("pyproj") is None:
        raise ProjectionUnavailable("pyproj is not installed (pip install pyproj to compute it)")
    request = {
        "grid_mapping": json_value(grid_mapping),
        "x": _sample(xs),
        "y": _sample(ys),
        "units": x_units,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ProjectionUnavailable(f"pyproj took more than {TIMEOUT_S} s") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no message"]
        raise ProjectionUnavailable(f"pyproj could not use the grid mapping ({lines[-1]})")
    answer = json.loads(done.stdout)
    if not answer["lon"]:
        raise ProjectionUnavailable("no point of the grid maps onto the Earth")
    return np.asarray(answer["lon"]), np.asarray(answer["lat"]), answer["crs"]
