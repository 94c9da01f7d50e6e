"""Write-task planning against a brute-force oracle: every write unit exactly once."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recipes_core.plan.chunks import ChunkGrid
from recipes_core.schema import Template, VariableSchema
from recipes_core.tasks import _by_concat_index, _sources_overlapping, plan_write_tasks


def _template(file_lengths, ny, nx, chunks, with_static, with_1d):
    offsets = tuple(int(x) for x in np.concatenate([[0], np.cumsum(file_lengths)]))
    dims = {"time": offsets[-1], "lat": ny, "lon": nx}

    def var(name, vdims):
        return VariableSchema(name, vdims, tuple(dims[d] for d in vdims), "<f4", {}, {}, False)

    variables = {"a": var("a", ("time", "lat", "lon")), "b": var("b", ("time", "lat", "lon"))}
    owners = {}
    if with_1d:
        variables["t1"] = var("t1", ("time",))
    if with_static:
        variables["mask"] = var("mask", ("lat", "lon"))
        owners["mask"] = (0,)
    return Template(dims=dims, coords={}, coord_vars={}, variables=variables, attrs={},
                    concat_dims=("time",), offsets={"time": offsets}, owners=owners,
                    chunks=dict(zip(("time", "lat", "lon"), chunks, strict=True)))


@st.composite
def cases(draw):
    lengths = draw(st.lists(st.integers(1, 7), min_size=1, max_size=8))
    ny, nx = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    chunks = (draw(st.integers(1, 12)), draw(st.integers(1, ny)), draw(st.integers(1, nx)))
    max_bytes = draw(st.integers(4, 4 * 12 * 9 * 9 * 3))
    return lengths, ny, nx, chunks, draw(st.booleans()), draw(st.booleans()), max_bytes


@settings(max_examples=200, deadline=None)
@given(cases())
def test_every_unit_is_written_exactly_once(case):
    lengths, ny, nx, chunks, with_static, with_1d, max_bytes = case
    template = _template(lengths, ny, nx, chunks, with_static, with_1d)
    units = {n: tuple(template.chunks[d] for d in v.dims) for n, v in template.variables.items()}
    keys = [(i,) for i in range(len(lengths))]
    tasks = plan_write_tasks(template, units, keys, {"time": 0}, max_bytes)

    written: Counter = Counter()
    for task in tasks:
        for name in task.variables:
            var = template.variables[name]
            grid = ChunkGrid(var.shape, units[name])
            box = [task.bounds(d, s) for d, s in zip(var.dims, var.shape, strict=True)]
            for index in grid.indices():
                region = grid.region(index)
                inside = all(b0 <= r.start and r.stop <= b1
                             for r, (b0, b1) in zip(region, box, strict=True))
                overlaps = all(r.start < b1 and b0 < r.stop
                               for r, (b0, b1) in zip(region, box, strict=True))
                assert inside or not overlaps, "a task box cuts through a write unit"
                if inside:
                    written[(name, index)] += 1
            # The task reads exactly the sources whose time extent meets its box.
            if "time" in var.dims:
                t0, t1 = task.bounds("time", template.dims["time"])
                expected = {(i,) for i in range(len(lengths))
                            if template.offsets["time"][i] < t1
                            and t0 < template.offsets["time"][i + 1]}
                assert set(task.sources) == expected
            else:
                assert task.sources == (template.owners[name],)
    every = {(n, idx) for n, v in template.variables.items()
             for idx in ChunkGrid(v.shape, units[n]).indices()}
    assert set(written) == every
    assert all(count == 1 for count in written.values())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=6),
       st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(1, 3),
       st.data())
def test_a_rows_sources_match_a_scan_of_every_key(time_lengths, member_lengths, merged, data):
    """Two concat dims and a merge dim, keys in any order, some missing: the indexed lookup
    gives what a scan of every key gives (the brute-force oracle), in key order."""
    offsets = {d: tuple(int(x) for x in np.concatenate([[0], np.cumsum(lengths)]))
               for d, lengths in (("time", time_lengths), ("member", member_lengths))}
    dims = {d: o[-1] for d, o in offsets.items()}
    template = Template(dims=dims, coords={}, coord_vars={}, variables={}, attrs={},
                        concat_dims=("time", "member"), offsets=offsets, owners={},
                        chunks=dims)
    every = list(itertools.product(range(len(time_lengths)), range(merged),
                                   range(len(member_lengths))))
    keys = sorted(data.draw(st.lists(st.sampled_from(every), unique=True, min_size=1)))
    positions = {"time": 0, "variable": 1, "member": 2}
    box = {d: tuple(sorted(data.draw(st.tuples(st.integers(0, dims[d]),
                                                st.integers(0, dims[d])))))
           for d in ("time", "member")}

    def meets(key, dim):
        a, b = box[dim]
        i = key[positions[dim]]
        return offsets[dim][i] < b and a < offsets[dim][i + 1]

    expected = tuple(k for k in keys if meets(k, "time") and meets(k, "member"))
    index = _by_concat_index(keys, positions, ("time", "member"))
    assert _sources_overlapping(template, box, index) == expected


def test_memory_bound_narrows_the_box():
    template = _template([10] * 3, 8, 8, (10, 2, 8), False, False)
    units = {n: (10, 2, 8) for n in template.variables}
    keys = [(i,) for i in range(3)]
    wide = plan_write_tasks(template, units, keys, {"time": 0}, 10**9)
    assert len(wide) == 3  # one task per time chunk, all of lat and lon
    per_row = 2 * 10 * 8 * 8 * 4  # two variables, one time chunk, the whole grid
    narrow = plan_write_tasks(template, units, keys, {"time": 0}, per_row // 4)
    assert len(narrow) == 3 * 4  # each row split into 4 lat bands of whole chunks
    for task in narrow:
        lat0, lat1 = task.bounds("lat", 8)
        assert (lat1 - lat0) * 10 * 8 * 4 * 2 <= per_row // 4
    for a, b in itertools.combinations(narrow, 2):
        assert a.box != b.box


def test_staging_is_ruled_out_only_when_the_recipe_leaves_other_dims_whole() -> None:
    from recipes_core.model import Recipe
    from recipes_core.plan.plan import compile_recipe
    from recipes_core.tasks import staging_possible
    from tests.conftest import recipe_dict

    def plan(target: dict | None = None, transforms: list | None = None, **dims: dict):
        fields = {"target": target} if target else {}
        if transforms:
            fields["transforms"] = transforms
        daily = {"start": "2020-01-01", "end": "2020-01-10", "freq": "D"}
        return compile_recipe(Recipe.model_validate(recipe_dict(
            "/data/f_{time:%Y%m%d}.nc", {"time": daily, **dims}, **fields)))

    assert not staging_possible(plan())
    assert not staging_possible(plan({"chunks": {"time": 30, "lat": -1, "lon": -1}}))
    assert not staging_possible(plan({"chunks": {"time": 30}, "zarr_format": 3,
                                      "shards": {"time": 90}},
                                     [{"set_attrs": {"dataset": {"title": "x"}}}]))
    assert staging_possible(plan({"chunks": {"time": -1, "lat": 10}}))
    assert staging_possible(plan({"chunks": {"time": 30}, "zarr_format": 3,
                                  "shards": {"lat": 90}}))
    assert staging_possible(plan(transforms=[{"rename": {"lat": "latitude"}}]))
