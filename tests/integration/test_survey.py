"""The cheap schema step: a sample is opened to plan, and every source is still checked."""

from __future__ import annotations

import netCDF4
import pytest
import xarray as xr

from recipes_core.errors import SchemaError
from recipes_core.opener import open_transformed
from recipes_core.plan import compile_recipe
from recipes_core.recipe_io import load_recipe
from recipes_core.schema import each_source, schema_of
from recipes_core.storage import AccessPolicy, Stager
from recipes_core.survey import complete_survey, sample_keys
from recipes_core.testing import archive_oracle, make_daily_archive
from tests.conftest import EXAMPLES, recipe_dict


def _schemas(plan, keys, tmp_path):
    stager = Stager(str(tmp_path / "cache"), AccessPolicy(allow_local=True))
    out = {}
    for key, url in plan.sources():
        if key in keys:
            staged = stager.stage(url)
            with open_transformed(plan, key, staged.path, url) as ds:
                out[key] = schema_of(ds, key, url)
    return out


def test_ersst_inference_matches_opening_every_file(real_data, tmp_path):
    path = EXAMPLES / "ersst-v5-monthly.yaml"
    plan = compile_recipe(load_recipe(path)[0], path)
    sample = sample_keys(plan)
    assert sample == {(0,), (64,), (127,)}
    everything = _schemas(plan, {k for k, _ in plan.sources()}, tmp_path)
    partial = {k: (everything[k] if k in sample else None) for k in everything}
    schemas, unopened = complete_survey(plan, partial, {k: u for k, u in plan.sources()})
    assert unopened == []
    by_key = {s.key: s for s in each_source(schemas)}
    for key, schema in everything.items():
        assert (by_key[key].index_coords["time"] == schema.index_coords["time"]).all()


def test_keys_without_items_per_file_open_everything():
    plan = compile_recipe(load_recipe(EXAMPLES / "demo.yaml")[0])
    assert sample_keys(plan) is not None
    data = load_recipe(EXAMPLES / "demo.yaml")[0].model_dump(by_alias=True)
    data["source"]["dims"]["time"]["items_per_file"] = None
    from recipes_core.model import Recipe

    assert sample_keys(compile_recipe(Recipe.model_validate(data))) is None


def _shift_time(path, hours):
    with netCDF4.Dataset(path, "r+") as nc:
        nc["time"][:] = nc["time"][:] + hours / 24


def test_an_unsampled_file_with_a_wrong_time_is_caught_while_writing(tmp_path, write_recipe,
                                                                     bake_file):
    files = make_daily_archive(tmp_path / "archive", days=9)
    _shift_time(files[2], 6)  # not first, middle or last: the survey does not open it
    recipe = recipe_dict(str(tmp_path / "archive" / "demo_{time:%Y%m%d}.nc"),
                         {"time": {"start": "2020-01-01", "end": "2020-01-09", "freq": "D",
                                   "items_per_file": 1}})
    path = write_recipe(recipe)
    with pytest.raises(SchemaError) as info:
        bake_file(path)
    assert str(files[2]) in str(info.value)
    assert "coordinate 'time' differs from the plan" in str(info.value)


def test_irregular_times_fall_back_to_opening_everything(tmp_path, write_recipe, bake_file):
    """Mid-period timestamps that the keys do not predict: the sample disagrees, so the
    survey opens every source, and the bake still equals xarray."""
    files = make_daily_archive(tmp_path / "archive", days=9)
    _shift_time(files[4], 6)  # the middle file, which the sample opens
    recipe = recipe_dict(str(tmp_path / "archive" / "demo_{time:%Y%m%d}.nc"),
                         {"time": {"start": "2020-01-01", "end": "2020-01-09", "freq": "D",
                                   "items_per_file": 1}})
    result = bake_file(write_recipe(recipe))
    xr.testing.assert_identical(xr.open_zarr(result.store).load(), archive_oracle(files))
