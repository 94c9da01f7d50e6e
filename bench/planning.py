"""Planning costs: compiling a 100,000-source recipe and planning its write tasks, and the
schema survey of 1,000 files.

Neither depends on the data volume, so they use their own inputs: an in-memory recipe whose
date range has 100,000 days (no file is opened), and 1,000 small daily files (18 x 36 grid:
opening a netCDF file costs about the same whatever the grid, the survey reads metadata and
1-D coordinates only).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench.workload import DATA_DIR, Workload, generate, recipe_text

T = TypeVar("T")
SURVEY_WORKLOAD = Workload(days=1000, ny=18, nx=36)


def _time(work: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = work()
    return value, time.perf_counter() - started


def compile_cost(nsources: int = 100_000) -> dict[str, float]:
    """Seconds to validate, compile, list the sources of and hash a recipe of ``nsources``."""
    import yaml

    from recipes_core.model import Recipe
    from recipes_core.plan import compile_recipe

    days = Workload(days=nsources, start="1800-01-01")
    data = yaml.safe_load(recipe_text(days, "blosc-lz4"))
    data["source"]["pattern"] = "https://example.org/archive/x_{time:%Y%m%d}.nc"
    recipe, validate = _time(lambda: Recipe.model_validate(data))
    plan, compile_ = _time(lambda: compile_recipe(recipe))
    sources, listing = _time(plan.sources)
    _, hashing = _time(lambda: plan.hash)
    assert len(sources) == nsources
    tasks, tasking = write_tasks_cost(days, [key for key, _ in sources])
    return {"sources": nsources, "validate_s": validate, "compile_s": compile_,
            "sources_s": listing, "hash_s": hashing,
            "total_s": validate + compile_ + listing + hashing,
            "write_tasks": tasks, "write_tasks_s": tasking}


def write_tasks_cost(workload: Workload, keys: list[Any]) -> tuple[int, float]:
    """Seconds to plan the write tasks of ``workload`` (which sources each time chunk reads),
    from a template of its shape, with the heap frozen as it is in a bake."""
    from recipes_core.runners.engines import frozen_heap
    from recipes_core.schema import Template, VariableSchema
    from recipes_core.tasks import plan_write_tasks

    dims = {"time": workload.days, "lat": workload.ny, "lon": workload.nx}
    shape = tuple(dims.values())
    variables = {name: VariableSchema(name, tuple(dims), shape, "<f4", {}, {}, False)
                 for name in workload.variables}
    template = Template(dims=dims, coords={}, coord_vars={}, variables=variables, attrs={},
                        concat_dims=("time",), offsets={"time": tuple(range(workload.days + 1))},
                        owners={}, chunks={"time": workload.time_chunk, "lat": workload.ny,
                                           "lon": workload.nx})
    units = {name: (workload.time_chunk, workload.ny, workload.nx) for name in variables}
    with frozen_heap():
        tasks, seconds = _time(lambda: plan_write_tasks(template, units, keys, {"time": 0},
                                                        2**62))
    assert sum(len(task.sources) for task in tasks) == workload.days
    return len(tasks), seconds


def schema_cost(root: Path = DATA_DIR, log: Callable[[str], Any] = print) -> dict[str, float]:
    """The survey (stage + open + ``schema_of``) of 1,000 files, against the first and last."""
    from recipes_core.opener import open_transformed
    from recipes_core.plan import compile_recipe
    from recipes_core.recipe_io import load_recipe
    from recipes_core.schema import combine_schemas, schema_of
    from recipes_core.storage import AccessPolicy, Stager

    workload = SURVEY_WORKLOAD
    folder = generate(workload, root, log=log)
    path = folder / "recipe-survey.yaml"
    path.write_text(recipe_text(workload, "blosc-lz4"))
    recipe, _ = load_recipe(path)
    plan = compile_recipe(recipe, path)
    stager = Stager(str(folder / "cache"), AccessPolicy(allow_local=True))
    sources = plan.sources()

    def survey(chosen: list[tuple[Any, str]]) -> tuple[list[Any], float, float]:
        schemas, stage_s, open_s = [], 0.0, 0.0
        for key, url in chosen:
            staged, seconds = _time(lambda url=url: stager.stage(url))
            stage_s += seconds
            started = time.perf_counter()
            with open_transformed(plan, key, staged.path, staged.url) as ds:
                schemas.append(schema_of(ds, key, staged.url))
            open_s += time.perf_counter() - started
        return schemas, stage_s, open_s

    survey(sources[:20])  # warm the imports and the page cache
    schemas, stage_all, open_all = survey(sources)
    template, combine_all = _time(lambda: combine_schemas(plan, schemas))
    assert template.dims["time"] == workload.days
    _, stage_fl, open_fl = survey([sources[0], sources[-1]])
    return {"files": len(sources), "stage_s": stage_all, "open_schema_s": open_all,
            "combine_s": combine_all, "survey_total_s": stage_all + open_all + combine_all,
            "per_file_ms": 1000 * (stage_all + open_all) / len(sources),
            "first_last_s": stage_fl + open_fl}
