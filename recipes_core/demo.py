"""`make demo`: generate a small archive, serve it over HTTP, bake it, show the result.

Runs on a fresh clone with nothing but the project installed: the archive is synthetic
(:mod:`recipes_core.testing`), the server is a local thread, the bake uses Beam's direct runner.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

DEMO_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "examples" / "demo.yaml"
DEMO_PORT = 8765  # the port named in recipes/examples/demo.yaml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", default="_demo", help="where the archive and store go")
    args = parser.parse_args(argv)

    import xarray as xr

    from recipes_core.cli import _quiet_logging
    from recipes_core.errors import ArcoError
    from recipes_core.testing import ArchiveServer, archive_oracle, make_daily_archive

    _quiet_logging(debug=False)
    work = Path(args.workdir).resolve()
    archive, target = work / "archive", work / "target"
    shutil.rmtree(target, ignore_errors=True)
    started = time.monotonic()
    files = make_daily_archive(archive, start="2020-01-01", days=60, variables=("tas", "pr"))
    print(f"1. generated {len(files)} daily netCDF files in {archive}")
    try:
        server = ArchiveServer(archive, port=DEMO_PORT).start()
    except OSError as err:
        print(
            f"error: cannot serve the demo archive on 127.0.0.1:{DEMO_PORT} ({err}). "
            "Fix: stop whatever uses that port and run `make demo` again.",
            file=sys.stderr,
        )
        return 1
    print(f"2. serving them at {server.url}")
    try:
        from recipes_core.bake import bake
        from recipes_core.plan import compile_recipe
        from recipes_core.recipe_io import load_recipe
        from recipes_core.storage import AccessPolicy

        recipe, _ = load_recipe(DEMO_RECIPE)
        plan = compile_recipe(recipe, DEMO_RECIPE)
        print(
            f"3. baking {os.path.relpath(DEMO_RECIPE)} (plan {plan.hash[:12]}) "
            "on Beam's direct runner"
        )
        # The operator, not the recipe, allows the loopback host and plain http: this is the
        # demo's own server, on this machine.
        result = bake(
            plan,
            str(target),
            cache_dir=str(work / "cache"),
            policy=AccessPolicy(allow_private_hosts=True, allow_http=True),
        )
    except ArcoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        server.stop()
    baked = xr.open_zarr(result.store)
    print(
        f"4. wrote {result.store} in {result.seconds:.1f} s "
        f"({result.counters.get('chunks_written', 0)} chunks)"
    )
    print()
    print(baked)
    print()
    expected = archive_oracle(files)
    xr.testing.assert_equal(baked.load(), expected)
    print("5. checked: the store equals xr.open_mfdataset of the sources (values, coordinates).")
    print()
    print("Open it in one line:")
    print(f"    import xarray as xr; ds = xr.open_zarr({result.store!r})")
    print(f"\ndemo finished in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
