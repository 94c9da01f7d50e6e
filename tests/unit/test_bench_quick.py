"""The benchmark's helpers on tiny data (the benchmark itself is `make bench`, not a test)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("psutil")

from bench import hotspots, limits, planning
from bench.rss import run_measured
from bench.workload import Workload, generate

TINY = Workload(days=3, ny=6, nx=12)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(TINY, tmp_path_factory.mktemp("bench"), workers=1, log=lambda _: None).parent


def test_generate_writes_cf_files_once(archive: Path) -> None:
    import xarray as xr

    files = TINY.files(archive)
    stamps = [p.stat().st_mtime_ns for p in files]
    generate(TINY, archive, workers=1, log=lambda _: None)  # cached: nothing is rewritten
    assert [p.stat().st_mtime_ns for p in files] == stamps
    with xr.open_dataset(files[1]) as ds:
        assert ds.time.values[0] == __import__("numpy").datetime64("2000-01-02")
        assert ds.tas.encoding["_FillValue"] == pytest.approx(1e20)
        assert not ds.tas.encoding.get("zlib")
        assert int(ds.tas.isnull().sum()) > 0  # the land mask is stored as fill values


def test_limits_on_tiny_files(archive: Path, tmp_path: Path) -> None:
    measured = limits.measure(TINY.files(archive), TINY.variables, 2, ["blosc-lz4", "zstd-0"],
                              cores=2, scratch=tmp_path, disk_bytes=200_000, min_seconds=0.02)
    for lim in measured.values():
        assert lim.read_mb_s > 0 and lim.compress_mb_s > 0 and lim.disk_mb_s > 0
        assert 0 < lim.ratio < 1.5
        assert lim.limit_mb_s <= lim.disk_mb_s / lim.ratio
    assert not list(tmp_path.iterdir())  # the disk test cleans up after itself


def test_planning_cost_of_a_small_recipe() -> None:
    # 95 days in time chunks of 30: 4 tasks, each reading the days of its chunk once.
    cost = planning.compile_cost(95)
    assert cost["write_tasks"] == 4
    assert 0 < cost["total_s"] < cost["with_survey_and_tasks_s"] < 10


def test_limit_formula() -> None:
    lim = limits.Limits(codec="x", cores=2, read_mb_s=500, compress_mb_s=1000, ratio=0.5,
                        disk_mb_s=500, sha256_mb_s=1000)
    t = 1 / 500 + 1 / 1000 + 0.5 / 500
    assert lim.limit_mb_s == pytest.approx(2 / t)
    slow_disk = limits.Limits(codec="x", cores=2, read_mb_s=500, compress_mb_s=1000, ratio=0.5,
                              disk_mb_s=50, sha256_mb_s=1000)
    assert slow_disk.limit_mb_s == pytest.approx(100)  # capped by the disk


def test_rss_counts_the_whole_tree(tmp_path: Path) -> None:
    # A parent holding ~60 MB starts a child holding ~60 MB: the tree peak sees both.
    code = ("import subprocess, sys, time; a = bytearray(60 << 20); "
            "subprocess.run([sys.executable, '-c', "
            "'import time; b = bytearray(60 << 20); time.sleep(0.6)'])")
    usage = run_measured([sys.executable, "-c", code], interval=0.02)
    assert usage.returncode == 0
    assert usage.peak_processes >= 2
    assert usage.peak_rss > 120 << 20
    assert usage.largest_process_rss < usage.peak_rss
    assert usage.other_cpu_seconds >= 0


def test_hotspots_parse(tmp_path: Path) -> None:
    raw = tmp_path / "p.raw"
    raw.write_text(
        'process 1:"python";_run_module_as_main (<frozen runpy>:198);run_arco (bench/child.py:30);'
        "_find_and_load (<frozen importlib._bootstrap>:1176) 50\n"
        'process 1:"python";_run_module_as_main (<frozen runpy>:198);run_arco (bench/child.py:40);'
        "bake (recipes_core/bake.py:10);read_schema (recipes_core/pipeline.py:5);"
        "open_dataset (xarray/backends/api.py:3) 30\n"
        "_worker (concurrent/futures/thread.py:1);_encode_sync (zarr/codecs/blosc.py:9) 10\n")
    profile = hotspots.parse(raw)
    assert profile.samples == 40  # the untimed imports are left out
    phases = dict((label, count) for label, count, _ in profile.phases())
    assert phases["schema survey (open + schema_of)"] == 30
    assert phases["    codec encode (zarr threads)"] == 10
    assert "open_dataset (xarray/backends/api.py)" in hotspots.format_summary(
        hotspots.summary(profile))
