"""Bakes of synthetic archives served over a real local HTTP server."""

from __future__ import annotations

import xarray as xr

from recipes_core.testing import ArchiveServer, archive_oracle, make_daily_archive
from tests.conftest import recipe_dict


def test_http_archive_with_five_days_per_file(tmp_path, write_recipe, bake_file):
    """Files of 5 steps with per-file time units into chunks of 7: chunks straddle files."""
    files = make_daily_archive(tmp_path / "archive", days=30, steps_per_file=5)
    with ArchiveServer(tmp_path / "archive") as server:
        recipe = recipe_dict(
            server.url + "/demo_{time:%Y%m%d}.nc",
            {"time": {"start": "2020-01-01", "end": "2020-01-26", "freq": "5D",
                      "items_per_file": 5}},
            target={"chunks": {"time": 7}},
        )
        result = bake_file(write_recipe(recipe), allow_private_hosts=True)
        # Each file is downloaded once, by the staging step, and opened locally after that.
        assert all(server.count(f.name) == 1 for f in files)
    baked = xr.open_zarr(result.store).load()
    expected = archive_oracle(files)
    xr.testing.assert_identical(baked, expected)
    assert result.counters["chunks_written"] == 2 * 5  # 2 variables, 30 days / 7


def test_merge_dimension_one_file_per_variable(tmp_path, write_recipe, bake_file):
    files = make_daily_archive(tmp_path / "archive", days=12, variables=("tas", "pr"),
                               split_by_variable=True)
    recipe = recipe_dict(
        str(tmp_path / "archive" / "{variable}_{time:%Y%m%d}.nc"),
        {"time": {"start": "2020-01-01", "end": "2020-01-12", "freq": "D",
                  "items_per_file": 1},
         "variable": {"values": ["tas", "pr"]}},
        target={"chunks": {"time": 5}},
    )
    result = bake_file(write_recipe(recipe))
    baked = xr.open_zarr(result.store).load()
    assert set(baked.data_vars) == {"tas", "pr"}
    with xr.open_mfdataset(sorted(files), combine="by_coords") as sources:
        expected = sources.load()
    # values, coordinates, dtypes, variable and global attributes (the same in every file)
    xr.testing.assert_identical(baked, expected)
    assert baked.attrs["Conventions"] == "CF-1.8"


def test_transforms_are_applied(tmp_path, write_recipe, bake_file):
    files = make_daily_archive(tmp_path / "archive", days=6)
    recipe = recipe_dict(
        str(tmp_path / "archive" / "demo_{time:%Y%m%d}.nc"),
        {"time": {"start": "2020-01-01", "end": "2020-01-06", "freq": "D"}},
        transforms=[
            {"select_variables": ["tas"]},
            {"sel": {"lat": {"start": 60, "stop": -60}}},
            {"rename": {"lat": "latitude", "tas": "air_temperature"}},
            {"set_attrs": {"dataset": {"title": "renamed", "history": None},
                           "variables": {"air_temperature": {"comment": "baked"}}}},
            {"astype": {"air_temperature": "float64"}},
        ],
        target={"chunks": {"time": 4, "latitude": -1}},
    )
    result = bake_file(write_recipe(recipe))
    baked = xr.open_zarr(result.store).load()
    expected = (archive_oracle(files)[["tas"]].sel(lat=slice(60, -60))
                .rename(lat="latitude", tas="air_temperature"))
    expected["air_temperature"] = expected.air_temperature.astype("float64")
    xr.testing.assert_equal(baked, expected)
    assert baked.attrs["title"] == "renamed" and "history" not in baked.attrs
    assert baked.air_temperature.attrs["comment"] == "baked"
    assert baked.air_temperature.dtype == "float64"


def _chunk_bytes(store: str) -> dict[str, bytes]:
    from pathlib import Path

    root = Path(store)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "/c/" in f"/{p.relative_to(root).as_posix()}"}


def test_write_threads_change_nothing_but_speed(tmp_path, write_recipe):
    """Units written on the task's own thread (0) or by background threads give the same
    chunks, byte for byte, and every chunk exists."""
    from recipes_core.bake import bake
    from recipes_core.plan import compile_recipe
    from recipes_core.recipe_io import load_recipe
    from recipes_core.runners.profile import RunnerProfile
    from recipes_core.storage import AccessPolicy

    make_daily_archive(tmp_path / "archive", days=20, variables=("tas", "pr"))
    path = write_recipe(recipe_dict(
        str(tmp_path / "archive" / "demo_{time:%Y%m%d}.nc"),
        {"time": {"start": "2020-01-01", "end": "2020-01-20", "freq": "D",
                  "items_per_file": 1}},
        target={"chunks": {"time": 3, "lat": 4}},
    ))
    plan = compile_recipe(load_recipe(path)[0], path)
    chunks = {}
    for threads in (0, 1, 3):
        profile = RunnerProfile(name="direct", engine="direct", write_threads=threads,
                                max_task_memory=64 * 1024)  # several units wait at once
        result = bake(plan, str(tmp_path / f"t{threads}"), cache_dir=str(tmp_path / "cache"),
                      policy=AccessPolicy(allow_local=True), profile=profile)
        chunks[threads] = _chunk_bytes(result.store)
    assert chunks[0] and chunks[0] == chunks[1] == chunks[3]
    baked = xr.open_zarr(result.store)
    expected_chunks = sum(baked[v].data.npartitions for v in ("tas", "pr"))
    assert sum(1 for k in chunks[0] if k.split("/")[0] in ("tas", "pr")) == expected_chunks
