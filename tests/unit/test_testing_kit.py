"""Tests of the shipped test kit: synthetic archives and the loopback HTTP server.

Other tests trust these tools to be realistic (per-file time units, fill values, descending
latitude) and well-behaved (exact bytes, ranges, validators), so their properties are pinned here.
Archives are kept to a handful of days because ``open_mfdataset`` costs ~30 ms per file.
"""

from __future__ import annotations

import http.client
import os
import pathlib
import socket
import urllib.error
import urllib.request

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from recipes_core.testing import (
    ArchiveServer,
    archive_oracle,
    make_daily_archive,
    make_regridded_copy,
)

# -- archive ------------------------------------------------------------------------------------


def test_one_file_per_day_named_by_date(tmp_path: pathlib.Path) -> None:
    paths = make_daily_archive(tmp_path / "a", days=5)
    assert [p.name for p in paths] == [f"demo_2020010{d}.nc" for d in range(1, 6)]
    assert all(p.is_file() for p in paths)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [p.name for p in paths]


def test_steps_per_file_names_by_first_step_and_last_file_is_short(tmp_path: pathlib.Path) -> None:
    paths = make_daily_archive(tmp_path, days=7, steps_per_file=3, filename="x_{time:%Y-%m-%d}.nc")
    assert [p.name for p in paths] == ["x_2020-01-01.nc", "x_2020-01-04.nc", "x_2020-01-07.nc"]
    steps = []
    for p in paths:
        with netCDF4.Dataset(p) as nc:
            steps.append(len(nc.dimensions["time"]))
    assert steps == [3, 3, 1]


def test_files_look_like_a_real_cf_product(tmp_path: pathlib.Path) -> None:
    paths = make_daily_archive(tmp_path, days=3, steps_per_file=2)
    units = []
    for p in paths:
        with netCDF4.Dataset(p) as nc:
            assert nc.data_model == "NETCDF4"
            assert nc.Conventions == "CF-1.8"
            for attr in ("title", "institution", "source", "history"):
                assert nc.getncattr(attr)
            assert nc.dimensions["time"].isunlimited()
            time = nc.variables["time"]
            assert time.dtype == np.float64
            assert time.calendar == "standard"
            units.append(time.units)

            lat, lon = nc.variables["lat"], nc.variables["lon"]
            assert lat.units == "degrees_north" and lat.standard_name == "latitude"
            assert lat.axis == "Y" and lon.axis == "X" and lon.units == "degrees_east"
            assert lat[0] == 85.0 and lat[-1] == -85.0 and np.all(np.diff(lat[:]) < 0)
            assert lon[0] == 0.0 and lon[-1] == 350.0

            tas, pr = nc.variables["tas"], nc.variables["pr"]
            assert tas.dtype == np.float32 and pr.dtype == np.float32
            assert tas._FillValue == np.float32(1e20) and pr._FillValue == np.float32(-9999.0)
            assert (tas.standard_name, tas.units) == ("air_temperature", "K")
            assert (pr.standard_name, pr.units) == ("precipitation_flux", "kg m-2 s-1")
            assert tas.long_name and pr.long_name
            assert tas.filters()["zlib"] and pr.filters()["zlib"]
            # Raw bytes on disk hold the fill value in the masked cells.
            tas.set_auto_mask(False)
            raw = tas[:]
            assert np.any(raw == np.float32(1e20))
    # The trap on purpose: each file counts time from its own first day.
    assert units == [
        "days since 2020-01-01 00:00:00",
        "days since 2020-01-03 00:00:00",
    ]


def test_oracle_has_every_day_with_decoded_time_and_float32_data(tmp_path: pathlib.Path) -> None:
    ds = archive_oracle(make_daily_archive(tmp_path, days=6, start="2021-12-29"))
    assert ds.sizes == {"time": 6, "lat": 18, "lon": 36}
    assert ds.time.dtype.kind == "M"
    assert ds.indexes["time"].is_monotonic_increasing
    expected = pd.date_range("2021-12-29", periods=6, freq="D")
    np.testing.assert_array_equal(ds.time.values, expected.values.astype(ds.time.dtype))
    assert ds.tas.dtype == np.float32 and ds.pr.dtype == np.float32
    # Fill cells decode to NaN; real cells are physically plausible.
    assert ds.tas.isnull().any() and not ds.tas.isnull().all()
    assert float(ds.tas.min()) > 240 and float(ds.tas.max()) < 310
    assert float(ds.pr.min()) > 0 and float(ds.pr.max()) < 1e-3


def test_same_day_same_values_however_the_archive_is_split(tmp_path: pathlib.Path) -> None:
    one = archive_oracle(make_daily_archive(tmp_path / "one", days=10, steps_per_file=1))
    five = archive_oracle(make_daily_archive(tmp_path / "five", days=10, steps_per_file=5))
    xr.testing.assert_identical(one, five)
    # Values depend on the absolute date, not on the position in the archive.
    late = archive_oracle(make_daily_archive(tmp_path / "late", days=3, start="2020-01-04"))
    xr.testing.assert_identical(one.isel(time=slice(3, 6)), late)
    # ...and on the seed.
    other = archive_oracle(make_daily_archive(tmp_path / "seed", days=1, seed=1))
    assert not np.array_equal(other.tas.values, one.tas.isel(time=[0]).values, equal_nan=True)


def test_split_by_variable_writes_one_variable_per_file(tmp_path: pathlib.Path) -> None:
    paths = make_daily_archive(tmp_path / "s", days=2, split_by_variable=True)
    assert [p.name for p in paths] == [
        "tas_20200101.nc",
        "pr_20200101.nc",
        "tas_20200102.nc",
        "pr_20200102.nc",
    ]
    for p in paths:
        with netCDF4.Dataset(p) as nc:
            data_vars = set(nc.variables) - {"time", "lat", "lon"}
            assert data_vars == {p.name.split("_")[0]}
    together = archive_oracle(make_daily_archive(tmp_path / "t", days=2))
    xr.testing.assert_identical(archive_oracle(paths)[["tas", "pr"]], together[["tas", "pr"]])


def test_netcdf3_archive_has_the_same_values(tmp_path: pathlib.Path) -> None:
    paths = make_daily_archive(tmp_path / "n3", days=2, file_format="NETCDF3_64BIT")
    with netCDF4.Dataset(paths[0]) as nc:
        assert nc.data_model == "NETCDF3_64BIT_OFFSET"
    n4 = archive_oracle(make_daily_archive(tmp_path / "n4", days=2))
    xr.testing.assert_identical(archive_oracle(paths), n4)


def test_bad_arguments_are_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="days"):
        make_daily_archive(tmp_path, days=0)
    with pytest.raises(ValueError, match="same name"):
        make_daily_archive(tmp_path, days=2, filename="fixed.nc")
    assert not (tmp_path / "fixed.nc").exists()  # refused before writing anything


def test_regridded_copy_keeps_everything_but_the_grid(tmp_path: pathlib.Path) -> None:
    paths = make_daily_archive(tmp_path / "a", days=3)
    copy = make_regridded_copy(paths[0], tmp_path / "b" / paths[0].name, ny=9, nx=18)
    assert copy == tmp_path / "b" / paths[0].name
    with netCDF4.Dataset(paths[0]) as src, netCDF4.Dataset(copy) as dst:
        assert (len(dst.dimensions["lat"]), len(dst.dimensions["lon"])) == (9, 18)
        assert dst.dimensions["time"].isunlimited()
        assert dst["time"].units == src["time"].units
        assert dst["lat"][0] == 85.0 and dst["lat"][-1] == -85.0
        assert dst["tas"]._FillValue == src["tas"]._FillValue
        assert dst["tas"].filters()["zlib"]
        assert dst.ncattrs() == src.ncattrs()
        assert dst["tas"][:].mask.any()
    # Mixed into the archive it must break the exact join the oracle (and a bake) relies on.
    with pytest.raises(ValueError):
        archive_oracle([copy, *paths[1:]])


# -- HTTP server --------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: pathlib.Path) -> tuple[pathlib.Path, bytes]:
    """A served directory with one binary file, a subdirectory, and a secret just outside."""
    root = tmp_path / "www"
    (root / "sub").mkdir(parents=True)
    payload = np.random.default_rng(0).integers(0, 256, size=200_000, dtype=np.uint8).tobytes()
    (root / "data.bin").write_bytes(payload)
    (root / "sub" / "inner.txt").write_text("inner\n")
    (tmp_path / "secret.txt").write_text("TOP SECRET\n")
    return root, payload


def _raw(
    server: ArchiveServer, method: str, target: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request with the target sent verbatim (urllib would normalise '..' away)."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request(method, target, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_get_head_and_404(served: tuple[pathlib.Path, bytes]) -> None:
    root, payload = served
    with ArchiveServer(root) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{server.url}/data.bin", timeout=5) as resp:
            assert resp.status == 200
            assert resp.read() == payload

        status, headers, body = _raw(server, "HEAD", "/data.bin")
        assert status == 200 and body == b""
        assert headers["Content-Length"] == str(len(payload))
        assert headers["ETag"].startswith('"') and headers["ETag"].endswith('"')
        assert headers["Last-Modified"].endswith("GMT")
        assert headers["Accept-Ranges"] == "bytes"

        status, _, body = _raw(server, "GET", "/missing.nc")
        assert status == 404 and 0 < len(body) < 100
        status, _, body = _raw(server, "GET", "/sub/")  # no directory listings
        assert status == 404 and b"inner" not in body
        assert _raw(server, "GET", "/sub/inner.txt")[2] == b"inner\n"


@pytest.mark.parametrize(
    "target",
    ["/../secret.txt", "/%2e%2e/secret.txt", "/sub/%2E%2E/%2e%2e/secret.txt", "/..%2fsecret.txt"],
)
def test_traversal_is_refused(served: tuple[pathlib.Path, bytes], target: str) -> None:
    with ArchiveServer(served[0]) as server:
        status, _, body = _raw(server, "GET", target)
    assert status in (403, 404)
    assert b"SECRET" not in body


def test_range_requests(served: tuple[pathlib.Path, bytes]) -> None:
    root, payload = served
    size = len(payload)
    with ArchiveServer(root) as server:
        status, headers, body = _raw(server, "GET", "/data.bin", {"Range": "bytes=10-99"})
        assert status == 206 and body == payload[10:100]
        assert headers["Content-Range"] == f"bytes 10-99/{size}"
        assert headers["Content-Length"] == "90"

        status, _, body = _raw(server, "GET", "/data.bin", {"Range": "bytes=-16"})
        assert status == 206 and body == payload[-16:]
        status, _, body = _raw(server, "GET", "/data.bin", {"Range": f"bytes={size - 5}-"})
        assert status == 206 and body == payload[-5:]
        status, headers, _ = _raw(server, "GET", "/data.bin", {"Range": f"bytes={size}-"})
        assert status == 416 and headers["Content-Range"] == f"bytes */{size}"


def test_keep_alive_validators_and_request_log(served: tuple[pathlib.Path, bytes]) -> None:
    root, payload = served
    with ArchiveServer(root) as server:
        host, port = server.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            for _ in range(3):  # one connection, several requests: HTTP/1.1 keep-alive works
                conn.request("GET", "/data.bin")
                resp = conn.getresponse()
                assert resp.read() == payload
            etag = resp.getheader("ETag")
            conn.request("HEAD", "/data.bin")
            conn.getresponse().read()
            conn.request("GET", "/data.bin", headers={"If-None-Match": etag})
            resp = conn.getresponse()
            assert resp.status == 304 and resp.read() == b""
        finally:
            conn.close()
        assert server.count("data.bin") == 4
        assert server.count("/data.bin", method="HEAD") == 1
        assert server.count("data.bin", method=None) == 5
        assert server.count("missing.nc") == 0
        assert server.requests[-1] == ("GET", "/data.bin")

        # A changed file gets a new ETag.
        stat = (root / "data.bin").stat()
        os.utime(root / "data.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert _raw(server, "HEAD", "/data.bin")[1]["ETag"] != etag


def test_quiet_and_stops_cleanly(
    served: tuple[pathlib.Path, bytes], capfd: pytest.CaptureFixture[str]
) -> None:
    server = ArchiveServer(served[0]).start()
    url = server.url
    port = int(url.rsplit(":", 1)[1])
    _raw(server, "GET", "/data.bin")
    _raw(server, "GET", "/nope")
    # An idle keep-alive connection must not keep the server (or its port) alive.
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    thread = server._thread
    server.stop()
    assert thread is not None and not thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/data.bin", timeout=1)
    idle.close()
    server.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = server.url
    assert server.count("data.bin") == 1  # the log survives stop()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_fsspec_reads_a_served_netcdf_file(tmp_path: pathlib.Path) -> None:
    """The real client path: fsspec (HEAD + ranged GETs through aiohttp) opened by h5netcdf."""
    fsspec = pytest.importorskip("fsspec")
    pytest.importorskip("h5netcdf")
    paths = make_daily_archive(tmp_path, days=1)
    with ArchiveServer(tmp_path) as server:
        with (
            fsspec.open(server.url_for(paths[0].name), block_size=4096) as f,
            xr.open_dataset(f, engine="h5netcdf") as remote,
        ):
            remote.load()
        assert server.count(paths[0].name) >= 1
    with xr.open_dataset(paths[0]) as local:
        xr.testing.assert_identical(remote, local.load())
