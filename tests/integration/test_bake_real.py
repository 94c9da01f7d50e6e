"""End-to-end bakes of real archives on the direct runner, compared with xarray's answer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from typer.testing import CliRunner

from recipes_core.cli import app
from tests.conftest import EXAMPLES, recipe_dict

ERSST = EXAMPLES / "ersst-v5-monthly.yaml"


def _chunk_digests(store: str) -> dict[str, str]:
    digests = {}
    for path in sorted(Path(store).rglob("*")):
        if path.is_file() and "/c/" in path.as_posix():
            digests[path.relative_to(store).as_posix()] = hashlib.sha256(
                path.read_bytes()).hexdigest()
    return digests


def _open_sources(folder: Path, glob: str) -> xr.Dataset:
    """The oracle: xarray's own combination of the source files, fully loaded."""
    paths = sorted(folder.glob(glob))
    assert paths, f"no sources matching {glob} in {folder}"
    with xr.open_mfdataset(paths, combine="by_coords") as ds:
        return ds.load()


def test_ersst_equals_the_original_file(real_data, bake_file, tmp_path):
    result = bake_file(ERSST)
    assert result.store.endswith("ersst-v5-monthly/v1/ersst-v5-monthly.zarr")
    assert result.counters["sources_staged"] == 128
    assert result.counters["chunks_written"] == 11  # 128 months in chunks of 12

    baked = xr.open_zarr(result.store).load()
    original = xr.open_dataset(real_data / "xarray-tutorial" / "sst.mnmean.nc").load()
    # values, coordinates (descending lat), dtypes and every CF attribute
    xr.testing.assert_identical(baked, original)
    # ... and to what xarray makes of the 128 monthly sources themselves.
    xr.testing.assert_identical(baked, _open_sources(real_data / "ersstv5_monthly", "*.nc"))
    assert baked.sst.dtype == np.float32
    assert baked.lat.values[0] > baked.lat.values[-1]

    group = zarr.open_group(result.store, mode="r")
    assert group.metadata.zarr_format == 3
    assert group["sst"].chunks == (12, 89, 180)
    assert group["time"].chunks == (128,)  # dimension coordinates in one chunk
    assert group.metadata.consolidated_metadata is not None

    # Re-running the same plan reuses the version and writes byte-identical chunks.
    before = _chunk_digests(result.store)
    again = bake_file(ERSST)
    assert again.store == result.store
    assert _chunk_digests(again.store) == before


def test_verify_passes_then_catches_a_corrupted_chunk(real_data, bake_file, tmp_path):
    result = bake_file(ERSST, prune=24)
    runner = CliRunner()
    args = ["verify", result.store, "--recipe", str(ERSST), "--prune", "24", "--allow-local",
            "--cache", str(tmp_path / "cache")]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output

    chunk = sorted(Path(result.store, "sst", "c").rglob("*"))[-1]
    chunk.write_bytes(b"\x00" * 64)
    bad = runner.invoke(app, args)
    assert bad.exit_code == 1
    assert "FAILED" in bad.output and "sst chunk (1, 0, 0)" in bad.output


def test_several_steps_per_file_with_chunks_that_cross_files(real_data, write_recipe,
                                                            bake_file):
    """31 daily files of 24 hourly steps into chunks of 40 hours: chunks span 2-3 files."""
    recipe = recipe_dict(
        str(real_data / "wfde5_tair_daily" / "Tair_WFDE5_{time:%Y-%m-%d}.nc"),
        {"time": {"start": "2017-01-01", "end": "2017-01-31", "freq": "D",
                  "items_per_file": 24}},
        target={"chunks": {"time": 40}},
    )
    result = bake_file(write_recipe(recipe))
    baked = xr.open_zarr(result.store).load()
    original = xr.open_dataset(real_data / "unifhy-wfde5" / "air_temperature.nc").load()
    xr.testing.assert_identical(baked, original)
    xr.testing.assert_identical(baked, _open_sources(real_data / "wfde5_tair_daily",
                                                     "Tair_WFDE5_2017-01-*.nc"))
    assert baked.sizes["time"] == 744
    assert zarr.open_array(result.store, path="Tair").chunks == (40, 20, 28)


def test_shards_and_zarr_v2(real_data, write_recipe, bake_file, tmp_path):
    pattern = str(real_data / "ersstv5_monthly" / "sst.mnmean_{time:%Y-%m}.nc")
    dims = {"time": {"start": "2010-01", "end": "2011-12", "freq": "MS", "items_per_file": 1}}
    original = xr.open_dataset(real_data / "xarray-tutorial" / "sst.mnmean.nc").isel(
        time=slice(0, 24)).load()

    sharded = bake_file(write_recipe(recipe_dict(
        pattern, dims, target={"chunks": {"time": 4}, "shards": {"time": 12}}), "sharded.yaml"),
        target=tmp_path / "sharded")
    array = zarr.open_array(sharded.store, path="sst")
    assert array.shards == (12, 89, 180) and array.chunks == (4, 89, 180)
    assert sharded.counters["chunks_written"] == 2  # one task per shard
    xr.testing.assert_identical(xr.open_zarr(sharded.store).load(), original)

    v2 = bake_file(write_recipe(recipe_dict(
        pattern, dims, target={"chunks": {"time": 5}, "zarr_format": 2,
                               "codec": {"name": "zstd", "level": 3}}), "v2.yaml"),
        target=tmp_path / "v2")
    assert zarr.open_group(v2.store, mode="r").metadata.zarr_format == 2
    xr.testing.assert_identical(xr.open_zarr(v2.store).load(), original)
