"""A staged rechunk: daily files into chunks that span the whole time axis, within max_mem.

The bake goes through an intermediate store (its chunk shape chosen by
``recipes_core.plan.rechunk``), and the result must still equal xarray's combination of the
files, with the intermediate store gone and every task within the memory bound.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xarray as xr
import zarr

from recipes_core.bake import bake
from recipes_core.model import Recipe
from recipes_core.plan.plan import compile_recipe
from recipes_core.runners.profile import load_profile
from recipes_core.storage import AccessPolicy
from recipes_core.testing import archive_oracle, make_daily_archive
from tests.conftest import recipe_dict

DAYS = 120


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_daily_archive(tmp_path_factory.mktemp("archive"), days=DAYS, ny=36, nx=72)


def _bake(archive: list[Path], tmp_path: Path, runner: str, max_task_memory: str,
          **overrides: str):
    recipe = recipe_dict(
        str(archive[0].parent / "demo_{time:%Y%m%d}.nc"),
        {"time": {"start": "2020-01-01", "end": "2020-04-29", "freq": "D", "items_per_file": 1}},
        target={"chunks": {"time": -1, "lat": 4, "lon": 4}},
    )
    settings = [f"max_task_memory={max_task_memory}"] + [f"{k}={v}" for k, v in
                                                          overrides.items()]
    profile = load_profile(runner, settings)
    plan = compile_recipe(Recipe.model_validate(recipe))
    return bake(plan, str(tmp_path / "target"), cache_dir=str(tmp_path / "cache"),
                policy=AccessPolicy(allow_local=True), profile=profile)


def _stages(result) -> list[dict[str, int]]:
    marker = Path(result.store).parent / "template.json"
    return json.loads(marker.read_text())["rechunk_stages"]


@pytest.mark.parametrize("runner", ["direct", "direct-multiprocess", "dask"])
def test_staged_rechunk_equals_xarray(archive, tmp_path, runner) -> None:
    result = _bake(archive, tmp_path, runner, "256KiB")
    stages = _stages(result)
    assert len(stages) == 1 and stages[0]["time"] < DAYS  # one intermediate store, near files
    assert not (Path(result.store).parent / "_rechunk").exists()  # scratch removed
    baked = xr.open_zarr(result.store)
    assert baked.tas.encoding["chunks"] == (DAYS, 4, 4)
    xr.testing.assert_identical(baked.load(), archive_oracle(archive))
    assert result.counters["chunks_written"] == 2 * 9 * 18  # final chunks, counted once
    assert result.counters["rechunk_chunks_written"] > 0


def test_direct_path_when_memory_allows(archive, tmp_path) -> None:
    """With room for whole rows the files are read once either way: no intermediate store."""
    result = _bake(archive, tmp_path, "direct", "64MiB")
    assert _stages(result) == []
    assert "rechunk_chunks_written" not in result.counters
    store = zarr.open_group(result.store, mode="r")
    assert store["tas"].chunks == (DAYS, 4, 4)
