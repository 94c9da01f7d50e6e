"""`arco preflight RECIPE` (and `arco bake --preflight`): does every source exist?

One HEAD per source, a few at a time, before any work; one error lists every missing URL. The
access policy is the runner profile's (``--runner``, ``--set access.key=value``), widened by the
``--allow-*`` flags, so a preflight checks what the bake on that profile would read.
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
    allow_http: Annotated[
        bool, typer.Option(help="Allow plain http sources (servers you trust).")
    ] = False,
    runner: Annotated[
        str, typer.Option("--runner", "-r", help="The runner profile whose access settings apply.")
    ] = "direct",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a profile value: section.key=value (repeatable)."),
    ] = None,
) -> None:
    """Check that every source of a recipe exists (HEAD requests), without baking."""
    import dataclasses

    from recipes_core.bake import policy_from
    from recipes_core.cli import _load_plan, _run
    from recipes_core.runners import load_profile

    def action() -> None:
        compiled = _load_plan(recipe)
        if prune:
            compiled = compiled.prune(prune)
        policy = policy_from(load_profile(runner, set_ or ()))
        policy = dataclasses.replace(
            policy,
            allow_local=policy.allow_local or allow_local,
            allow_private_hosts=policy.allow_private_hosts or allow_private_hosts,
            allow_http=policy.allow_http or allow_http,
        )
        run_preflight(compiled, policy)

    _run(action)
