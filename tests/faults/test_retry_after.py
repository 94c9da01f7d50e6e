"""A positive ``Retry-After`` is waited for, not just parsed (the other fault tests use 0)."""

from __future__ import annotations

import hashlib

from recipes_core.storage import AccessPolicy, Stager
from recipes_core.testing import make_daily_archive
from recipes_core.testing.faults import FaultServer, Status

LOOPBACK = {"allow_private_hosts": True, "allow_http": True, "max_retry_seconds": 10.0}


def test_429_with_retry_after_one_second_waits_a_second(tmp_path):
    files = make_daily_archive(tmp_path / "archive", days=1, ny=4, nx=8)
    name = files[0].name
    with FaultServer(tmp_path / "archive") as server:
        server.add(name, Status(429, retry_after="1"), times=1)
        # backoff_base is tiny: only the header can explain a one-second pause.
        stager = Stager(str(tmp_path / "cache"), AccessPolicy(**LOOPBACK, backoff_base=0.01))
        staged = stager.stage(f"{server.url}/{name}")
        first, second = server.times(name)
    assert staged.sha256 == hashlib.sha256(files[0].read_bytes()).hexdigest()
    assert second - first >= 0.9
    assert second - first < 5  # and not the whole retry bound
