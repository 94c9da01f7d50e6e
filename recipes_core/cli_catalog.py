"""The catalogue commands: ``arco catalog validate``, ``arco ls`` and ``arco open``.

Registered on the main app by :mod:`recipes_core.cli`. The CLI's error handling (``_run``) and
consoles are imported when a command runs, not at import time, because ``cli`` imports this
module while it is itself being imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

catalog_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Work with the STAC catalogue a bake writes (TARGET/catalog.json).",
)

CatalogArg = Annotated[
    Path, typer.Argument(help="A catalog.json, or the target root folder that holds one.")
]
# Reading needs no local files: a catalogue on an object store opens through fsspec.
CatalogRef = Annotated[
    str, typer.Argument(help="A catalog.json, the target root folder that holds one, or its "
                        "URL (s3://bucket/root/catalog.json).")
]


@catalog_app.command("validate")
def validate_command(catalog: CatalogArg) -> None:
    """Validate a catalogue offline against the STAC schemas shipped with arco; exit 0 if valid.

    Every object reachable from the root is checked (children and earlier versions), and every
    problem is listed, one per line.
    """
    from recipes_core.cli import _run, out
    from recipes_core.stac.validate import validate_catalog

    report = _run(lambda: validate_catalog(catalog))
    for problem in report.problems:
        out.print(f"[red]error[/] {escape(str(problem))}", soft_wrap=True)
    failed = {p.path for p in report.problems}
    for path in report.checked:
        if path not in failed:
            out.print(f"[green]ok[/] {path}", soft_wrap=True)
    if report.problems:
        out.print(f"{len(report.problems)} problem(s) in {len(failed)} of "
                  f"{len(report.checked)} document(s).")
        raise typer.Exit(1)
    out.print(f"{len(report.checked)} document(s) valid.")


def _bbox(collection: Any) -> str:
    west, south, east, north = collection.extent.spatial.bboxes[0]
    return f"{west:g},{south:g},{east:g},{north:g}"


def _time(collection: Any) -> str:
    from pystac.utils import datetime_to_str

    start, end = collection.extent.temporal.intervals[0]
    return "..".join(datetime_to_str(t)[:10] if t else "open" for t in (start, end))


def _variables(collection: Any) -> str:
    from pystac.extensions.datacube import DatacubeExtension

    variables = DatacubeExtension.ext(collection).variables or {}
    return ", ".join(
        f"{name} [{var.unit}]" if var.unit else name
        for name, var in variables.items()
        if var.to_dict().get("type") == "data"
    )


def ls_command(catalog: CatalogRef) -> None:
    """List the datasets of a catalogue with their extents and variables."""
    from recipes_core.cli import _run, out
    from recipes_core.stac.open import open_catalog

    def action() -> list[Any]:
        return sorted(open_catalog(catalog).get_collections(), key=lambda c: c.id)

    collections = _run(action)
    if not collections:
        out.print("no datasets in this catalogue yet.")
        return
    # Compact (no vertical rules) so a row fits an 80-column terminal; titles are on the page.
    table = Table(title=f"{len(collections)} dataset(s)", box=box.SIMPLE_HEAD)
    table.add_column("id", no_wrap=True)  # what `arco open` takes: never broken up
    for column in ("v", "bbox W,S,E,N", "time", "variables"):
        table.add_column(column, overflow="fold")
    for collection in collections:
        table.add_row(
            collection.id,
            str(collection.extra_fields.get("version", "")),
            _bbox(collection),
            _time(collection),
            escape(_variables(collection)),  # "sst [degC]" is not markup
        )
    out.print(table)


def open_command(
    catalog: CatalogRef,
    dataset_id: Annotated[str, typer.Argument(metavar="ID", help="The dataset's id.")],
) -> None:
    """Open a catalogued dataset with xarray and print it."""
    from recipes_core.cli import _run
    from recipes_core.stac.open import open_dataset

    dataset = _run(lambda: open_dataset(catalog, dataset_id))
    typer.echo(repr(dataset))  # plain text: xarray's repr is full of [brackets] rich would eat
