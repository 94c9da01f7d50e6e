"""`arco cache ls | verify | gc`: look after the staging cache and its history.

The cache (``~/.cache/arco`` unless ``--cache``) holds every fetched version of every source,
named by sha256, and ``manifest.jsonl``, the history of fetches (see
:mod:`recipes_core.storage.cache`). URLs are shown redacted, as they are stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

cache_app = typer.Typer(
    help="Inspect, verify and clean the staging cache (fetched sources and their history).",
    no_args_is_help=True,
)

CacheOption = Annotated[
    Path | None, typer.Option("--cache", help="The cache root (default: ~/.cache/arco).")
]


def _cache(path: Path | None) -> Any:
    from recipes_core.cli import _default_cache
    from recipes_core.storage import StagingCache

    return StagingCache(path or _default_cache())


@cache_app.command("ls")
def ls(
    cache: CacheOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    history: Annotated[
        bool, typer.Option("--history", help="List every fetch, not one line per URL.")
    ] = False,
) -> None:
    """List cached sources: URL (redacted), size, sha256, fetch time, versions per URL."""
    from recipes_core.cli import _human_bytes, _run, out

    def action() -> None:
        store = _cache(cache)
        if history:
            rows = [
                {k: r.get(k) for k in ("url", "size", "sha256", "etag", "fetched_at")}
                for r in store.fetches()
            ]
        else:
            rows = [entry.summary() for entry in store.entries()]
        if as_json:
            out.print_json(json.dumps(rows))
            return
        if not rows:
            out.print(escape(f"the cache at {store.root} is empty"))
            return
        table = Table(title=escape(f"staging cache {store.root}"))
        columns = ["url", "size", "sha256", "fetched_at"] + ([] if history else ["versions"])
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            cells = [
                escape(str(row["url"])),  # a URL may hold [brackets]: not markup
                _human_bytes(row["size"] or 0),
                str(row["sha256"])[:16],
                str(row["fetched_at"]),
            ]
            table.add_row(*cells, *([] if history else [str(row["versions"])]))
        out.print(table)

    _run(action)


@cache_app.command("verify")
def verify(cache: CacheOption = None) -> None:
    """Re-hash every cached object; exit 1 if any is corrupt or missing."""
    from recipes_core.cli import _run, out

    def action() -> Any:
        return _cache(cache).verify()

    report = _run(action)
    for path in report.corrupt:
        out.print(f"[red]corrupt[/] {escape(str(path))}: its bytes do not match its sha256",
                  soft_wrap=True)
    for sha in report.missing:
        out.print(f"[red]missing[/] {sha}: the history names it but it is not on disk")
    if report.ok:
        out.print(f"[green]ok[/]: {report.checked} objects verified")
        return
    out.print(
        f"{len(report.corrupt)} corrupt and {len(report.missing)} missing of {report.checked} "
        "objects. Fix: run `arco cache gc --no-keep-history` to drop them; the next bake "
        "fetches them again."
    )
    raise typer.Exit(1)


@cache_app.command("gc")
def gc(
    cache: CacheOption = None,
    keep_history: Annotated[
        bool,
        typer.Option(
            "--keep-history/--no-keep-history",
            help="Keep every version the history names (default), or only each URL's newest.",
        ),
    ] = True,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            min=0,
            help="Only remove objects last fetched more than DAYS days ago.",
            metavar="DAYS",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")
    ] = False,
) -> None:
    """Remove cached objects no longer needed.

    The newest version of every URL is always kept. With --keep-history (the default) every
    version the history names is kept as well, and only orphans (objects without a record, left
    by a killed bake) and stale temp files go; --no-keep-history also removes older versions.
    Removals are appended to the history, which is never rewritten.
    """
    from recipes_core.cli import _human_bytes, _run, out

    def action() -> Any:
        return _cache(cache).gc(
            keep_history=keep_history, older_than_days=older_than, dry_run=dry_run
        )

    report = _run(action)
    verb = "would remove" if dry_run else "removed"
    for sha in report.removed:
        out.print(f"{verb} {sha}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out.print(
        f"{verb} {len(report.removed)} objects ({_human_bytes(report.removed_bytes)}) and "
        f"{report.temp_files} stale temp files; kept {report.kept} ({stamp})"
    )
