"""A test kit shipped inside the package: realistic archives and a loopback HTTP server.

It lives in the package (not under ``tests/``) so the demo, the benchmarks and downstream users
can build the same archives and serve them the same way our own tests do. Nothing here depends on
pytest; fixtures wrap these functions and classes.

* :func:`make_daily_archive` writes a daily CF-netCDF archive with the traps of real products
  (per-file time units, descending latitude, fill values, compression).
* :func:`make_regridded_copy` rewrites one file on another grid, for mismatched-grid errors.
* :func:`archive_oracle` is the plain-xarray answer a bake of an archive must equal.
* :class:`ArchiveServer` serves a directory over HTTP on 127.0.0.1 (GET/HEAD/Range, ETag).
"""

from __future__ import annotations

from recipes_core.testing.archive import archive_oracle, make_daily_archive, make_regridded_copy
from recipes_core.testing.http_server import ArchiveServer

__all__ = ["ArchiveServer", "archive_oracle", "make_daily_archive", "make_regridded_copy"]
