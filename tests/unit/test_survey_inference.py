"""The cheap schema step's inference against its definition: each unopened source's
coordinate is its nearest sampled source's, shifted by the difference of their keys; and the
combining of the inferred batches against combining each source on its own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recipes_core.errors import SchemaError
from recipes_core.model import Recipe
from recipes_core.plan import compile_recipe
from recipes_core.schema import InferredSources, SourceSchema, VariableSchema, each_source
from recipes_core.survey import complete_survey, sample_keys
from tests.conftest import recipe_dict


def _plan(freq: str, periods: int, merged: int):
    keys = pd.date_range("2001-01-01", periods=periods, freq=freq)
    dims = {"time": {"start": str(keys[0]), "end": str(keys[-1]), "freq": freq,
                     "items_per_file": 1}}
    pattern = "https://example.org/{time:%Y%m%d%H}.nc"
    if merged > 1:
        dims = {"variable": {"values": [f"v{i}" for i in range(merged)]}, **dims}
        pattern = "https://example.org/{variable}_{time:%Y%m%d%H}.nc"
    return compile_recipe(Recipe.model_validate(recipe_dict(pattern, dims)))


def _schema(key, url, when: np.datetime64) -> SourceSchema:
    lat = np.linspace(-80.0, 80.0, 3)
    variables = {"tas": VariableSchema("tas", ("time", "lat"), (1, 3), "<f4", {}, {}, False)}
    return SourceSchema(key, url, {"time": 1, "lat": 3}, variables,
                        {"time": np.array([when]), "lat": lat}, {})


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["D", "6h", "MS", "YS"]), st.integers(2, 40), st.integers(1, 3),
       st.integers(0, 23), st.sampled_from(["ns", "s"]))
def test_inferred_coordinates_are_the_nearest_sample_shifted_by_the_keys(
        freq, periods, merged, hour, unit):
    plan = _plan(freq, periods, merged)
    tdim = next(d for d in plan.pattern.dims if d.name == "time")
    position = [d.name for d in plan.pattern.dims].index("time")
    urls = dict(plan.sources())
    sample = sample_keys(plan)
    offset = np.timedelta64(hour, "h")

    def when(key) -> np.datetime64:  # the file's own timestamp: the key's, plus an offset
        return (tdim.keys[key[position]].to_datetime64() + offset).astype(f"M8[{unit}]")

    found = {k: (_schema(k, u, when(k)) if k in sample else None) for k, u in urls.items()}
    schemas, unopened = complete_survey(plan, found, urls)

    assert unopened == []
    by_key = {s.key: s for s in each_source(schemas)}
    assert set(by_key) == set(urls)
    for key, schema in by_key.items():
        # The definition, with pandas Timestamps: the nearest sampled key of the same merge
        # keys (the earlier of two as near), shifted by the difference of the two keys' dates.
        same = sorted((k for k in sample if k[:position] == key[:position]),
                      key=lambda k: (abs(k[position] - key[position]), k))
        ref = same[0]
        shift = tdim.keys[key[position]] - tdim.keys[ref[position]]
        expected = (found[ref].index_coords["time"] + np.timedelta64(shift.value, "ns")
                    ).astype(f"M8[{unit}]")
        assert schema.index_coords["time"].dtype == expected.dtype
        assert (schema.index_coords["time"] == expected).all(), (key, ref)
        assert schema.index_coords["time"] == when(key)  # and the file's own timestamp
        assert schema.index_coords["lat"] is found[ref].index_coords["lat"]
        assert schema.url == urls[key] and schema.variables is found[ref].variables


def _template_fields(template) -> dict:
    """A template as comparable values (arrays as their dtype and items)."""
    fields = dict(vars(template))
    fields["coords"] = {k: (v.dtype.str, v.tolist()) for k, v in template.coords.items()}
    return fields


def _outcome(combine):
    try:
        return _template_fields(combine())
    except SchemaError as err:
        return ("refused", str(err), err.where)


def _sample_schema(plan, key, url) -> SourceSchema:
    """An opened source as a file of the plan's keys would give it: one step along each
    concat dim, at its key's date, and a 3-point latitude grid."""
    places = {d.name: i for i, d in enumerate(plan.pattern.dims)}
    concat = [d.name for d in plan.concat_dims]
    coords = {d.name: np.array([d.keys[key[places[d.name]]].to_datetime64()])
              for d in plan.concat_dims}
    variables = {"tas": VariableSchema("tas", (*concat, "lat"), (*[1] * len(concat), 3), "<f4",
                                       {}, {}, False)}
    return SourceSchema(key, url, {**dict.fromkeys(concat, 1), "lat": 3}, variables,
                        {**coords, "lat": np.linspace(-80.0, 80.0, 3)}, {})


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["D", "6h", "MS"]), st.integers(2, 30), st.integers(1, 3),
       st.sampled_from([0, 0, 2, 4]),
       st.sampled_from(["none", "extra_variable", "extra_static", "other_dtype", "wide_grid",
                        "coarse_time"]),
       st.integers(0, 8), st.randoms(use_true_random=False))
def test_combining_inferred_batches_is_combining_each_source(
        freq, periods, merged, runs, change, which, order):
    """combine_schemas checks a batch of inferred sources at once; the template, or the
    refusal and the file it names, is what checking each source's own schema gives. With
    one or two concat dims (``runs``: a second, daily one), merge keys, and the surveyed
    sources in any order (a pipeline collects them in none)."""
    import recipes_core.combine as combine_module

    plan = _plan(freq, periods, merged)
    if runs:
        data = plan.recipe.model_dump(by_alias=True)
        data["source"]["dims"]["run"] = {"start": "1990-01-01", "end": f"1990-01-{runs:02d}",
                                         "freq": "D", "items_per_file": 1}
        data["source"]["pattern"] = data["source"]["pattern"].replace(".nc", "_{run:%Y%m%d}.nc")
        plan = compile_recipe(Recipe.model_validate(data))
    urls = dict(plan.sources())
    sample = sorted(sample_keys(plan))
    changed = sample[which % len(sample)]
    found = {}
    for key, url in urls.items():
        if key not in sample:
            found[key] = None
            continue
        schema = _sample_schema(plan, key, url)
        if key == changed and change != "none":
            variables = dict(schema.variables)
            coords = dict(schema.index_coords)
            dims = dict(schema.dims)
            tas = variables["tas"]
            if change == "extra_variable":
                variables["pr"] = VariableSchema("pr", tas.dims, tas.shape, "<f4", {}, {}, False)
            elif change == "extra_static":
                variables["mask"] = VariableSchema("mask", ("lat",), (3,), "|i1", {}, {}, False)
            elif change == "other_dtype":
                coords["time"] = coords["time"].astype("M8[s]")
            elif change == "wide_grid":
                coords["lat"] = np.linspace(-90.0, 90.0, 3)
            elif change == "coarse_time":
                dims["time"] = 2
                coords["time"] = np.repeat(coords["time"], 2)
            schema = SourceSchema(key, url, dims, variables, coords, {})
        found[key] = schema
    shuffled = list(found.items())
    order.shuffle(shuffled)
    schemas, unopened = complete_survey(plan, dict(shuffled), urls)
    if unopened:  # the sample showed the inference does not hold: nothing was inferred
        assert change == "coarse_time"
        return
    expanded = each_source(schemas)
    assert sorted(s.key for s in expanded) == sorted(urls)

    per_source = []
    real_each_source = combine_module.each_source
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(combine_module, "each_source",
                      lambda s: per_source.append(1) or real_each_source(s))
        batched = _outcome(lambda: combine_module.combine_schemas(plan, schemas))
    if change == "none":
        assert isinstance(batched, dict)  # a template
        if any(isinstance(s, InferredSources) for s in schemas):
            assert per_source == []  # combined a batch at a time
    assert batched == _outcome(lambda: combine_module.combine_schemas(plan, expanded))
