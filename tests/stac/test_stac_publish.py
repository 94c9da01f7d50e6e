"""The catalogue a bake publishes: valid offline, opens in one line, matches the data."""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path

import pystac
import pytest
import xarray as xr
import yaml

import recipes_core
from recipes_core.plan.plan import recipe_hash
from recipes_core.recipe_io import load_recipe
from recipes_core.stac import validate_catalog
from recipes_core.stac.open import find_collection, open_catalog
from recipes_core.stac.provenance import redact_options, type_name
from recipes_core.storage.cache import sha256_file
from recipes_core.testing import make_daily_archive
from tests.stac.conftest import ERSST, ERSST_ID

STEP_COLLECTION = f"{ERSST_ID}/collection.json"


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_catalogue_validates_offline(ersst_target):
    report = validate_catalog(ersst_target)
    assert report.ok, [str(p) for p in report.problems]
    assert {Path(p).relative_to(ersst_target).as_posix() for p in report.checked} == {
        "catalog.json", STEP_COLLECTION, f"{ERSST_ID}/v1/collection.json"}


def test_open_dataset_in_one_line_equals_the_original(ersst_target, real_data):
    ds = recipes_core.open_dataset(ersst_target / "catalog.json", ERSST_ID)
    assert ds.sst.chunks is not None  # lazy, along the store's chunks
    original = xr.open_dataset(real_data / "xarray-tutorial" / "sst.mnmean.nc")
    xr.testing.assert_identical(ds.load(), original.load())


def test_every_stac_client_opens_the_zarr_asset(ersst_target, monkeypatch):
    collection = pystac.Catalog.from_file(str(ersst_target / "catalog.json")).get_child(ERSST_ID)
    asset = collection.assets["zarr"]
    assert asset.href == f"v1/{ERSST_ID}.zarr"  # relative: the catalogue can move
    assert asset.media_type == "application/vnd.zarr"  # no version parameter (xpystac 0.5)
    assert asset.roles == ["data", "zarr"]
    assert asset.extra_fields["xarray:open_kwargs"] == {"engine": "zarr", "consolidated": True,
                                                       "chunks": {}}
    assert "xarray:storage_options" not in asset.extra_fields  # a local store needs none
    assert (asset.extra_fields["zarr:zarr_format"], asset.extra_fields["zarr:consolidated"],
            asset.extra_fields["zarr:node_type"]) == (3, True, "group")
    store_links = [link for link in collection.links if link.rel == "store"]
    assert [link.href for link in store_links] == [asset.href]

    # The asset's href as written opens beside the Collection ...
    monkeypatch.chdir(ersst_target / ERSST_ID)
    ds = xr.open_dataset(asset.href, **asset.extra_fields["xarray:open_kwargs"])
    assert ds.sst.shape == (128, 89, 180)
    # ... and from anywhere through its absolute href ...
    monkeypatch.chdir("/")
    ds = xr.open_dataset(asset.get_absolute_href(), **asset.extra_fields["xarray:open_kwargs"])
    assert ds.sst.shape == (128, 89, 180)
    # ... or as written once pystac makes it absolute; xpystac opens the asset itself.
    collection.make_asset_hrefs_absolute()
    ds = xr.open_dataset(asset.href, **asset.extra_fields["xarray:open_kwargs"])
    assert ds.sst.shape == (128, 89, 180)
    pytest.importorskip("xpystac")
    via_xpystac = xr.open_dataset(asset)
    xr.testing.assert_identical(via_xpystac, ds)
    # Our own loader hands out Collections whose hrefs are already absolute.
    ours = find_collection(open_catalog(ersst_target), ERSST_ID)
    assert Path(ours.assets["zarr"].href).is_absolute()
    xr.testing.assert_identical(xr.open_dataset(ours.assets["zarr"]), ds)


# A static catalogue is not an API: pystac-client says so, and falls back to pystac.
@pytest.mark.filterwarnings("ignore::pystac_client.warnings.NoConformsTo")
@pytest.mark.filterwarnings("ignore::pystac_client.warnings.FallbackToPystac")
def test_pystac_client_opens_the_static_catalogue(ersst_target):
    pystac_client = pytest.importorskip("pystac_client")
    client = pystac_client.Client.open(str(ersst_target / "catalog.json"))
    collections = list(client.get_collections())
    assert [c.id for c in collections] == [ERSST_ID]
    assert collections[0].extent.temporal.intervals[0][0].year == 2010


def test_collection_fields_and_extents_match_the_data(ersst_target):
    document = read(ersst_target / STEP_COLLECTION)
    recipe = yaml.safe_load(ERSST.read_text())
    assert (document["id"], document["title"], document["license"]) == (
        ERSST_ID, recipe["title"], "CC0-1.0")
    assert document["keywords"] == recipe["keywords"]
    assert document["providers"][0]["name"] == recipe["providers"][0]["name"]
    assert document["providers"][0]["roles"] == ["producer", "licensor"]
    # 2-degree cells centred on 88..-88 and 0..358: half a cell beyond, longitudes all round.
    assert document["extent"]["spatial"]["bbox"] == [[-180.0, -89.0, 180.0, 89.0]]
    assert document["extent"]["temporal"]["interval"] == [
        ["2010-01-01T00:00:00Z", "2020-08-01T00:00:00Z"]]

    dims = document["cube:dimensions"]
    assert dims["time"] == {"type": "temporal", "extent": ["2010-01-01T00:00:00Z",
                                                           "2020-08-01T00:00:00Z"],
                            "step": "P1M", "description": "Time"}
    assert dims["lat"]["extent"] == [-88.0, 88.0] and dims["lat"]["step"] == -2.0
    assert dims["lon"]["extent"] == [0.0, 358.0] and dims["lon"]["step"] == 2.0
    assert dims["lon"]["reference_system"] == 4326 and dims["lon"]["axis"] == "x"
    sst = document["cube:variables"]["sst"]
    assert sst["unit"] == "degC" and sst["type"] == "data"
    assert sst["dimensions"] == ["time", "lat", "lon"]
    assert sst["shape"] == [128, 89, 180] and sst["chunks"] == [12, 89, 180]
    assert sst["attrs"]["units"] == "degC" and sst["nodata"] == "nan"
    assert "https://stac-extensions.github.io/datacube/v2.2.0/schema.json" in document[
        "stac_extensions"]

    links = {link["rel"]: link for link in document["links"]}
    assert links["via"]["href"] == "v1/recipe.yaml"
    assert links["license"]["href"] == "https://spdx.org/licenses/CC0-1.0.html"
    assert document["version"] == "1" and "predecessor-version" not in links
    assert document["assets"]["thumbnail"]["href"] == "thumbnail.png"
    assert (ersst_target / ERSST_ID / "thumbnail.png").stat().st_size > 10_000
    assert (ersst_target / "index.html").exists()


def test_processing_fields_summarise_the_provenance(ersst_target):
    document = read(ersst_target / STEP_COLLECTION)
    provenance = document["assets"]["provenance"]
    assert provenance["href"] == "v1/provenance.json" and "metadata" in provenance["roles"]
    state = read(ersst_target / ERSST_ID / "v1" / "bake.json")
    assert provenance["processing:datetime"] == state["ended"]
    assert provenance["processing:level"] == "NOAA Level 4"  # the data's ACDD processing_level
    assert provenance["processing:software"]["arco-recipes"] == importlib.metadata.version(
        "arco-recipes")
    assert "128 source files" in provenance["processing:lineage"]


def test_provenance_hashes_can_be_recomputed(ersst_target):
    version_dir = ersst_target / ERSST_ID / "v1"
    prov = read(version_dir / "provenance.json")
    for key in ("prefix", "entity", "activity", "agent", "used", "wasGeneratedBy",
                "wasAssociatedWith", "wasAttributedTo", "wasDerivedFrom"):
        assert key in prov
    assert prov["prefix"]["prov"] == "http://www.w3.org/ns/prov#"

    sources = [e for e in prov["entity"].values() if type_name(e) == "arco:SourceFile"]
    assert len(sources) == 128
    for source in sources:
        path = Path(source["prov:location"])
        assert sha256_file(path)[0] == source["arco:sha256"]
        assert path.stat().st_size == source["arco:size"]

    recipe = prov["entity"]["arco:recipe"]
    copy = version_dir / recipe["prov:location"]
    assert sha256_file(copy)[0] == recipe["arco:sha256"]
    original, _ = load_recipe(ERSST)
    reloaded, _ = load_recipe(copy)  # the copy is a valid recipe, equal to the one baked
    assert recipe_hash(reloaded) == recipe_hash(original) == recipe["arco:recipe_hash"]

    state = read(version_dir / "bake.json")
    bake = prov["activity"]["arco:bake"]
    assert (bake["prov:startTime"], bake["prov:endTime"]) == (state["started"], state["ended"])
    assert bake["arco:plan_hash"] == state["plan_hash"] == prov["entity"]["arco:store"][
        "arco:plan_hash"]
    assert bake["arco:runner"] == "FnApiRunner"
    software = {a["prov:label"]: a["arco:version"] for a in prov["agent"].values()
                if type_name(a) == "prov:SoftwareAgent"}
    for name in ("arco-recipes", "apache-beam", "xarray", "zarr"):
        assert software[name] == importlib.metadata.version(name)
    people = [a for a in prov["agent"].values() if type_name(a) == "prov:Person"]
    assert [p["arco:github"] for p in people] == ["arco-recipes"]
    plans = [a.get("prov:plan") for a in prov["wasAssociatedWith"].values()]
    assert "arco:recipe" in plans


def test_options_are_published_without_secrets():
    args = ["--runner=DataflowRunner", "--temp_location=gs://user:pw@bucket/tmp?sig=abc",
            "--aws_secret_access_key=XYZ", "--token", "abc", "--project=p"]
    redacted = redact_options(args)
    assert redacted == ["--runner=DataflowRunner", "--temp_location=gs://***@bucket/tmp?sig=***",
                        "--aws_secret_access_key=***", "--token", "***", "--project=p"]
    assert not any(secret in " ".join(redacted) for secret in ("pw", "XYZ", "abc"))


def daily_recipe(tmp_path: Path) -> Path:
    archive = tmp_path / "daily"
    make_daily_archive(archive, days=6, ny=9, nx=18)
    recipe = {
        "id": "demo-daily",
        "title": "A synthetic daily archive",
        "description": "Made by a test.",
        "license": "other",
        "providers": [{"name": "Test lab", "roles": ["producer", "licensor"],
                       "url": "https://example.org/terms"}],
        "maintainers": [{"name": "Tester", "github": "tester"}],
        "source": {"pattern": str(archive / "demo_{time:%Y%m%d}.nc"),
                   "dims": {"time": {"start": "2020-01-01", "end": "2020-01-06", "freq": "D",
                                     "items_per_file": 1}},
                   "format": "netcdf4"},
        "catalog": {"thumbnail_variable": "pr"},
    }
    path = tmp_path / "daily.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def children(target: Path) -> list[str]:
    return [link["href"] for link in read(target / "catalog.json")["links"]
            if link["rel"] == "child"]


def test_rebakes_datasets_and_versions_share_one_catalogue(real_data, bake_into, tmp_path):
    target = tmp_path / "target"
    first = bake_into(ERSST, target, prune=12)
    assert first.version == 1
    assert children(target) == [f"./{ERSST_ID}/collection.json"]

    again = bake_into(ERSST, target, prune=12)  # same plan: same version, same single entry
    assert again.version == 1
    assert children(target) == [f"./{ERSST_ID}/collection.json"]

    bake_into(daily_recipe(tmp_path), target)  # a second dataset joins the first
    assert children(target) == ["./demo-daily/collection.json", f"./{ERSST_ID}/collection.json"]
    daily = read(target / "demo-daily" / "collection.json")
    assert daily["license"] == "other"
    assert [link["href"] for link in daily["links"] if link["rel"] == "license"] == [
        "https://example.org/terms"]
    assert daily["cube:dimensions"]["time"]["step"] == "P1D"
    assert daily["assets"]["thumbnail"]["title"].startswith("pr")

    second = bake_into(ERSST, target, prune=24)  # a changed plan: version 2, linked to v1
    assert second.version == 2
    assert children(target) == ["./demo-daily/collection.json", f"./{ERSST_ID}/collection.json"]
    current = read(target / ERSST_ID / "collection.json")
    assert current["version"] == "2"
    assert current["extent"]["temporal"]["interval"] == [["2010-01-01T00:00:00Z",
                                                          "2011-12-01T00:00:00Z"]]
    assert current["assets"]["zarr"]["href"] == f"v2/{ERSST_ID}.zarr"
    links = {link["rel"]: os.path.normpath(link["href"]) for link in current["links"]}
    assert links["predecessor-version"] == "v1/collection.json"
    frozen_v2 = read(target / ERSST_ID / "v2" / "collection.json")
    frozen_links = {link["rel"]: os.path.normpath(link["href"]) for link in frozen_v2["links"]}
    assert frozen_links["latest-version"] == "../collection.json"
    assert frozen_links["predecessor-version"] == "../v1/collection.json"
    frozen_v1 = read(target / ERSST_ID / "v1" / "collection.json")
    assert frozen_v1["assets"]["zarr"]["href"] == f"{ERSST_ID}.zarr"  # v1's data stays findable
    assert frozen_v1["extent"]["temporal"]["interval"][0][1] == "2010-12-01T00:00:00Z"

    report = validate_catalog(target)
    assert report.ok, [str(p) for p in report.problems]
    checked = {Path(p).relative_to(target).as_posix() for p in report.checked}
    assert f"{ERSST_ID}/v1/collection.json" in checked  # reached through the version link
    assert recipes_core.open_dataset(target, ERSST_ID).sizes["time"] == 24
    assert recipes_core.open_dataset(target, "demo-daily").sizes["time"] == 6
    page = (target / "index.html").read_text()
    assert "A synthetic daily archive" in page and "NOAA Extended Reconstructed" in page


def test_publish_refuses_an_incomplete_bake(tmp_path):
    from recipes_core.plan import compile_recipe
    from recipes_core.stac import CatalogError, publish

    recipe, _ = load_recipe(ERSST)
    plan = compile_recipe(recipe, ERSST)
    version_dir = tmp_path / ERSST_ID / "v1"
    with pytest.raises(CatalogError, match="status is 'running'"):
        publish(plan, tmp_path, 1, version_dir, version_dir / f"{ERSST_ID}.zarr",
                {"status": "running"})
    assert not (tmp_path / "catalog.json").exists()  # nothing half-published
    with pytest.raises(CatalogError, match="status is 'failed'"):
        publish(plan, "s3://bucket/root", 1, "s3://bucket/root/x/v1", "s3://b/x.zarr",
                {"status": "failed"})
