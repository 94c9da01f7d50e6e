"""`arco preflight RECIPE` (and `arco bake --preflight`): does every source exist?

One HEAD per source, a few at a time, before any work; one error lists every missing URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def run_preflight(plan: Any, policy: Any) -> None:
    """Check every source of ``plan`` or raise one error listing all the missing ones."""
    from recipes_core.cli import out
    from recipes_core.storage.preflight import require_sources

    with out.status(f"preflight: checking {plan.nsources} sources..."):
        report = require_sources(plan, policy)
    out.print(f"preflight: all {report.checked} sources exist ({report.seconds:.1f} s)")


def preflight(
    recipe: Annotated[Path, typer.Argument(help="The recipe file.")],
    prune: Annotated[
        int | None, typer.Option(help="Check only the first N keys of each concat dimension.")
    ] = None,
    allow_local: Annotated[bool, typer.Option(help="Allow local source paths.")] = False,
    allow_private_hosts: Annotated[
        bool, typer.Option(help="Allow loopback/private hosts (trusted recipes only).")
    ] = False,
) -> None:
    """Check that every source of a recipe exists (HEAD requests), without baking."""
    from recipes_core.cli import _load_plan, _policy, _run

    def action() -> None:
        compiled = _load_plan(recipe)
        if prune:
            compiled = compiled.prune(prune)
        run_preflight(compiled, _policy(allow_local, allow_private_hosts))

    _run(action)
