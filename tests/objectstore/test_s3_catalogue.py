"""The catalogue of an S3 target (moto's server on loopback): written, opened, re-published."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pystac
import xarray as xr
from typer.testing import CliRunner

import recipes_core
from recipes_core.bake import bake
from recipes_core.cli import app
from recipes_core.plan import compile_recipe
from recipes_core.recipe_io import load_recipe
from recipes_core.runners.profile import RunnerProfile
from recipes_core.stac import open_catalog
from recipes_core.storage import AccessPolicy
from recipes_core.testing import archive_oracle, make_daily_archive
from tests.conftest import recipe_dict
from tests.objectstore.test_s3_sources import s3  # noqa: F401  (the moto server fixture)

ROOT = "s3://catalogue-bucket/root"


def _bake(recipe: Path, tmp_path: Path, endpoint: str):
    plan = compile_recipe(load_recipe(recipe)[0], recipe)
    profile = RunnerProfile.model_validate({
        "name": "s3-target", "engine": "direct",
        "catalog_storage_options": {"endpoint_url": endpoint}})
    return bake(plan, ROOT, cache_dir=str(tmp_path / "cache"),
                policy=AccessPolicy(allow_local=True), profile=profile)


def test_an_s3_target_is_catalogued_and_opens_in_one_line(s3, tmp_path, write_recipe,  # noqa: F811
                                                           monkeypatch):
    import fsspec

    files = make_daily_archive(tmp_path / "archive", days=4)
    originals = [Path(shutil.copy(p, tmp_path)) for p in files]
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("catalogue-bucket")
    recipe = write_recipe(recipe_dict(
        str(tmp_path / "archive" / "demo_{time:%Y%m%d}.nc"),
        {"time": {"start": "2020-01-01", "end": "2020-01-04", "freq": "D", "items_per_file": 1}},
        target={"chunks": {"time": 2}}))
    first = _bake(recipe, tmp_path, s3)
    assert first.catalog == f"{ROOT}/catalog.json"
    for name in ("catalog.json", "index.html", "test-recipe/collection.json",
                 "test-recipe/thumbnail.png", "test-recipe/v1/collection.json",
                 "test-recipe/v1/recipe.yaml", "test-recipe/v1/provenance.json",
                 "test-recipe/v1/thumbnail.png"):
        assert fs.exists(f"catalogue-bucket/root/{name}"), name

    # As written: relative hrefs (portable) and the profile's storage options on the asset.
    raw = json.loads(fs.cat("catalogue-bucket/root/test-recipe/collection.json"))
    assert raw["assets"]["zarr"]["href"] == "v1/test-recipe.zarr"
    assert raw["assets"]["zarr"]["xarray:storage_options"] == {"endpoint_url": s3}

    # Read through fsspec by pystac, from another working directory: absolute hrefs.
    monkeypatch.chdir(tmp_path / "archive")
    collection = open_catalog(f"{ROOT}/catalog.json").get_child("test-recipe")
    assert isinstance(collection, pystac.Collection)
    collection.make_asset_hrefs_absolute()
    asset = collection.assets["zarr"]
    assert asset.href == f"{ROOT}/test-recipe/v1/test-recipe.zarr"
    ds = xr.open_dataset(asset.href, **asset.extra_fields["xarray:open_kwargs"],
                         storage_options=asset.extra_fields["xarray:storage_options"])
    xr.testing.assert_identical(ds.load(), archive_oracle(originals))
    opened = recipes_core.open_dataset(f"{ROOT}/catalog.json", "test-recipe")
    xr.testing.assert_identical(opened.load(), archive_oracle(originals))
    listed = CliRunner().invoke(app, ["ls", f"{ROOT}/catalog.json"])
    assert listed.exit_code == 0 and "test-recipe" in listed.output, listed.output

    # Re-baking the same plan replaces the entry: still one child, still v1.
    again = _bake(recipe, tmp_path, s3)
    assert again.version == 1
    catalog = json.loads(fs.cat("catalogue-bucket/root/catalog.json"))
    assert [link["href"] for link in catalog["links"] if link["rel"] == "child"] == [
        "./test-recipe/collection.json"]

    # A source changed upstream: v2, revising v1, with a version link to v1's Collection.
    changed = make_daily_archive(tmp_path / "fixed", start="2020-01-03", days=1, seed=9)[0]
    shutil.copy(changed, files[2])
    revised = _bake(recipe, tmp_path, s3)
    assert revised.version == 2
    current = json.loads(fs.cat("catalogue-bucket/root/test-recipe/collection.json"))
    assert current["version"] == "2" and current["assets"]["zarr"]["href"] == "v2/test-recipe.zarr"
    assert any(link["rel"] == "predecessor-version" and link["href"].endswith("v1/collection.json")
               for link in current["links"])
    prov = json.loads(fs.cat("catalogue-bucket/root/test-recipe/v2/provenance.json"))
    revisions = [r for r in prov["wasDerivedFrom"].values()
                 if r.get("prov:type", {}).get("$") == "prov:Revision"]
    assert len(revisions) == 2  # the changed source and the store
    frozen = json.loads(fs.cat("catalogue-bucket/root/test-recipe/v1/collection.json"))
    assert frozen["assets"]["zarr"]["href"] == "test-recipe.zarr"
    xr.testing.assert_identical(
        recipes_core.open_dataset(f"{ROOT}/catalog.json", "test-recipe").load(),
        archive_oracle(files))
