"""Sources on an S3-compatible object store (moto's server on loopback)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import xarray as xr

from recipes_core.testing import archive_oracle, make_daily_archive
from tests.conftest import recipe_dict


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3(monkeypatch) -> Iterator[str]:
    """A moto S3 server; boto/s3fs reach it through AWS_ENDPOINT_URL and fake credentials."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # instances remember the endpoint they met
    try:
        yield endpoint
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


def test_bake_from_s3_sources(s3, tmp_path, write_recipe, bake_file):
    import fsspec

    files = make_daily_archive(tmp_path / "archive", days=5)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("archive-bucket")
    for path in files:
        fs.put(str(path), f"archive-bucket/daily/{path.name}")
    recipe = recipe_dict("s3://archive-bucket/daily/demo_{time:%Y%m%d}.nc",
                         {"time": {"start": "2020-01-01", "end": "2020-01-05", "freq": "D",
                                   "items_per_file": 1}},
                         target={"chunks": {"time": 2}})
    result = bake_file(write_recipe(recipe), allow_local=False)
    xr.testing.assert_identical(xr.open_zarr(result.store).load(), archive_oracle(files))
    assert result.counters["sources_staged"] == 5


def test_missing_s3_source_names_the_url(s3, tmp_path, write_recipe, bake_file):
    import fsspec

    from recipes_core.errors import SourceMissingError

    fsspec.filesystem("s3", skip_instance_cache=True).mkdir("empty-bucket")
    recipe = recipe_dict("s3://empty-bucket/demo_{time:%Y%m%d}.nc",
                         {"time": {"start": "2020-01-01", "end": "2020-01-02", "freq": "D"}})
    with pytest.raises(SourceMissingError, match=r"s3://empty-bucket/demo_20200101\.nc"):
        bake_file(write_recipe(recipe), allow_local=False)


def test_bake_into_an_s3_target(s3, tmp_path, write_recipe, bake_file):
    import fsspec

    files = make_daily_archive(tmp_path / "archive", days=4)
    fsspec.filesystem("s3", skip_instance_cache=True).mkdir("target-bucket")
    recipe = recipe_dict(str(tmp_path / "archive" / "demo_{time:%Y%m%d}.nc"),
                         {"time": {"start": "2020-01-01", "end": "2020-01-04", "freq": "D",
                                   "items_per_file": 1}},
                         target={"chunks": {"time": 3}})
    result = bake_file(write_recipe(recipe), target="s3://target-bucket/arco")
    assert result.store == "s3://target-bucket/arco/test-recipe/v1/test-recipe.zarr"
    xr.testing.assert_identical(xr.open_zarr(result.store).load(), archive_oracle(files))
    fs = fsspec.filesystem("s3")
    state = fs.cat("target-bucket/arco/test-recipe/v1/bake.json")
    assert b'"status": "complete"' in state
    assert fs.exists("target-bucket/arco/test-recipe/v1/sources.json")


def test_workers_without_a_shared_cache_restage_pinned_bytes(s3, tmp_path, write_recipe,
                                                             bake_file, monkeypatch):
    """A write task on a machine that did not stage a source fetches it again, checked
    against the sha256 the survey recorded (engines whose workers share no disk)."""
    import fsspec

    from recipes_core import pipeline

    files = make_daily_archive(tmp_path / "archive", days=3)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("bucket")
    for path in files:
        fs.put(str(path), f"bucket/{path.name}")
    seen = []
    original = pipeline.WriteFn.local_path

    def elsewhere(self, key, staged):
        # Pretend this worker is another machine: the surveyed path does not exist here.
        seen.append(key)
        moved = type(staged)(**{**staged.__dict__, "path": "/nonexistent/" + staged.sha256})
        return original(self, key, moved)

    monkeypatch.setattr(pipeline.WriteFn, "local_path", elsewhere)
    recipe = recipe_dict("s3://bucket/demo_{time:%Y%m%d}.nc",
                         {"time": {"start": "2020-01-01", "end": "2020-01-03", "freq": "D",
                                   "items_per_file": 1}})
    result = bake_file(write_recipe(recipe), allow_local=False)
    assert sorted(seen) == [(0,), (1,), (2,)]
    xr.testing.assert_identical(xr.open_zarr(result.store).load(), archive_oracle(files))


def _bucket_with(name: str, data: bytes):
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(name)
    fs.pipe(f"{name}/a.nc", data)
    return fs


def test_s3_staging_records_the_etag_and_reuses_an_unchanged_object(s3, tmp_path):
    import hashlib

    from recipes_core.storage import AccessPolicy, Stager

    fs = _bucket_with("versions", b"first version of the file")
    url = "s3://versions/a.nc"
    etag = fs.info("versions/a.nc")["ETag"]
    stager = Stager(str(tmp_path / "cache"), AccessPolicy())
    first = stager.stage(url)
    assert (first.etag, first.size, first.cached) == (etag, 25, False)
    assert first.sha256 == hashlib.sha256(b"first version of the file").hexdigest()
    again = stager.stage(url)  # same ETag and size: the cached copy, re-hashed, no new record
    assert again.cached and again.path == first.path
    assert [r["etag"] for r in stager.history(url)] == [etag]

    fs.pipe("versions/a.nc", b"the provider re-published it")  # new bytes, new ETag
    changed = stager.stage(url)
    assert not changed.cached and changed.sha256 != first.sha256
    records = stager.history(url)
    assert [r["sha256"] for r in records] == [first.sha256, changed.sha256]
    assert records[-1]["etag"] == fs.info("versions/a.nc")["ETag"] != etag
    assert records[-1]["size"] == 28 and records[-1]["last_modified"]
    assert Path(first.path).read_bytes() == b"first version of the file"  # the old one stays


def test_an_s3_read_shorter_than_the_object_metadata_fails_loudly(s3, tmp_path, monkeypatch):
    """The object store announces more bytes than the read returned (an object replaced or cut
    mid-read): the staging fails naming the URL and keeps nothing."""
    import s3fs

    from recipes_core.errors import ChecksumError
    from recipes_core.storage import AccessPolicy, Stager, StagingCache

    _bucket_with("short", b"0123456789")
    real_info = s3fs.S3FileSystem.info
    calls = []

    def announces_more(self, path, **kwargs):
        info = dict(real_info(self, path, **kwargs))
        calls.append(path)
        if len(calls) == 1:  # the stager's look at the metadata, before it reads
            info["size"] += 5
        return info

    monkeypatch.setattr(s3fs.S3FileSystem, "info", announces_more)
    with pytest.raises(ChecksumError) as info:
        Stager(str(tmp_path / "cache"), AccessPolicy()).stage("s3://short/a.nc")
    message = str(info.value)
    assert "s3://short/a.nc" in message and "got 10 bytes" in message and "announces 15" in message
    assert not list(StagingCache(tmp_path / "cache").object_files())
    assert not list((tmp_path / "cache" / "tmp").iterdir())
