"""The benchmark's workload: a daily CF-netCDF4 archive, its recipes and the runner profiles.

Why not ``recipes_core.testing.make_daily_archive``: it always zlib-compresses netCDF-4 files
and evaluates four full-grid cosines per variable and day, so at 1.1 GB it spends most of its
time in zlib and the benchmark would then measure zlib inflation instead of the pipeline. This
generator keeps what matters for a bake (one file per day, per-file time units, unlimited
``time``, descending latitude, 0..360 longitude, float32 variables with ``_FillValue`` and a
static land mask of fills) and writes **uncompressed** netCDF-4 (HDF5 chunks of one day), so
reading a file costs about a memcpy. The fields are the test kit's travelling planetary waves,
computed as a rank-8 matrix product instead of full-grid cosines (about 50x faster).

Everything lands in ``bench/data/<key>/`` (``key`` names every parameter), with a
``manifest.json`` written last: a re-run with the same parameters reuses the files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
GENERATOR_VERSION = 2  # bump when the files change, so cached archives are regenerated
FILENAME = "bench_{time:%Y%m%d}.nc"
_EPOCH = dt.date(1970, 1, 1)

# name -> (long_name, units, standard_name, _FillValue), the CF metadata of the real variables.
_VARIABLES: dict[str, tuple[str, str, str, float]] = {
    "tas": ("Near-Surface Air Temperature", "K", "air_temperature", 1e20),
    "pr": ("Precipitation", "kg m-2 s-1", "precipitation_flux", -9999.0),
    "psl": ("Sea Level Pressure", "Pa", "air_pressure_at_mean_sea_level", 1e20),
}

# The codecs a run can use: the recipe's ``target.codec`` and the same compressor for xarray.
CODECS: dict[str, dict[str, Any]] = {
    "blosc-lz4": {"name": "blosc", "cname": "lz4", "clevel": 5, "shuffle": "shuffle"},
    "zstd-0": {"name": "zstd", "level": 0},
}


@dataclass(frozen=True)
class Workload:
    """The archive's shape: ``days`` daily files of ``nvars`` float32 variables on ny x nx."""

    days: int = 365
    ny: int = 360
    nx: int = 720
    nvars: int = 3
    start: str = "2000-01-01"
    seed: int = 0
    time_chunk: int = 30

    @property
    def key(self) -> str:
        return (f"daily-{self.days}d-{self.ny}x{self.nx}-{self.nvars}v-{self.start}"
                f"-s{self.seed}-g{GENERATOR_VERSION}")

    @property
    def variables(self) -> list[str]:
        known = list(_VARIABLES)
        return known[: self.nvars] + [f"var{i}" for i in range(len(known), self.nvars)]

    @property
    def nbytes(self) -> int:
        """Uncompressed bytes of the data variables: what MB/s figures are computed from."""
        return self.days * self.nvars * self.ny * self.nx * 4

    @property
    def first_day(self) -> dt.date:
        return dt.date.fromisoformat(self.start)

    @property
    def last_day(self) -> dt.date:
        return self.first_day + dt.timedelta(days=self.days - 1)

    def directory(self, root: Path = DATA_DIR) -> Path:
        return root / self.key

    def files(self, root: Path = DATA_DIR) -> list[Path]:
        folder = self.directory(root) / "files"
        return [folder / FILENAME.format(time=self.first_day + dt.timedelta(days=i))
                for i in range(self.days)]


SIZES: dict[str, Workload] = {
    "quick": Workload(days=64, ny=180, nx=360),  # ~50 MB: a smoke test
    "default": Workload(),  # 365 x 3 x 360 x 720 float32 = 1.1 GB
    "large": Workload(days=3650),  # ~11 GB: ten years of daily files
}


# ---- values --------------------------------------------------------------------------------
def _grid(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    lat = np.linspace(85.0, -85.0, ny) if ny > 1 else np.array([0.0])
    lon = np.arange(nx, dtype=np.float64) * (360.0 / nx)
    return lat, lon


def _land_mask(seed: int, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """About a tenth of the grid in a few static blobs (True = fill value)."""
    rng = np.random.default_rng([seed, 0x1A2D])
    p1, p2 = rng.uniform(0.0, 2.0 * np.pi, size=2)
    lat_r, lon_r = np.deg2rad(lat)[:, None], np.deg2rad(lon)[None, :]
    blobs = np.cos(2.0 * lon_r + p1) * np.cos(2.0 * lat_r + p2) + 0.3 * np.sin(3.0 * lon_r + p2)
    return blobs > 0.75


class _Fields:
    """Smooth daily fields: four travelling waves per variable, plus a climate per variable.

    ``cos(k*lon + m*lat + p) = cos(m*lat)cos(k*lon + p) - sin(m*lat)sin(k*lon + p)``, so a day
    is one (ny x 8) @ (8 x nx) product instead of four full-grid cosines.
    """

    def __init__(self, workload: Workload) -> None:
        self.lat, self.lon = _grid(workload.ny, workload.nx)
        self.seed = workload.seed
        self.mask = _land_mask(workload.seed, self.lat, self.lon)
        lat_r = np.deg2rad(self.lat)[:, None]
        self.sin_lat = np.sin(lat_r)
        self.cos_lat = np.cos(lat_r)
        self.itcz = np.exp(-((self.lat[:, None] / 12.0) ** 2))

    def wave(self, variable: str, day: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, zlib.crc32(variable.encode())])
        k = rng.integers(1, 5, size=4)
        m = rng.integers(1, 4, size=4)
        amplitude = rng.uniform(0.5, 1.0, size=4)
        amplitude /= amplitude.sum()
        phase = rng.uniform(0.0, 2.0 * np.pi, size=4) + rng.uniform(-0.3, 0.3, size=4) * day
        lat_r, lon_r = np.deg2rad(self.lat), np.deg2rad(self.lon)
        left = np.concatenate([np.cos(np.outer(lat_r, m)), -np.sin(np.outer(lat_r, m))], axis=1)
        arg = np.outer(k, lon_r) + phase[:, None]
        right = np.concatenate([np.cos(arg), np.sin(arg)], axis=0) * np.tile(amplitude, 2)[:, None]
        # einsum, not @: OpenBLAS threads make this tiny product ~10x slower on 2 cores.
        return np.einsum("ik,kj->ij", left, right)

    def field(self, variable: str, day: int) -> np.ndarray:
        """float32 values of ``variable`` on absolute ``day``, with the land mask as fills."""
        wave = self.wave(variable, day)
        season = np.cos(2.0 * np.pi * (day - 15) / 365.2425)
        if variable == "tas":
            values = 258.0 + 42.0 * self.cos_lat**1.2 - 8.0 * self.sin_lat * season + 3.0 * wave
        elif variable == "pr":
            values = 2e-5 * (1.0 + 2.0 * self.itcz) * np.exp(1.2 * wave)
        elif variable == "psl":
            values = 101325.0 + 1500.0 * wave - 400.0 * self.sin_lat * season
        else:
            values = wave + 0.1 * season
        out = np.broadcast_to(values, wave.shape).astype(np.float32)
        out[self.mask] = np.float32(_spec(variable)[3])
        return out


def _spec(variable: str) -> tuple[str, str, str, float]:
    return _VARIABLES.get(variable, (variable, "1", "", 1e20))


# ---- files ---------------------------------------------------------------------------------
def _write_day(path: Path, workload: Workload, fields: _Fields, day: dt.date) -> None:
    import netCDF4

    tmp = path.with_suffix(".nc.part")
    with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.set_fill_off()  # every value is written: pre-filling would write each byte twice
        nc.setncatts({
            "Conventions": "CF-1.8",
            "title": "Synthetic daily near-surface climate (arco benchmark)",
            "institution": "arco benchmark",
            "source": f"bench.workload (synthetic, seed={workload.seed})",
            "history": "created by bench/workload.py",  # fixed: regenerating gives equal files
            "frequency": "day",
        })
        nc.createDimension("time", None)  # unlimited, as model output usually is
        nc.createDimension("lat", workload.ny)
        nc.createDimension("lon", workload.nx)
        time = nc.createVariable("time", "f8", ("time",))
        time.setncatts({"standard_name": "time", "long_name": "time", "axis": "T",
                        # every file counts from its own day, like many real archives
                        "units": f"days since {day.isoformat()} 00:00:00",
                        "calendar": "standard"})
        time[:] = np.zeros(1)
        for name, values, attrs in (
            ("lat", fields.lat, {"standard_name": "latitude", "long_name": "latitude",
                                 "units": "degrees_north", "axis": "Y"}),
            ("lon", fields.lon, {"standard_name": "longitude", "long_name": "longitude",
                                 "units": "degrees_east", "axis": "X"}),
        ):
            coord = nc.createVariable(name, "f8", (name,))
            coord.setncatts(attrs)
            coord[:] = values
        absolute = (day - _EPOCH).days
        for name in workload.variables:
            long_name, units, standard_name, fill = _spec(name)
            # zlib off on purpose: reads then cost ~a memcpy and the bake is what is measured.
            var = nc.createVariable(name, "f4", ("time", "lat", "lon"), zlib=False,
                                    chunksizes=(1, workload.ny, workload.nx),
                                    fill_value=np.float32(fill))
            attrs = {"long_name": long_name, "units": units}
            if standard_name:
                attrs["standard_name"] = standard_name
            var.setncatts(attrs)
            var.set_auto_maskandscale(False)  # the fills are already in the values
            var[:] = fields.field(name, absolute)[None]
    os.replace(tmp, path)


def _write_days(args: tuple[Workload, list[str], str]) -> int:
    workload, days, folder = args
    fields = _Fields(workload)
    for text in days:
        day = dt.date.fromisoformat(text)
        _write_day(Path(folder) / FILENAME.format(time=day), workload, fields, day)
    return len(days)


def generate(workload: Workload, root: Path = DATA_DIR, *, workers: int = 2,
             log: Any = print) -> Path:
    """Write the archive unless ``manifest.json`` says an identical one is there already."""
    folder = workload.directory(root)
    manifest = folder / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("workload") == asdict(workload):
        return folder
    files_dir = folder / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    days = [(workload.first_day + dt.timedelta(days=i)).isoformat() for i in range(workload.days)]
    batches = [days[i::workers * 8] for i in range(min(len(days), workers * 8))]
    log(f"generating {workload.days} files ({workload.nbytes / 1e9:.2f} GB of data) in {files_dir}")
    with ProcessPoolExecutor(max_workers=workers) as pool:
        written = sum(pool.map(_write_days, [(workload, b, str(files_dir)) for b in batches]))
    files = workload.files(root)
    sizes = sum(p.stat().st_size for p in files)
    manifest.write_text(json.dumps({"workload": asdict(workload), "files": written,
                                    "file_bytes": sizes, "data_bytes": workload.nbytes}, indent=1))
    return folder


def warm_page_cache(paths: Sequence[Path]) -> int:
    """Read every file once so that all runs read the sources from memory, on equal terms."""
    total = 0
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(1 << 22):
                total += len(block)
    return total


# ---- recipes and runner profiles ---------------------------------------------------------
def recipe_text(workload: Workload, codec: str) -> str:
    import yaml

    recipe = {
        "id": "bench-daily",
        "title": "arco benchmark archive",
        "description": f"Synthetic daily archive for the benchmark ({workload.key}).",
        "license": "CC0-1.0",
        "maintainers": [{"name": "arco benchmark"}],
        "source": {
            "pattern": "files/" + FILENAME,  # relative to the recipe: needs --allow-local
            "dims": {"time": {"start": workload.first_day.isoformat(),
                              "end": workload.last_day.isoformat(), "freq": "D",
                              "items_per_file": 1}},
            "format": "netcdf4",
        },
        "target": {"chunks": {"time": workload.time_chunk, "lat": -1, "lon": -1},
                   "zarr_format": 3, "codec": CODECS[codec]},
    }
    return yaml.safe_dump(recipe, sort_keys=False)


def write_recipe(workload: Workload, codec: str, root: Path = DATA_DIR) -> Path:
    path = workload.directory(root) / f"recipe-{codec}.yaml"
    path.write_text(recipe_text(workload, codec))
    return path


# runner name -> the engine section of its profile
PROFILES: dict[str, dict[str, Any]] = {
    "direct-1": {"engine": "direct", "direct": {"running_mode": "in_memory", "num_workers": 1}},
    "direct-2": {"engine": "direct",
                 "direct": {"running_mode": "multi_processing", "num_workers": 2}},
    "dask-1": {"engine": "dask",
               "dask": {"scheduler": "local", "n_workers": 1, "threads_per_worker": 1}},
    "dask-2": {"engine": "dask",
               "dask": {"scheduler": "local", "n_workers": 2, "threads_per_worker": 1}},
    # One core per worker (no background writer): how the bake scales with processes alone.
    "dasksync-1": {"engine": "dask", "write_threads": 0,
                   "dask": {"scheduler": "local", "n_workers": 1, "threads_per_worker": 1}},
    "dasksync-2": {"engine": "dask", "write_threads": 0,
                   "dask": {"scheduler": "local", "n_workers": 2, "threads_per_worker": 1}},
}


def write_profile(runner: str, folder: Path) -> Path:
    import yaml

    profile = {"name": f"bench-{runner}", "description": f"benchmark runner {runner}",
               **PROFILES[runner], "access": {"allow_local": True}}
    path = folder / "profiles" / f"{runner}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path
