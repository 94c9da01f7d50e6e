"""`arco publish`: complete a bake whose job was submitted with `arco bake --detach`.

A detached bake leaves ``bake.json`` saying ``running`` and publishes nothing, because the
catalogue may only ever point at complete data (DESIGN §6, promise 4). Once the job has ended,
`arco publish` with the same recipe (and ``--prune``) as the bake finds that bake's version by
its plan hash, checks the store is finalised (consolidated metadata written, which the
pipeline's last step does, and every chunk of every array present), then marks the bake
complete and publishes the catalogue and page.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from recipes_core.cli import _load_plan, _run, app, out
from recipes_core.errors import RunnerError


def store_problems(store: str) -> list[str]:
    """What shows that a store is not finalised yet (empty when it is)."""
    import zarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "consolidated metadata is not in the v3 spec"
        try:
            group = zarr.open_consolidated(store, mode="r")
        except (ValueError, FileNotFoundError, KeyError):
            return ["no consolidated metadata yet (the job's last step writes it)"]
    problems = []
    for name, array in sorted(group.arrays()):
        # The arrays were created from the template before any data, so their chunk grids
        # are exactly what the plan writes; nchunks_initialized lists what is in the store.
        written, expected = array.nchunks_initialized, array.nchunks
        if written < expected:
            problems.append(f"{name}: {written} of {expected} chunks written")
    return problems


def complete_detached(plan: Any, target_root: str,
                      storage_options: dict[str, Any] | None = None,
                      ) -> tuple[Any, dict[str, Any]]:
    """Mark the detached bake of ``plan`` under ``target_root`` complete and publish it."""
    from recipes_core.bake import _now, choose_version, read_state, store_path, write_state
    from recipes_core.source_hashes import complete_sources
    from recipes_core.stac import publish
    from recipes_core.storage import files as fs
    from recipes_core.storage import safe_join

    root = fs.absolute(target_root)
    dataset_dir = safe_join(root, plan.id)
    version, existing = choose_version(dataset_dir, plan.hash)
    state = read_state(safe_join(dataset_dir, f"v{version}")) if existing else None
    if state is None:
        raise RunnerError(
            f"no bake of this plan (hash {plan.hash[:12]}) is under {dataset_dir}",
            fix="pass the recipe, --prune and --target of the `arco bake --detach` that "
            "submitted the job.")
    version_dir = safe_join(dataset_dir, f"v{version}")
    store = store_path(root, plan, version)
    job = state.get("job") or {}
    if state.get("status") != "complete":
        problems = store_problems(store)
        if problems:
            raise RunnerError(
                f"the bake of job {job.get('id') or '(no id)'} is not finished: "
                + "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else ""),
                where=store,
                fix="wait until the job is done (see the engine"
                + (f" at {job['engine_url']}" if job.get("engine_url") else "")
                + "), then run `arco publish` again; if the job failed, bake again.")
        complete_sources(version_dir)
        state.update(status="complete", ended=_now(), completed_by="arco publish")
        write_state(version_dir, state)
    published = publish(plan, root, version, version_dir, store, state,
                        pipeline_args=job.get("pipeline_args", ()),
                        storage_options=storage_options)
    return published, state


@app.command()
def publish(
    recipe: Annotated[Path, typer.Argument(help="The recipe of the detached bake.")],
    target: Annotated[str, typer.Option(
        "--target", "-t", help="The bake's target root (a folder or an object-store URL).")],
    prune: Annotated[int | None, typer.Option(
        help="The --prune of the bake, if it had one (it changes the plan).")] = None,
    runner: Annotated[str, typer.Option(
        help="The bake's runner profile: its catalog_storage_options go into the catalogue.",
    )] = "direct",
) -> None:
    """Complete a bake submitted with --detach once its job is done, and publish it."""

    def action() -> None:
        from recipes_core.runners import load_profile

        plan = _load_plan(recipe)
        if prune is not None:
            plan = plan.prune(prune)
        profile = load_profile(runner)
        published, state = complete_detached(plan, target, profile.catalog_storage_options)
        out.print(escape(f"published {plan.id} v{state['version']} (bake complete)"))
        if published is not None:
            out.print(escape(f"catalogue: {published.catalog}"), soft_wrap=True)
            out.print(escape(f"page: {published.page}"), soft_wrap=True)

    _run(action)
