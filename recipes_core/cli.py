"""The `arco` command line: lint, plan, bake, verify, schema, catalog, ls, open.

Every command turns an :class:`~recipes_core.errors.ArcoError` into a short paragraph and exit
code 1. Anything unexpected is reported in one line too; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from recipes_core.cli_cache import cache_app
from recipes_core.cli_preflight import preflight
from recipes_core.errors import ArcoError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Compile declarative recipes into Beam pipelines that bake analysis-ready Zarr stores.",
    pretty_exceptions_enable=False,
)
app.add_typer(cache_app, name="cache")
app.command("preflight")(preflight)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
_state = {"debug": False}
T = TypeVar("T")
_BEAM_SUFFIX = re.compile(r" \[while running '[^']*'\]")


def _quiet_logging(debug: bool) -> None:
    """Beam logs import-time warnings and whole tracebacks; users get our message instead."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.ERROR, format="%(message)s")
    for name in ("apache_beam", "absl", "cfgrib", "distributed"):
        logging.getLogger(name).setLevel(logging.INFO if debug else logging.CRITICAL)


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except ArcoError as error:
        if _state["debug"]:
            raise
        text = _BEAM_SUFFIX.sub("", str(error))
        # Messages quote recipe values (ids, titles, URLs, regexes): never parse them as markup.
        err.print(f"[bold red]error[/]: {escape(text)}", soft_wrap=True)
        raise typer.Exit(1) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as error:  # never a bare traceback without --debug
        if _state["debug"]:
            raise
        text = _BEAM_SUFFIX.sub("", f"{type(error).__name__}: {error}")
        err.print(
            f"[bold red]internal error[/]: {escape(text)}\nRun again with --debug for the "
            "traceback, and please report it.",
            soft_wrap=True,
        )
        raise typer.Exit(2) from None


@app.callback()
def main_callback(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and engine logs.")
    ] = False,
) -> None:
    _state["debug"] = debug
    _quiet_logging(debug)


# ---- lint ----------------------------------------------------------------------------------
@app.command()
def lint(
    recipes: Annotated[list[Path], typer.Argument(help="Recipe files to check.")],
    untrusted: Annotated[
        bool,
        typer.Option(
            "--untrusted", help="Pull-request mode: refuse local paths, plain http, private hosts."
        ),
    ] = False,
) -> None:
    """Check recipes: schema, dates, pattern placeholders, chunks, transforms, source policy."""
    from recipes_core.lint import lint_file

    def action() -> int:
        failed = 0
        for path in recipes:
            result = lint_file(path, untrusted=untrusted)
            if result.ok:
                out.print(f"[green]ok[/] {escape(str(path))}")
                continue
            failed += 1
            for problem in result.problems:
                out.print(f"[red]error[/] {escape(str(problem))}", soft_wrap=True)
        return failed

    failed = _run(action)
    if failed:
        out.print(f"{failed} of {len(recipes)} recipe(s) failed lint.")
        raise typer.Exit(1)


# ---- plan ----------------------------------------------------------------------------------
def _load_plan(recipe: Path) -> Any:
    from recipes_core.plan import compile_recipe
    from recipes_core.recipe_io import load_recipe

    loaded, _ = load_recipe(recipe)
    return compile_recipe(loaded, recipe)


def _policy(allow_local: bool, allow_private_hosts: bool, allow_http: bool = False) -> Any:
    from recipes_core.storage import AccessPolicy

    return AccessPolicy(allow_local=allow_local, allow_private_hosts=allow_private_hosts,
                        allow_http=allow_http)


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


@app.command()
def plan(
    recipe: Annotated[Path, typer.Argument(help="The recipe file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    inspect: Annotated[
        bool, typer.Option("--inspect", help="Open the first source to show the target template.")
    ] = False,
    allow_local: Annotated[bool, typer.Option(help="Allow local source paths.")] = False,
    allow_private_hosts: Annotated[
        bool, typer.Option(help="Allow loopback/private hosts (trusted recipes only).")
    ] = False,
    allow_http: Annotated[bool, typer.Option(help="Allow plain http sources.")] = False,
    cache: Annotated[Path | None, typer.Option(help="Staging cache directory.")] = None,
) -> None:
    """Compile a recipe to its plan (no file is opened unless --inspect)."""

    def action() -> None:
        compiled = _load_plan(recipe)
        info = compiled.describe()
        if inspect:
            from recipes_core.inspection import inspect_plan

            info["template"] = inspect_plan(
                compiled, str(cache or _default_cache()),
                _policy(allow_local, allow_private_hosts, allow_http),
            )
        if as_json:
            out.print_json(json.dumps(info, default=str))
            return
        _print_plan(info)

    _run(action)


def _print_plan(info: dict[str, Any]) -> None:
    out.print(f"[bold]{escape(str(info['id']))}[/]  plan {info['plan_hash'][:16]}")
    out.print(f"sources: {info['sources']}")
    out.print(f"  first: {escape(str(info['first_url']))}", soft_wrap=True)
    out.print(f"  last:  {escape(str(info['last_url']))}", soft_wrap=True)
    for dim in info["dims"]:
        extra = f", {dim['items_per_file']} per file" if dim["items_per_file"] else ""
        out.print(escape(
            f"dim {dim['name']} ({dim['role']}): {dim['keys']} keys, "
            f"{dim['first']} .. {dim['last']}{extra}"
        ))
    target = info["target"]
    chunks = ", ".join(f"{k}={v}" for k, v in target["chunks"].items()) or "by size"
    out.print(escape(
        f"target: zarr v{target['zarr_format']}, chunks {chunks}"
        + (f", chunk_size {_human_bytes(target['chunk_size'])}" if target["chunk_size"] else "")
        + f", codec {target['codec']['name']}"
    ))
    if info["transforms"]:
        out.print(escape("transforms: " + " -> ".join(map(str, info["transforms"]))))
    template = info.get("template")
    if template:
        table = Table(title="target template (estimated from the first source)")
        for column in ("variable", "dims", "shape", "dtype", "chunks", "chunk grid", "size"):
            table.add_column(column)
        for var in template["variables"]:
            table.add_row(  # variable and dimension names come from the source files
                escape(str(var["name"])),
                escape(", ".join(map(str, var["dims"]))),
                str(tuple(var["shape"])),
                var["dtype"],
                str(tuple(var["chunks"])),
                str(tuple(var["grid"])),
                _human_bytes(var["nbytes"]),
            )
        out.print(table)
        out.print(
            f"total: {_human_bytes(template['nbytes'])} uncompressed in "
            f"{template['nchunks']} chunks"
        )


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "arco"


# ---- verify --------------------------------------------------------------------------------
@app.command()
def verify(
    store: Annotated[Path, typer.Argument(help="The baked Zarr store.")],
    recipe: Annotated[Path, typer.Option("--recipe", "-r", help="The recipe it was baked from.")],
    sample: Annotated[
        int | None,
        typer.Option(min=1, help="Compare N random chunks per variable instead of all of them."),
    ] = None,
    prune: Annotated[int | None, typer.Option(help="The --prune the bake used.")] = None,
    allow_local: Annotated[bool, typer.Option(help="Allow local source paths.")] = False,
    allow_private_hosts: Annotated[
        bool, typer.Option(help="Allow loopback/private hosts.")
    ] = False,
    allow_http: Annotated[bool, typer.Option(help="Allow plain http sources.")] = False,
    cache: Annotated[Path | None, typer.Option(help="Staging cache directory.")] = None,
) -> None:
    """Re-open the sources and compare them with a store; exit 0 if equal, 1 if not."""
    from recipes_core.verify import verify_store

    def action() -> Any:
        compiled = _load_plan(recipe)
        if prune is not None:  # --prune 0 is refused by Plan.prune, not taken as "no prune"
            compiled = compiled.prune(prune)
        if not store.exists():
            from recipes_core.errors import TargetError

            raise TargetError("no store here", where=str(store), fix="check the path.")
        return verify_store(
            str(store),
            compiled,
            sample=sample,
            cache_dir=str(cache or _default_cache()),
            policy=_policy(allow_local, allow_private_hosts, allow_http),
        )

    report = _run(action)
    out.print(escape(report.summary()), soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


# ---- schema --------------------------------------------------------------------------------
@app.command()
def schema() -> None:
    """Print the recipe JSON Schema (for editors and CI)."""
    from recipes_core.json_schema import recipe_json_schema

    sys.stdout.write(recipe_json_schema())


def main() -> None:
    app()


if __name__ == "__main__":
    main()


# Commands that live in their own modules register themselves on `app` when imported.
from recipes_core import cli_bake, cli_publish  # noqa: E402, F401

# The catalogue: `arco catalog validate`, `arco ls`, `arco open` (recipes_core/cli_catalog.py).
from recipes_core.cli_catalog import catalog_app, ls_command, open_command  # noqa: E402

app.add_typer(catalog_app, name="catalog")
app.command("ls")(ls_command)
app.command("open")(open_command)
