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


def test_repeated_runs_are_interleaved_and_the_median_counts(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    """With --repeat, a round of every runner runs before the next round (so a drifting
    machine slows each alike), and each row is its runner's median attempt."""
    import argparse

    from bench import run
    from bench.report import RunResult

    order: list[tuple[str, str]] = []
    seconds = {"xarray": [3.0, 1.0, 2.0], "direct-1": [1.5, 0.5, 1.0]}

    def attempt(runner, codec, workload, folder, args, sample):
        order.append((codec, runner))
        done = sum(1 for c, r in order if (c, r) == (codec, runner)) - 1
        return RunResult(runner, codec, 10**9, seconds=seconds[runner][done], verified=True)

    monkeypatch.setattr(run, "_attempt", attempt)
    args = argparse.Namespace(verify_sample=None, codecs=["blosc-lz4"],
                              runners=["xarray", "direct-1"], repeat=3)
    results = run.run_all(TINY, tmp_path, args)
    assert order == [("blosc-lz4", "xarray"), ("blosc-lz4", "direct-1")] * 3
    assert [(r.runner, r.seconds) for r in results] == [("xarray", 2.0), ("direct-1", 1.0)]
    assert results[1].attempts_mb_s == [pytest.approx(1000 / s) for s in (1.5, 0.5, 1.0)]
