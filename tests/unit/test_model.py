"""Field-level validation of the recipe model: each mistake is a pydantic error at its place."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from recipes_core.model import Recipe
from recipes_core.model.transforms import TRANSFORM_NAMES


def recipe_dict(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "demo-sst",
        "title": "Demo SST",
        "description": "Monthly demo sea surface temperature.",
        "license": "CC-BY-4.0",
        "maintainers": [{"name": "Someone"}],
        "source": {
            "pattern": "https://example.org/sst_{time:%Y%m}.nc",
            "dims": {"time": {"start": "2010-01", "end": "2010-12", "freq": "MS"}},
        },
    }
    base.update(copy.deepcopy(overrides))
    return base


def with_time(**time: Any) -> dict[str, Any]:
    return recipe_dict(source={"pattern": "f_{time}.nc", "dims": {"time": time}})


def errors(data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        Recipe.model_validate(data)
    return info.value.errors()


def only_error(data: dict[str, Any]) -> dict[str, Any]:
    found = errors(data)
    assert len(found) == 1, found
    return found[0]


def test_base_recipe_is_valid() -> None:
    recipe = Recipe.model_validate(recipe_dict())
    assert recipe.concat_dims == ["time"]
    assert recipe.merge_dims == []
    assert recipe.target.zarr_format == 3


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2010-13-01", "no such day"),
        ("2010-02-30", "no such day"),
        ("2010-01-01T25:00", "no such day"),
        ("yesterday", "YYYY-MM-DD"),
        ("01/02/2010", "YYYY-MM-DD"),
        ("2010-1-1", "YYYY-MM-DD"),
    ],
)
def test_bad_dates(value, fragment) -> None:
    err = only_error(with_time(start=value, end="2011-01-01", freq="D"))
    assert err["type"] == "value_error"
    assert err["loc"] == ("source", "dims", "time", "start")
    assert repr(value) in err["msg"] and fragment in err["msg"]


@pytest.mark.parametrize("value", ["2010", "2010-01", "2010-01-01", "2010-01-01T06:00", 2010])
def test_good_dates(value) -> None:
    recipe = Recipe.model_validate(with_time(start=value, end="2011-06-01", freq="D"))
    assert recipe.source.dims["time"].start == str(value)


def test_non_date_types_are_refused() -> None:
    err = only_error(with_time(start=True, end="2011-01-01", freq="D"))
    assert err["loc"] == ("source", "dims", "time", "start")
    assert "is not a date" in err["msg"]


@pytest.mark.parametrize("freq", ["fortnightly", "", "H1"])
def test_bad_freq(freq) -> None:
    err = only_error(with_time(start="2010-01-01", end="2011-01-01", freq=freq))
    assert err["type"] == "value_error"
    assert err["loc"] == ("source", "dims", "time", "freq")
    assert "is not a pandas frequency" in err["msg"] and "MS (month start)" in err["msg"]


def test_end_before_start() -> None:
    err = only_error(with_time(start="2011-01-01", end="2010-01-01", freq="D"))
    assert err["loc"] == ("source", "dims", "time")
    assert "end 2010-01-01 is before start 2011-01-01" in err["msg"]


def test_incomplete_date_range_names_what_is_missing() -> None:
    err = only_error(with_time(start="2010-01-01", freq="D"))
    assert err["loc"] == ("source", "dims", "time")
    assert "missing ['end']" in err["msg"]


@pytest.mark.parametrize(
    "spec",
    [
        {"start": "2010-01-01", "end": "2011-01-01", "freq": "D", "values": ["a"]},
        {"start": "2010-01-01", "end": "2011-01-01", "freq": "D", "keys": [1]},
        {"keys": [1], "values": ["a"]},
        {},
    ],
)
def test_a_dim_is_exactly_one_kind(spec) -> None:
    err = only_error(with_time(**spec))
    assert err["loc"] == ("source", "dims", "time")
    assert "give exactly one of these" in err["msg"]


def test_items_per_file_on_a_merge_dim() -> None:
    err = only_error(with_time(values=["sst", "ice"], items_per_file=2))
    assert err["loc"] == ("source", "dims", "time")
    assert "items_per_file only applies to concat dimensions" in err["msg"]


def test_merge_values_must_be_distinct() -> None:
    err = only_error(with_time(values=["sst", "sst"]))
    assert "distinct" in err["msg"]


def test_unknown_top_level_field() -> None:
    err = only_error(recipe_dict(schedule="daily"))
    assert err["type"] == "extra_forbidden"
    assert err["loc"] == ("schedule",)


def test_unknown_nested_field() -> None:
    err = only_error(recipe_dict(target={"chunks": {"time": 1}, "path": "s3://mine"}))
    assert err["type"] == "extra_forbidden"
    assert err["loc"] == ("target", "path")


@pytest.mark.parametrize(
    "value", ["Demo-SST", "../x", "-demo", "demo_sst", "demo.sst", "", "a" * 64, "demo\n"]
)
def test_id_pattern(value) -> None:
    err = only_error(recipe_dict(id=value))
    assert err["type"] == "string_pattern_mismatch"
    assert err["loc"] == ("id",)


@pytest.mark.parametrize("value", ["a", "0day", "era5-hourly-2", "a" * 63])
def test_good_ids(value) -> None:
    assert Recipe.model_validate(recipe_dict(id=value)).id == value


@pytest.mark.parametrize(
    "value", ["CC BY 4.0", "MIT or Apache-2.0", "-MIT", "MIT OR", "MIT  OR Apache-2.0", ""]
)
def test_license_must_be_spdx(value) -> None:
    err = only_error(recipe_dict(license=value))
    assert err["type"] == "string_pattern_mismatch"
    assert err["loc"] == ("license",)


@pytest.mark.parametrize(
    "value", ["CC-BY-4.0", "CC0-1.0", "MIT OR Apache-2.0", "GPL-2.0+ WITH Classpath-exception-2.0",
              "other", "proprietary", "LicenseRef-ECMWF-terms", "ODbL-1.0 AND CC-BY-SA-4.0"],
)
def test_good_licenses(value) -> None:
    assert Recipe.model_validate(recipe_dict(license=value)).license == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("Totally-Made-Up", "'Totally-Made-Up' is not an SPDX licence identifier. Use an id"),
        ("CC-BY-4", "'CC-BY-4' is not an SPDX licence identifier. Did you mean 'CC-BY-4.0'?"),
        ("MIT OR Apache2", "'Apache2' is not an SPDX licence identifier. Did you mean "
                           "'Apache-2.0'?"),
        ("Classpath-exception-2.0", "is not a valid SPDX licence expression"),
        ("MIT WITH Apache-2.0", "is not a valid SPDX licence expression"),
    ],
)
def test_license_must_be_on_the_spdx_list(value, fragment) -> None:
    err = only_error(recipe_dict(license=value))
    assert err["loc"] == ("license",)
    assert fragment in err["msg"]


@pytest.mark.parametrize(
    "step",
    [{"regrid": {"to": "1deg"}}, {"python": "import os"}, {"rename": {"a": "b"}, "sel": {"x": 1}},
     "rename", {}],
)
def test_unknown_transform(step) -> None:
    err = only_error(recipe_dict(transforms=[{"squeeze": []}, step]))
    assert err["type"] == "unknown_transform"
    assert err["loc"] == ("transforms", 1)
    assert "exactly one key" in err["msg"]
    assert all(name in err["msg"] for name in TRANSFORM_NAMES)


def test_transform_params_are_typed() -> None:
    found = errors(recipe_dict(transforms=[{"isel": {"x": "abc"}}]))
    assert found and all(e["loc"][:4] == ("transforms", 0, "isel", "isel") for e in found)
    assert any(e["loc"][4] == "x" and e["type"] == "int_parsing" for e in found)


@pytest.mark.parametrize(
    ("step", "loc_prefix", "etype"),
    [
        ({"isel": {"x": {"start": 0, "step": 0}}}, ("transforms", 0, "isel", "isel", "x"),
         "greater_than"),
        ({"astype": {"sst": "float128"}}, ("transforms", 0, "astype", "astype", "sst"),
         "literal_error"),
        ({"rename": {}}, ("transforms", 0, "rename", "rename"), "too_short"),
        ({"select_variables": "sst"}, ("transforms", 0, "select_variables", "select_variables"),
         "list_type"),
        ({"squeeze": ["x"], "extra": 1}, ("transforms", 0), "unknown_transform"),
    ],
)
def test_transform_param_errors(step, loc_prefix, etype) -> None:
    found = errors(recipe_dict(transforms=[step]))
    assert any(e["loc"][: len(loc_prefix)] == loc_prefix and e["type"] == etype for e in found), (
        found
    )


def test_known_transforms_parse() -> None:
    recipe = Recipe.model_validate(recipe_dict(transforms=[
        {"rename": {"lat": "latitude"}},
        {"isel": {"lat": {"start": 0, "stop": 10}, "time": 0}},
        {"set_encoding": {"sst": {"dtype": "float32", "_FillValue": -999.0}}},
    ]))
    assert [t.name for t in recipe.transforms] == ["rename", "isel", "set_encoding"]
    assert recipe.transforms[2].params["sst"].fill_value == -999.0


def test_shards_need_zarr_format_3() -> None:
    err = only_error(recipe_dict(target={"chunks": {"time": 2}, "shards": {"time": 4},
                                         "zarr_format": 2}))
    assert err["loc"] == ("target",)
    assert "shards need zarr_format: 3" in err["msg"]


def test_chunk_size_zero() -> None:
    err = only_error(recipe_dict(target={"chunks": {"time": 0}}))
    assert err["loc"] == ("target", "chunks")
    assert "chunk size of 'time' is 0" in err["msg"] and "-1 for all" in err["msg"]


def test_chunk_size_below_minus_one() -> None:
    err = only_error(recipe_dict(target={"chunks": {"time": -2}}))
    assert err["type"] == "greater_than_equal"
    assert err["loc"] == ("target", "chunks", "time")


@pytest.mark.parametrize("budget", ["1B", "3GB"])
def test_chunk_size_budget_bounds(budget) -> None:
    err = only_error(recipe_dict(target={"chunk_size": budget}))
    assert err["loc"] == ("target",)
    assert "between 1KB and 2GB" in err["msg"]


def test_shard_size_must_be_positive() -> None:
    err = only_error(recipe_dict(target={"shards": {"time": 0}}))
    assert err["loc"] == ("target", "shards", "time")
    assert err["type"] == "greater_than_equal"


def test_virtual_targets_are_refused() -> None:
    err = only_error(recipe_dict(target={"virtual": True}))
    assert err["loc"] == ("target", "virtual")


def test_filter_by_keys_only_for_grib() -> None:
    source = recipe_dict()["source"] | {"open": {"filter_by_keys": {"typeOfLevel": "surface"}}}
    err = only_error(recipe_dict(source=source))
    assert err["loc"] == ("source",)
    assert "only applies to format: grib" in err["msg"]
    assert Recipe.model_validate(recipe_dict(source=source | {"format": "grib"}))


def test_missing_required_fields_are_each_reported() -> None:
    found = errors({"id": "x"})
    assert {e["loc"] for e in found if e["type"] == "missing"} == {
        ("title",), ("description",), ("license",), ("maintainers",), ("source",),
    }


def test_recipe_is_frozen() -> None:
    recipe = Recipe.model_validate(recipe_dict())
    with pytest.raises(ValidationError):
        recipe.id = "other"  # type: ignore[misc]
