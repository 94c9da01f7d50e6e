"""Sources on an S3-compatible object store (moto's server on loopback)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

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
