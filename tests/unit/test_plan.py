"""Compiling recipes into plans: refusals, the plan hash, pruning, speed, and chunk resolution."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from recipes_core.errors import AlignmentError, ArcoError, PlanError
from recipes_core.model import Recipe
from recipes_core.plan.plan import DEFAULT_CHUNK_BYTES, Plan, compile_recipe, resolve_chunks

MONTHLY = {"start": "2010-01", "end": "2010-12", "freq": "MS"}


def recipe_dict(**overrides: Any) -> dict[str, Any]:
    """A small valid recipe as a plain mapping; ``source``/``target`` keys override whole."""
    base: dict[str, Any] = {
        "id": "demo-sst",
        "title": "Demo SST",
        "description": "Monthly demo sea surface temperature.",
        "license": "CC-BY-4.0",
        "maintainers": [{"name": "Someone", "github": "someone"}],
        "source": {
            "pattern": "https://example.org/sst/{var}_{time:%Y%m}.nc",
            "dims": {"time": dict(MONTHLY), "var": {"values": ["sst", "ice"]}},
        },
        "target": {"chunks": {"time": 6, "lat": -1}},
    }
    base.update(copy.deepcopy(overrides))
    return base


def compile_dict(data: dict[str, Any], recipe_path: str | None = None) -> Plan:
    return compile_recipe(Recipe.model_validate(data), recipe_path)


def source(pattern: str, **dims: Any) -> dict[str, Any]:
    return {"pattern": pattern, "dims": dims}


# -- compile_recipe -----------------------------------------------------------------------------


def test_compiles_a_small_recipe() -> None:
    plan = compile_dict(recipe_dict())
    assert plan.id == "demo-sst"
    assert plan.nsources == 24
    assert [d.name for d in plan.concat_dims] == ["time"]
    assert [d.name for d in plan.merge_dims] == ["var"]
    assert plan.first_last_urls() == (
        "https://example.org/sst/sst_201001.nc",
        "https://example.org/sst/ice_201012.nc",
    )
    assert plan.sources()[:2] == [
        ((0, 0), "https://example.org/sst/sst_201001.nc"),
        ((0, 1), "https://example.org/sst/ice_201001.nc"),
    ]
    described = plan.describe()
    assert described["sources"] == 24
    assert described["plan_hash"] == plan.hash
    assert described["dims"][0] == {
        "name": "time", "role": "concat", "keys": 12, "first": "2010-01-01",
        "last": "2010-12-01", "items_per_file": None,
    }
    assert described["pruned"] is None
    assert plan.pruned is None


def test_plan_pickles_for_workers() -> None:
    plan = compile_dict(recipe_dict())
    clone = pickle.loads(pickle.dumps(plan))
    assert clone.hash == plan.hash
    assert clone.sources() == plan.sources()


def test_relative_pattern_resolves_against_the_recipe_folder(tmp_path) -> None:
    data = recipe_dict(source=source("data/{time:%Y%m}.nc", time=MONTHLY))
    plan = compile_dict(data, str(tmp_path / "recipe.yaml"))
    assert plan.pattern.base_dir == str(tmp_path)
    assert plan.first_last_urls()[0] == f"{tmp_path}/data/201001.nc"
    assert compile_dict(data).first_last_urls()[0] == "data/201001.nc"


def _plan_error(data: dict[str, Any], cls: type[ArcoError] = PlanError) -> ArcoError:
    with pytest.raises(cls) as info:
        compile_dict(data)
    return info.value


def test_undeclared_placeholder_is_named() -> None:
    err = _plan_error(recipe_dict(source=source("f_{time:%Y%m}_{member}.nc", time=MONTHLY)))
    assert "{member}" in err.message
    assert "not declared under source.dims" in err.message
    assert err.where == "source.pattern"
    assert err.fix is not None and "member" in err.fix


def test_several_undeclared_placeholders_are_all_named() -> None:
    err = _plan_error(recipe_dict(source=source("{a}_{time:%Y}_{b}.nc", time=MONTHLY)))
    assert "{a}, {b}" in err.message and "are not declared" in err.message


def test_declared_but_unused_dim_is_refused() -> None:
    err = _plan_error(
        recipe_dict(source=source("f_{time:%Y%m}.nc", time=MONTHLY, var={"values": ["a"]}))
    )
    assert "var" in err.message
    assert "never uses" in err.message
    assert err.where == "source.dims"
    assert err.fix is not None and "{var}" in err.fix


@pytest.mark.parametrize(
    ("pattern", "dims"),
    [
        ("f_{member:%Y%m%d}.nc", {"member": {"keys": [1, 2]}}),
        ("f_{time:%Y}_{var:03d}.nc", {"time": MONTHLY, "var": {"values": ["sst"]}}),
        ("f_{member:q}.nc", {"member": {"keys": [1.5]}}),
    ],
)
def test_bad_format_spec_is_refused(pattern, dims) -> None:
    err = _plan_error(recipe_dict(source={"pattern": pattern, "dims": dims}))
    assert "cannot format a key of" in err.message
    assert err.where == "source.pattern"
    assert err.fix is not None and "%Y%m%d" in err.fix


@pytest.mark.parametrize("pattern", ["f_{time.year}.nc", "f_{time!r}.nc", "f_{time.nc"])
def test_unsafe_or_broken_placeholders_are_plan_errors(pattern) -> None:
    err = _plan_error(recipe_dict(source=source(pattern, time=MONTHLY)))
    assert err.where == "source.pattern"


def test_zero_frequency_is_refused() -> None:
    zero = {"start": "2010-01-01", "end": "2010-01-05", "freq": "0D"}
    with pytest.raises(ValidationError, match="must step forwards"):
        compile_dict(recipe_dict(source=source("f_{time:%Y%m%d}.nc", time=zero)))


def test_format_spec_is_checked_against_every_key() -> None:
    data = recipe_dict(source=source("f_{n:03d}.nc", n={"keys": [1, 2, 3]}))
    assert compile_dict(data).first_last_urls() == ("f_001.nc", "f_003.nc")
    with pytest.raises(ValidationError, match="keys must all be of one type"):
        compile_dict(recipe_dict(source=source("f_{n:03d}.nc", n={"keys": [1, "latest"]})))
    with pytest.raises(PlanError, match="cannot format a key of 'n'"):
        compile_dict(recipe_dict(source=source("f_{n:%Y}.nc", n={"keys": ["a", "b"]})))
    with pytest.raises(ValidationError, match="keys must be distinct"):
        compile_dict(recipe_dict(source=source("f_{n}.nc", n={"keys": [1, 1]})))


def test_huge_hourly_range_is_refused_without_building_it() -> None:
    huge = {"start": "1000-01-01", "end": "9999-01-01", "freq": "h"}
    err = _plan_error(recipe_dict(source=source("f_{time:%Y%m%d%H}.nc", time=huge)))
    assert "more than 10,000,000 steps" in err.message


def test_empty_date_range_is_refused() -> None:
    empty = {"start": "2010-01-02", "end": "2010-01-20", "freq": "MS"}
    err = _plan_error(recipe_dict(source=source("f_{time:%Y%m}.nc", time=empty)))
    assert "date range of 'time' is empty" in err.message
    assert err.where == "source.dims.time"


def test_merge_dim_in_target_chunks_is_refused() -> None:
    err = _plan_error(recipe_dict(target={"chunks": {"time": 6, "var": 1}}))
    assert "'var' is a merge dimension" in err.message
    assert err.where == "target.chunks.var"


def test_misaligned_shards_are_refused() -> None:
    err = _plan_error(
        recipe_dict(target={"chunks": {"time": 4}, "shards": {"time": 6}}), AlignmentError
    )
    assert "shards.time = 6 is not a multiple of chunks.time = 4" in err.message
    assert err.where == "target.shards"


def test_aligned_shards_compile() -> None:
    plan = compile_dict(recipe_dict(target={"chunks": {"time": 3}, "shards": {"time": 12}}))
    assert plan.describe()["target"]["shards"] == {"time": 12}


def test_no_concat_dim_is_refused() -> None:
    err = _plan_error(recipe_dict(source=source("f_{var}.nc", var={"values": ["a", "b"]})))
    assert "no concat dimension" in err.message
    assert err.where == "source.dims"


# -- hash ---------------------------------------------------------------------------------------


def test_hash_is_stable_across_compiles() -> None:
    a, b = compile_dict(recipe_dict()), compile_dict(recipe_dict())
    assert a.hash == b.hash
    assert len(a.hash) == 64 and int(a.hash, 16) >= 0


@pytest.mark.parametrize(
    "edit",
    [
        {"title": "Another title"},
        {"description": "A much longer description of the very same data."},
        {"keywords": ["ocean"]},
        {"maintainers": [{"name": "Someone else"}]},
    ],
)
def test_hash_ignores_metadata_edits(edit) -> None:
    assert compile_dict(recipe_dict(**edit)).hash == compile_dict(recipe_dict()).hash


@pytest.mark.parametrize(
    "edit",
    [
        {"target": {"chunks": {"time": 3, "lat": -1}}},
        {"target": {"chunks": {"time": 6, "lat": 90}}},
        {"target": {"chunks": {"time": 6, "lat": -1}, "chunk_size": "50MB"}},
        {"target": {"chunks": {"time": 6, "lat": -1}, "codec": {"name": "zstd"}}},
        {"source": source("https://example.org/sst/v2/{var}_{time:%Y%m}.nc",
                          time=MONTHLY, var={"values": ["sst", "ice"]})},
        {"source": source("https://example.org/sst/{var}_{time:%Y%m}.nc",
                          time={**MONTHLY, "end": "2011-01"}, var={"values": ["sst", "ice"]})},
        {"source": source("https://example.org/sst/{var}_{time:%Y%m}.nc",
                          time=MONTHLY, var={"values": ["sst", "salt"]})},
        {"transforms": [{"rename": {"sst": "temperature"}}]},
        {"id": "demo-sst-2"},
    ],
)
def test_hash_changes_with_what_changes_the_bytes(edit) -> None:
    assert compile_dict(recipe_dict(**edit)).hash != compile_dict(recipe_dict()).hash


def test_hash_changes_with_keys_not_just_their_ends() -> None:
    a = recipe_dict(source=source("f_{n}.nc", n={"keys": [1, 2, 3]}))
    b = recipe_dict(source=source("f_{n}.nc", n={"keys": [1, 5, 3]}))
    assert compile_dict(a).hash != compile_dict(b).hash


# -- prune --------------------------------------------------------------------------------------


def test_prune_keeps_first_keys_of_concat_dims_only() -> None:
    plan = compile_dict(recipe_dict())
    pruned = plan.prune(2)
    assert pruned.pruned == 2
    assert pruned.nsources == 4
    assert pruned.pattern.dim("time").label(1) == "2010-02-01"
    assert pruned.pattern.dim("var").keys == ("sst", "ice")
    assert [u for _, u in pruned.sources()] == [u for _, u in plan.sources()][:4]
    assert pruned.hash != plan.hash
    assert pruned.describe()["pruned"] == 2
    assert plan.nsources == 24  # the original plan is untouched


def test_prune_beyond_the_length_keeps_everything() -> None:
    plan = compile_dict(recipe_dict())
    assert plan.prune(1000).nsources == plan.nsources


@pytest.mark.parametrize("n", [0, -3])
def test_prune_needs_at_least_one(n) -> None:
    with pytest.raises(PlanError, match="at least 1"):
        compile_dict(recipe_dict()).prune(n)


# -- scale --------------------------------------------------------------------------------------


def test_planning_100k_sources_describes_first_and_last() -> None:
    # Speed is measured in bench/planning.py (`make bench`), not asserted here: timing on shared
    # CI machines is noise.
    start = pd.Timestamp("2000-01-01T00:00")
    end = start + pd.Timedelta(hours=99_999)
    hourly = {"start": "2000-01-01T00:00", "end": end.strftime("%Y-%m-%dT%H:%M"), "freq": "h"}
    recipe = Recipe.model_validate(
        recipe_dict(source=source("https://example.org/era/{time:%Y%m%d%H}.grib", time=hourly))
    )
    plan = compile_recipe(recipe)
    described = plan.describe()
    first, last = plan.first_last_urls()
    assert plan.nsources == described["sources"] == 100_000
    assert (first, last) == (
        "https://example.org/era/2000010100.grib",
        f"https://example.org/era/{end:%Y%m%d%H}.grib",
    )


# -- resolve_chunks -----------------------------------------------------------------------------


def test_minus_one_and_missing_dims_span_the_whole_dimension() -> None:
    chunks = resolve_chunks({"lat": -1}, None, {"time": 10, "lat": 90, "lon": 180}, (), 1)
    assert chunks == {"time": 10, "lat": 90, "lon": 180}


def test_named_chunks_are_kept_and_clipped_to_the_dimension() -> None:
    chunks = resolve_chunks({"time": 4, "lat": 500}, None, {"time": 10, "lat": 90}, ("time",), 1)
    assert chunks == {"time": 4, "lat": 90}


def test_chunk_size_budget_sets_the_concat_dim() -> None:
    sizes = {"time": 1000, "lat": 90, "lon": 180}
    step = 90 * 180 * 4  # one float32 time step
    chunks = resolve_chunks({"lat": -1}, 10 * step, sizes, ("time",), step)
    assert chunks == {"time": 10, "lat": 90, "lon": 180}
    # A budget smaller than one step still moves at least one step.
    assert resolve_chunks(None, 1024, sizes, ("time",), step)["time"] == 1
    # The default budget is 100 MB, capped at the dimension's length.
    assert resolve_chunks(None, None, sizes, ("time",), step)["time"] == min(
        1000, DEFAULT_CHUNK_BYTES // step
    )
    assert resolve_chunks(None, None, {"time": 100_000}, ("time",), step)["time"] == (
        DEFAULT_CHUNK_BYTES // step
    )


def test_explicit_concat_chunk_beats_the_budget() -> None:
    chunks = resolve_chunks({"time": 7}, 1024, {"time": 100}, ("time",), 4)
    assert chunks == {"time": 7}


def test_empty_dimension_gets_chunk_one() -> None:
    assert resolve_chunks(None, None, {"time": 0, "x": 3}, ("time",), 8) == {"time": 1, "x": 3}


def test_unknown_chunk_dim_is_named() -> None:
    with pytest.raises(PlanError) as info:
        resolve_chunks({"latitude": 10, "time": 1}, None, {"time": 10, "lat": 90}, ("time",), 1)
    err = info.value
    assert "latitude" in err.message
    assert "time, lat" in err.message  # the dataset's dimensions, to pick from
    assert err.where == "target.chunks.latitude"


def test_expanding_100k_sources_matches_url() -> None:
    hourly = {"start": "2000-01-01", "end": "2011-05-30", "freq": "h"}
    data = recipe_dict(source=source("https://h/{time:%Y/%m%d%H}/{time:%j}_{v}.nc",
                                     time=hourly, v={"values": ["tas", "pr"]}))
    plan = compile_dict(data)
    items = plan.sources()
    assert len(items) == plan.nsources == 2 * 100_009
    for index in (0, 1, 777, len(items) - 1):
        key, url = items[index]
        assert key == plan.pattern.key_of(index) and url == plan.pattern.url(key)


# -- format specifiers and repeated file names --------------------------------------------------


@pytest.mark.parametrize(("spec", "bad"), [("%Y%q", "'%q'"), ("%Y%-m", "'%-'"), ("%Y%", "'%'"),
                                           ("%Y%Ed", "'%E'")])
def test_unportable_strftime_directives_are_refused(spec, bad) -> None:
    daily = {"start": "2010-01-01", "end": "2010-01-05", "freq": "D"}
    err = _plan_error(recipe_dict(source=source(f"f_{{time:{spec}}}_%d.nc", time=daily)))
    assert f"placeholder {{time:{spec}}} uses {bad}, which is not a strftime" in err.message
    assert err.where == "source.pattern"
    assert err.fix is not None and "%Y year" in err.fix


def test_portable_directives_compile() -> None:
    daily = {"start": "2010-01-01", "end": "2010-01-03", "freq": "D"}
    plan = compile_dict(recipe_dict(source=source("{time:%Y}/f_{time:%Y-%j%%}.nc", time=daily)))
    assert plan.first_last_urls() == ("2010/f_2010-001%.nc", "2010/f_2010-003%.nc")


@pytest.mark.parametrize(
    ("pattern", "dims", "shown"),
    [
        ("f_{time:%Y%m%d}.nc", {"time": {"start": "2010-01-01", "end": "2010-01-02",
                                         "freq": "6h"}}, "{time:%Y%m%d} gives the same text "
         "('20100101') for the keys 2010-01-01 and 2010-01-01T06:00:00"),
        ("f_{time:04d}.nc", {"time": MONTHLY}, "{time:04d} gives the same text ('04d')"),
        ("{time:%Y}/{time:%y}.nc", {"time": MONTHLY},
         "{time:%Y}, {time:%y} gives the same text ('2010/10')"),
        ("f_{n:.0f}.nc", {"n": {"keys": [1.1, 1.2]}}, "{n:.0f} gives the same text ('1')"),
    ],
)
def test_keys_that_name_the_same_file_are_refused(pattern, dims, shown) -> None:
    err = _plan_error(recipe_dict(source=source(pattern, **dims)))
    assert shown in err.message and "so both would read one file" in err.message
    assert err.where == "source.pattern"
    assert err.fix is not None and "items_per_file" in err.fix


def test_check_source_collects_every_problem() -> None:
    from recipes_core.model.recipe import Source
    from recipes_core.plan.checks import check_source

    empty = {"start": "2010-01-02", "end": "2010-01-20", "freq": "MS"}
    checked = check_source(Source.model_validate(source(
        "f_{time:%Y%m}_{ghost}_{var:03d}.nc", time=empty, var={"values": ["a"]},
        unused={"keys": [1]})))
    messages = [(e.where, e.message) for e in checked.problems]
    assert [w for w, _ in messages] == ["source.pattern", "source.dims", "source.dims.time",
                                        "source.pattern"]
    assert "{ghost}" in messages[0][1] and "declares unused" in messages[1][1]
    assert "is empty" in messages[2][1] and "cannot format a key of 'var'" in messages[3][1]


def test_plan_records_the_recipe_file(tmp_path) -> None:
    plan = compile_dict(recipe_dict(), str(tmp_path / "r.yaml"))
    assert plan.recipe_file == str(tmp_path / "r.yaml")
    assert plan.prune(1).recipe_file == plan.recipe_file
    assert compile_dict(recipe_dict()).recipe_file is None


def test_unknown_chunk_dim_is_placed_on_the_recipe_line(tmp_path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("target:\n  chunks:\n    time: 2\n    depth: 3\n")
    with pytest.raises(PlanError) as info:
        resolve_chunks({"time": 2, "depth": 3}, None, {"time": 4, "lat": 2}, ("time",), 8,
                       recipe_file=str(path))
    assert info.value.where == f"{path}, line 4, field target.chunks.depth"
    assert "(its dimensions: time, lat)" in info.value.message
    with pytest.raises(PlanError) as info:  # no file (a plan compiled from a dict): the field
        resolve_chunks({"depth": 3}, None, {"time": 4}, ("time",), 8)
    assert info.value.where == "target.chunks.depth"
