"""Preflight (every missing source in one error), the per-host limit, and `arco cache`."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recipes_core.cli import app
from recipes_core.errors import SourceMissingError
from recipes_core.plan import compile_recipe
from recipes_core.recipe_io import load_recipe
from recipes_core.storage import AccessPolicy, Stager, StagingCache
from recipes_core.storage.preflight import preflight, require_sources
from recipes_core.testing import make_daily_archive
from recipes_core.testing.faults import Fault, FaultServer, Status
from tests.conftest import recipe_dict

runner = CliRunner()
LOOPBACK = {"allow_private_hosts": True, "allow_http": True, "backoff_base": 0.01}


class CountConcurrent(Fault):
    """Answer normally after a pause, recording how many requests were in flight at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def apply(self, handler, path, *, head_only):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.seconds)
        with self.lock:
            self.now -= 1
        return False


@pytest.fixture
def served(tmp_path: Path, write_recipe):
    make_daily_archive(tmp_path / "archive", days=6, ny=4, nx=8)
    with FaultServer(tmp_path / "archive") as server:
        recipe = write_recipe(recipe_dict(
            server.url + "/demo_{time:%Y%m%d}.nc",
            {"time": {"start": "2020-01-01", "end": "2020-01-06", "freq": "D"}}))
        yield server, recipe


def _plan(path: Path):
    return compile_recipe(load_recipe(path)[0], path)


def test_preflight_lists_every_missing_url_at_once(tmp_path, served):
    server, recipe = served
    for day in ("02", "05"):
        (tmp_path / "archive" / f"demo_202001{day}.nc").unlink()
    with pytest.raises(SourceMissingError) as info:
        require_sources(_plan(recipe), AccessPolicy(**LOOPBACK))
    text = str(info.value)
    assert "2 of 6 sources are missing" in text
    assert f"{server.url}/demo_20200102.nc" in text and f"{server.url}/demo_20200105.nc" in text
    assert all(method == "HEAD" for method, _ in server.requests)  # nothing downloaded


def test_bake_preflight_stops_before_any_work(tmp_path, served):
    server, recipe = served
    for day in ("03", "04"):
        (tmp_path / "archive" / f"demo_202001{day}.nc").unlink()
    target = tmp_path / "target"
    result = runner.invoke(app, ["bake", str(recipe), "--target", str(target), "--preflight",
                                 "--allow-private-hosts", "--allow-http", "--cache",
                                 str(tmp_path / "c")])
    output = " ".join(result.output.split())
    assert result.exit_code == 1, output
    assert "2 of 6 sources are missing" in output
    assert "demo_20200103.nc" in output and "demo_20200104.nc" in output
    assert "Traceback" not in result.output
    assert not target.exists()
    assert all(method == "HEAD" for method, _ in server.requests)
    ok = runner.invoke(app, ["preflight", str(recipe), "--prune", "2", "--allow-private-hosts",
                             "--allow-http"])
    assert ok.exit_code == 0 and "all 2 sources exist" in ok.output


def test_per_host_limit_bounds_concurrent_requests(served):
    server, recipe = served
    probe = CountConcurrent(0.15)
    server.add(".nc", probe, times=None, methods=("HEAD",))
    report = preflight(_plan(recipe), AccessPolicy(**LOOPBACK, max_connections_per_host=2),
                       workers=6)
    assert report.ok and report.checked == 6
    assert probe.peak == 2


def test_cache_ls_verify_gc(tmp_path, served):
    server, _ = served
    cache_dir = tmp_path / "cache"
    stager = Stager(str(cache_dir), AccessPolicy(**LOOPBACK))
    url = f"{server.url}/demo_20200101.nc?token=SECRET123"
    first = stager.stage(url)
    server.change_file("demo_20200101.nc", (tmp_path / "archive" / "demo_20200102.nc")
                       .read_bytes())
    second = stager.stage(url)
    stager.stage(f"{server.url}/demo_20200103.nc")
    assert first.sha256 != second.sha256

    listed = runner.invoke(app, ["cache", "ls", "--cache", str(cache_dir), "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {Path(r["url"]).name: r for r in json.loads(listed.output)}
    assert rows["demo_20200101.nc?token=***"]["versions"] == 2
    assert rows["demo_20200101.nc?token=***"]["sha256"] == second.sha256
    assert "SECRET123" not in listed.output
    table = runner.invoke(app, ["cache", "ls", "--cache", str(cache_dir)])
    assert table.exit_code == 0 and "SECRET123" not in table.output

    assert runner.invoke(app, ["cache", "verify", "--cache", str(cache_dir)]).exit_code == 0
    Path(second.path).write_bytes(b"rotten")
    bad = runner.invoke(app, ["cache", "verify", "--cache", str(cache_dir)])
    assert bad.exit_code == 1 and "corrupt" in bad.output and second.sha256 in bad.output
    # A damaged object is never reused: the next stage fetches and repairs it.
    assert stager.stage(url).sha256 == second.sha256
    assert runner.invoke(app, ["cache", "verify", "--cache", str(cache_dir)]).exit_code == 0

    kept = runner.invoke(app, ["cache", "gc", "--cache", str(cache_dir)])
    assert kept.exit_code == 0 and "removed 0 objects" in kept.output
    dry = runner.invoke(app, ["cache", "gc", "--cache", str(cache_dir), "--no-keep-history",
                              "--dry-run"])
    assert dry.exit_code == 0 and f"would remove {first.sha256}" in dry.output
    assert Path(first.path).exists()
    young = runner.invoke(app, ["cache", "gc", "--cache", str(cache_dir), "--no-keep-history",
                                "--older-than", "1"])
    assert "removed 0 objects" in young.output  # fetched seconds ago, not a day
    gone = runner.invoke(app, ["cache", "gc", "--cache", str(cache_dir), "--no-keep-history"])
    assert gone.exit_code == 0 and f"removed {first.sha256}" in gone.output
    assert not Path(first.path).exists() and Path(second.path).exists()
    # History is kept, with the removal recorded; verify does not miss the removed object.
    records = StagingCache(cache_dir).records()
    assert [r["sha256"] for r in records if r.get("event") == "gc"] == [first.sha256]
    assert runner.invoke(app, ["cache", "verify", "--cache", str(cache_dir)]).exit_code == 0


def test_gc_removes_orphans_and_stale_temp_files(tmp_path):
    cache = StagingCache(tmp_path / "cache")
    orphan = Path(cache.object_path("ab" + "0" * 62))
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a killed bake")
    tmp = Path(cache.temp_path())
    tmp.write_bytes(b"partial")
    assert cache.gc().removed == []  # too young: a running bake may own them
    later = time.time() + 2 * 3600
    report = cache.gc(now=later)
    assert report.removed == [orphan.name] and report.temp_files == 1
    assert not orphan.exists() and not tmp.exists()


def test_preflight_falls_back_to_a_ranged_get_when_head_is_refused(served):
    server, recipe = served
    server.add(".nc", Status(403), times=None, methods=("HEAD",))
    report = preflight(_plan(recipe), AccessPolicy(**LOOPBACK))
    assert report.ok
    server.add("demo_20200104.nc", Status(403), times=None, methods=("GET",))
    report = preflight(_plan(recipe), AccessPolicy(**LOOPBACK))
    assert report.missing == [] and len(report.failed) == 1
    assert "demo_20200104.nc: HTTP 403" in report.failed[0]


def test_preflight_uses_the_runner_profiles_access_settings(tmp_path, served):
    """`arco preflight --runner P` checks what a bake on P may read: here P allows the loopback
    test server over plain http; the default profile refuses plain http, naming URL and fix."""
    server, recipe = served
    refused = runner.invoke(app, ["preflight", str(recipe), "--allow-private-hosts"])
    output = " ".join(refused.output.split())
    assert refused.exit_code == 1 and "plain http is not allowed" in output
    assert f"{server.url}/demo_20200101.nc" in output and "--allow-http" in output
    assert server.requests == []  # refused before any request
    profile = tmp_path / "trusted.yaml"
    profile.write_text("name: trusted\nengine: direct\n"
                       "access: {allow_http: true, allow_private_hosts: true}\n")
    ok = runner.invoke(app, ["preflight", str(recipe), "--runner", str(profile)])
    assert ok.exit_code == 0 and "all 6 sources exist" in ok.output, ok.output
    assert server.count("demo_20200106.nc", "HEAD") == 1
