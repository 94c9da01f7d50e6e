"""Planning costs: compiling a 100,000-source recipe, completing its survey from a sample and
planning its write tasks, and the schema survey of 1,000 files.

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
    """Seconds to plan a recipe of ``nsources``: validate, compile, list the sources and
    hash it, then what the bake does once its sample of sources is open (see
    :func:`survey_and_tasks_cost`)."""
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
    compiled = validate + compile_ + listing + hashing
    after = survey_and_tasks_cost(plan, days)
    return {"sources": nsources, "validate_s": validate, "compile_s": compile_,
            "sources_s": listing, "hash_s": hashing, "total_s": compiled, **after,
            "with_survey_and_tasks_s": compiled + after["sample_s"]
            + after["complete_survey_s"] + after["combine_s"] + after["write_tasks_s"]}


def survey_and_tasks_cost(plan: Any, workload: Workload) -> dict[str, float]:
    """Seconds a bake spends choosing its sample of sources (``sample_keys``) and planning
    once the sample is open: inferring every other source's schema (``complete_survey``),
    combining them into the template and planning the write tasks. The sample's schemas
    are made here as the workload's files would give them (no file is opened); the heap is
    frozen, as it is in a bake."""
    import numpy as np

    from recipes_core.combine import combine_schemas
    from recipes_core.runners.engines import frozen_heap
    from recipes_core.schema import SourceSchema, VariableSchema
    from recipes_core.survey import complete_survey, sample_keys
    from recipes_core.tasks import plan_write_tasks

    urls = dict(plan.sources())
    keys = plan.pattern.dim("time").keys
    grid = {"lat": np.linspace(-90, 90, workload.ny), "lon": np.linspace(-180, 180, workload.nx)}
    variables = {name: VariableSchema(name, ("time", "lat", "lon"),
                                      (1, workload.ny, workload.nx), "<f4", {}, {}, False)
                 for name in workload.variables}
    variables |= {name: VariableSchema(name, (name,), (len(values),), values.dtype.str, {}, {},
                                       True) for name, values in grid.items()}
    variables["time"] = VariableSchema("time", ("time",), (1,), "<M8[ns]", {}, {}, True)

    def opened(key: Any) -> SourceSchema:
        when = np.array([keys[key[0]].to_datetime64()], dtype="M8[ns]")
        return SourceSchema(key, urls[key], {"time": 1, "lat": workload.ny, "lon": workload.nx},
                            variables, {"time": when, **grid}, {})

    sample, sampling = _time(lambda: sample_keys(plan))
    assert sample is not None
    found = {key: (opened(key) if key in sample else None) for key in urls}
    with frozen_heap():
        (schemas, unopened), completing = _time(lambda: complete_survey(plan, found, urls))
        template, combining = _time(lambda: combine_schemas(plan, schemas))
        units = {name: tuple(template.chunks[d] for d in var.dims)
                 for name, var in template.variables.items()}
        tasks, tasking = _time(lambda: plan_write_tasks(template, units, list(urls),
                                                        {"time": 0}, 2**62))
    assert not unopened and template.dims["time"] == workload.days
    assert sum(len(task.sources) for task in tasks) == workload.days
    return {"sample_s": sampling, "complete_survey_s": completing, "combine_s": combining,
            "write_tasks": len(tasks), "write_tasks_s": tasking}


def schema_cost(root: Path = DATA_DIR, log: Callable[[str], Any] = print) -> dict[str, float]:
    """The survey (stage + open + ``schema_of``) of 1,000 files, against the first and last."""
    from recipes_core.combine import combine_schemas
    from recipes_core.opener import open_transformed
    from recipes_core.plan import compile_recipe
    from recipes_core.recipe_io import load_recipe
    from recipes_core.schema import schema_of
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
