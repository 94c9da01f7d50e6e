"""One contract every engine that runs here must keep: the same chunks, byte for byte.

Each engine bakes the ERSST example (128 real files, chunks spanning 12 files) and a merge
recipe (one file per variable), and every chunk must equal the direct runner's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import xarray as xr

from recipes_core.bake import bake
from recipes_core.plan import compile_recipe
from recipes_core.recipe_io import load_recipe
from recipes_core.runners.profile import RunnerProfile
from recipes_core.storage import AccessPolicy
from recipes_core.testing import archive_oracle, make_daily_archive
from tests.conftest import EXAMPLES, recipe_dict

ENGINES = {
    "direct": {"engine": "direct"},
    "direct-2-threads": {"engine": "direct",
                         "direct": {"running_mode": "multi_threading", "num_workers": 2}},
    "direct-2-processes": {"engine": "direct",
                           "direct": {"running_mode": "multi_processing", "num_workers": 2}},
    "dask-local-2-workers": {"engine": "dask", "dask": {"scheduler": "local", "n_workers": 2}},
    "portable-embedded": {"engine": "flink",
                          "flink": {"job_endpoint": "embed", "environment_type": "LOOPBACK"}},
}


def chunk_digests(store: str) -> dict[str, str]:
    return {
        p.relative_to(store).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(store).rglob("*")) if p.is_file() and "/c/" in p.as_posix()
    }


@pytest.fixture(scope="module")
def merge_recipe(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("merge")
    make_daily_archive(folder / "archive", days=10, variables=("tas", "pr"),
                       split_by_variable=True)
    recipe = recipe_dict(
        str(folder / "archive" / "{variable}_{time:%Y%m%d}.nc"),
        {"time": {"start": "2020-01-01", "end": "2020-01-10", "freq": "D", "items_per_file": 1},
         "variable": {"values": ["tas", "pr"]}},
        id="merge-recipe", target={"chunks": {"time": 4}},
    )
    import yaml

    path = folder / "merge.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _bake_all(recipe: Path, root: Path, prune: int | None) -> dict[str, str]:
    plan = compile_recipe(load_recipe(recipe)[0], recipe)
    if prune:
        plan = plan.prune(prune)
    stores = {}
    for name, settings in ENGINES.items():
        profile = RunnerProfile.model_validate({"name": name, **settings})
        result = bake(plan, str(root / name), cache_dir=str(root / "cache"),
                      policy=AccessPolicy(allow_local=True), profile=profile)
        assert result.counters["chunks_written"] > 0, name
        stores[name] = result.store
    return stores


def _assert_identical_chunks(stores: dict[str, str]) -> None:
    reference = chunk_digests(stores["direct"])
    assert reference
    for name, store in stores.items():
        assert chunk_digests(store) == reference, f"{name} wrote different chunks"


def test_ersst_on_every_engine(real_data, tmp_path):
    stores = _bake_all(EXAMPLES / "ersst-v5-monthly.yaml", tmp_path, prune=36)
    _assert_identical_chunks(stores)
    original = xr.open_dataset(real_data / "xarray-tutorial" / "sst.mnmean.nc").isel(
        time=slice(0, 36)).load()
    for store in stores.values():
        xr.testing.assert_identical(xr.open_zarr(store).load(), original)


def test_merge_recipe_on_every_engine(merge_recipe, tmp_path):
    stores = _bake_all(merge_recipe, tmp_path, prune=None)
    _assert_identical_chunks(stores)
    expected = archive_oracle(sorted((merge_recipe.parent / "archive").glob("*.nc")))
    xr.testing.assert_equal(xr.open_zarr(stores["dask-local-2-workers"]).load(), expected)
