"""The per-host connection limit holds across the worker processes of one machine.

``access.max_connections_per_host`` is taken as lock files under ``<cache>/locks/`` (see
recipes_core/storage/slots.py), so a multi-process bake opens at most that many connections to
a host in all, not that many per worker process.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
import xarray as xr

from recipes_core.bake import bake, policy_from
from recipes_core.errors import SourceError
from recipes_core.plan import compile_recipe
from recipes_core.recipe_io import load_recipe
from recipes_core.runners.profile import RunnerProfile
from recipes_core.storage.slots import host_slot
from recipes_core.testing import archive_oracle, make_daily_archive
from recipes_core.testing.faults import Delay, FaultServer
from tests.conftest import recipe_dict

DAYS = 6
URL = "https://data.example.org/a.nc"


def _profile(limit: int) -> RunnerProfile:
    return RunnerProfile.model_validate({
        "name": "two-processes",
        "engine": "direct",
        "direct": {"running_mode": "multi_processing", "num_workers": 2},
        # The operator's own loopback test server, over plain http, one connection at a time.
        "access": {"allow_private_hosts": True, "allow_http": True,
                   "max_connections_per_host": limit},
    })


def test_the_profiles_access_section_reaches_the_bake():
    policy = policy_from(_profile(1))
    assert policy.max_connections_per_host == 1
    assert policy.allow_http and policy.allow_private_hosts and not policy.allow_local


def test_a_two_process_bake_never_opens_two_connections(tmp_path, write_recipe):
    files = make_daily_archive(tmp_path / "archive", days=DAYS, ny=4, nx=8)
    with FaultServer(tmp_path / "archive") as server:
        # Slow answers, so two workers fetching at once would overlap on the server.
        server.add(".nc", Delay(0.15), times=None, methods=("GET", "HEAD"))
        recipe = write_recipe(recipe_dict(
            server.url + "/demo_{time:%Y%m%d}.nc",
            {"time": {"start": "2020-01-01", "end": f"2020-01-0{DAYS}", "freq": "D"}},
            target={"chunks": {"time": 1}}))
        plan = compile_recipe(load_recipe(recipe)[0], recipe)
        # No policy argument: the profile's access section is the policy, in every worker.
        result = bake(plan, str(tmp_path / "target"), cache_dir=str(tmp_path / "cache"),
                      profile=_profile(1))
    assert server.count(".nc") >= DAYS  # every file really was fetched from the server
    assert server.peak_concurrent == 1
    xr.testing.assert_identical(xr.open_zarr(result.store).load(), archive_oracle(files))
    assert list((tmp_path / "cache" / "locks").glob("127.0.0.1-*.0.lock"))


def _hold(lock_dir: str, limit: int, seconds: float, log: str) -> None:
    """In another process: take a slot, note when it was held, release it."""
    for _ in range(2):
        with host_slot(URL, limit, lock_dir):
            start = time.time()
            time.sleep(seconds)
            end = time.time()
        with open(log, "a") as f:
            f.write(f"{start} {end}\n")


def _max_overlap(log: Path) -> int:
    """The most spans of the log open at one moment (a sweep over starts and ends)."""
    events = []
    for line in log.read_text().splitlines():
        start, end = map(float, line.split())
        events += [(start, 1), (end, -1)]
    now = peak = 0
    for _, step in sorted(events):  # at equal times an end (-1) sorts before a start
        now += step
        peak = max(peak, now)
    return peak


@pytest.mark.parametrize("limit", [1, 2])
def test_slots_are_shared_between_processes(tmp_path, limit):
    """Three processes, limit slots: never more than limit hold one at the same time, and
    with two slots two do (the files bound the processes, they do not serialise them)."""
    log = tmp_path / "spans.txt"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hold, args=(str(tmp_path / "locks"), limit, 0.2,
                                                   str(log))) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert len(log.read_text().splitlines()) == 6
    assert _max_overlap(log) == limit


def test_a_slot_wait_is_bounded_and_names_the_host(tmp_path):
    lock_dir = str(tmp_path / "locks")
    context = multiprocessing.get_context("spawn")
    holder = context.Process(target=_hold, args=(lock_dir, 1, 1.5, str(tmp_path / "log")))
    holder.start()
    try:
        deadline = time.monotonic() + 10
        while not list((tmp_path / "locks").glob("*.lock")) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # the holder has the slot now
        with pytest.raises(SourceError) as info, host_slot(URL, 1, lock_dir, max_wait=0.3):
            pass
    finally:
        holder.join(30)
    message = str(info.value)
    assert "data.example.org:443" in message and URL in message
    assert "max_connections_per_host" in message
