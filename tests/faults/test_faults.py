"""Every injected network fault either heals (the bake equals xarray's answer) or fails loudly.

A loud failure names the source URL, writes no chunk from bad bytes, keeps no cache object of
the bad download and leaves no temp file behind (DESIGN §6, promise 5).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import xarray as xr
import yaml

from recipes_core.errors import ChecksumError, SourceError, SourceMissingError
from recipes_core.storage import AccessPolicy, Stager, StagingCache
from recipes_core.testing import archive_oracle, make_daily_archive
from recipes_core.testing.faults import (
    Delay,
    FaultServer,
    Redirect,
    ResetMidBody,
    StallMidBody,
    Status,
    TruncateBody,
)
from tests.conftest import recipe_dict

DAYS = 4
FAST = {"allow_private_hosts": True, "allow_http": True, "backoff_base": 0.01, "timeout": 2.0,
        "max_retry_seconds": 10.0}
BAD = "demo_20200102.nc"


@pytest.fixture
def archive(tmp_path: Path) -> list[Path]:
    return make_daily_archive(tmp_path / "archive", days=DAYS, ny=6, nx=12)


@pytest.fixture
def server(archive: list[Path]):
    with FaultServer(archive[0].parent) as running:
        yield running


@pytest.fixture
def recipe(server: FaultServer, write_recipe) -> Path:
    return write_recipe(recipe_dict(
        server.url + "/demo_{time:%Y%m%d}.nc",
        {"time": {"start": "2020-01-01", "end": f"2020-01-0{DAYS}", "freq": "D"}},
        target={"chunks": {"time": 2}},
    ))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_recovered(result, files: list[Path], tmp_path: Path) -> None:
    xr.testing.assert_identical(xr.open_zarr(result.store).load(), archive_oracle(files))
    cache = StagingCache(tmp_path / "cache")
    assert {name for name, _ in cache.object_files()} == {_sha(f) for f in files}
    assert not list((tmp_path / "cache" / "tmp").iterdir())


def _assert_failed_cleanly(error: Exception, server: FaultServer, files: list[Path],
                           tmp_path: Path) -> None:
    assert f"{server.url}/{BAD}" in str(error)
    store = tmp_path / "target" / "test-recipe" / "v1" / "test-recipe.zarr"
    chunks = [p for var in ("tas", "pr") for p in (store / var).rglob("*")
              if p.is_file() and p.name != "zarr.json"]
    assert chunks == [], "no chunk may be written from a bad or missing source"
    objects = {name for name, _ in StagingCache(tmp_path / "cache").object_files()}
    assert _sha(files[1]) not in objects and objects <= {_sha(f) for f in files}
    tmp = tmp_path / "cache" / "tmp"
    assert not tmp.exists() or not list(tmp.iterdir()), "temp files left behind"


RECOVERABLE = {
    "503-then-200": (Status(503), 2),
    "429-retry-after-seconds": (Status(429, retry_after="0"), 1),
    "503-retry-after-http-date": (Status(503, retry_after="Thu, 01 Jan 1970 00:00:00 GMT"), 1),
    "reset-mid-body": (ResetMidBody(after=3000), 2),
    "truncated-body": (TruncateBody(after=3000), 1),
    "stall-past-read-timeout": (StallMidBody(after=3000, seconds=0.8), 1),
}


@pytest.mark.parametrize("name", list(RECOVERABLE))
def test_each_fault_heals_in_the_stager(archive, server, tmp_path, name):
    """Fast, one fault at a time: the retried download is whole and the cache is clean."""
    fault, times = RECOVERABLE[name]
    server.add(BAD, fault, times=times)
    stager = Stager(str(tmp_path / "cache"), AccessPolicy(**{**FAST, "timeout": 0.3}))
    staged = stager.stage(f"{server.url}/{BAD}")
    assert staged.sha256 == _sha(archive[1]) and staged.size == archive[1].stat().st_size
    assert server.count(BAD) == times + 1
    assert not list((tmp_path / "cache" / "tmp").iterdir())


def test_a_bake_through_every_fault_equals_xarray(tmp_path, bake_file, write_recipe):
    """End to end: each file meets another fault, on a slow server; the bake still equals the
    plain-xarray answer, and the cache holds exactly the good bytes."""
    names = [*RECOVERABLE, "redirect"]
    files = make_daily_archive(tmp_path / "archive", days=len(names), ny=6, nx=12)
    (tmp_path / "archive" / "moved").mkdir()
    with FaultServer(tmp_path / "archive") as server:
        for name, path in zip(names, files, strict=True):
            if name == "redirect":
                (tmp_path / "archive" / "moved" / "copy.nc").write_bytes(path.read_bytes())
                server.add(path.name, Redirect("/moved/copy.nc"), times=None)
            else:
                fault, times = RECOVERABLE[name]
                server.add(path.name, fault, times=times)
        server.add(".nc", Delay(0.05), times=None)  # slow on every request, never failing
        recipe = write_recipe(recipe_dict(
            server.url + "/demo_{time:%Y%m%d}.nc",
            {"time": {"start": "2020-01-01", "end": f"2020-01-0{len(names)}", "freq": "D"}},
            target={"chunks": {"time": 2}},
        ))
        result = bake_file(recipe, **{**FAST, "timeout": 0.3})
        for name, path in zip(names, files, strict=True):
            expected = 1 if name == "redirect" else RECOVERABLE[name][1] + 1
            assert server.count(path.name) == expected, name
    _assert_recovered(result, files, tmp_path)


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        (Status(503), SourceError, "giving up after 3 attempts: HTTP 503"),
        (ResetMidBody(after=3000), SourceError, "the connection was reset"),
        (TruncateBody(after=3000), ChecksumError, "broke off after"),
        (StallMidBody(after=3000, seconds=0.6), SourceError, "read timeout"),
    ],
    ids=["503-forever", "reset-forever", "truncated-forever", "stall-forever"],
)
def test_persistent_fault_fails_loudly(archive, server, recipe, bake_file, tmp_path, fault,
                                       error, words):
    server.add(BAD, fault, times=None)
    with pytest.raises(error) as info:
        bake_file(recipe, **{**FAST, "max_retries": 2, "timeout": 0.3})
    assert words in str(info.value)
    assert server.count(BAD) == 3  # one try and two retries, no more
    _assert_failed_cleanly(info.value, server, archive, tmp_path)


@pytest.mark.parametrize(("status", "error"), [(401, SourceError), (403, SourceError),
                                               (404, SourceMissingError)])
def test_401_403_404_are_never_retried(archive, server, recipe, bake_file, tmp_path, status,
                                       error):
    server.add(BAD, Status(status), times=None)
    with pytest.raises(error) as info:
        bake_file(recipe, **FAST)
    assert f"HTTP {status}" in str(info.value)
    assert server.count(BAD) == 1
    _assert_failed_cleanly(info.value, server, archive, tmp_path)


def test_retry_after_beyond_the_time_bound_gives_up_at_once(archive, server, recipe,
                                                            bake_file, tmp_path):
    server.add(BAD, Status(503, retry_after="3600"), times=None)
    with pytest.raises(SourceError, match="asks to retry after 3600 s, beyond the retry bound"):
        bake_file(recipe, **FAST)
    assert server.count(BAD) == 1


def test_pin_mismatch_fails_naming_the_url(archive, server, write_recipe, bake_file, tmp_path):
    pins = {f.name: _sha(f) for f in archive}
    pins[BAD] = "0" * 64
    recipe = recipe_dict(server.url + "/demo_{time:%Y%m%d}.nc",
                         {"time": {"start": "2020-01-01", "end": f"2020-01-0{DAYS}",
                                   "freq": "D"}})
    recipe["source"]["sha256"] = pins
    path = write_recipe(recipe)
    with pytest.raises(ChecksumError, match="sha256 mismatch: the recipe pins 0000") as info:
        bake_file(path, **FAST)
    _assert_failed_cleanly(info.value, server, archive, tmp_path)


def test_pins_from_a_manifest_beside_the_recipe(archive, server, tmp_path, bake_file):
    folder = tmp_path / "recipe"
    folder.mkdir()
    lines = [f"{_sha(f)}  {f.name}" for f in archive]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    recipe = recipe_dict(server.url + "/demo_{time:%Y%m%d}.nc",
                         {"time": {"start": "2020-01-01", "end": f"2020-01-0{DAYS}",
                                   "freq": "D"}})
    recipe["source"]["sha256_manifest"] = "SHA256SUMS"
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = bake_file(folder / "recipe.yaml", **FAST)
    _assert_recovered(result, archive, tmp_path)
    # A changed line is caught before anything from that file is baked.
    lines[1] = f"{'1' * 64}  {BAD}"
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    with pytest.raises(ChecksumError, match="pins 1111"):
        bake_file(folder / "recipe.yaml", target=tmp_path / "target2", **FAST)


def _bake_on(engine: str, recipe: Path, tmp_path: Path):
    """A bake on the direct runner, or on Dask (where prepare() runs in the driver)."""
    from recipes_core.bake import bake
    from recipes_core.plan import compile_recipe
    from recipes_core.recipe_io import load_recipe
    from recipes_core.runners.profile import RunnerProfile

    settings = {"dask": {"scheduler": "local", "n_workers": 1}} if engine == "dask" else {}
    profile = RunnerProfile.model_validate({"name": engine, "engine": engine, **settings})
    plan = compile_recipe(load_recipe(recipe)[0], recipe)
    return bake(plan, str(tmp_path / "target"), cache_dir=str(tmp_path / "cache"),
                policy=AccessPolicy(allow_local=True, **FAST), profile=profile)


@pytest.mark.parametrize("engine", ["direct", "dask"])
def test_changed_upstream_file_is_a_new_version(archive, server, recipe, tmp_path, engine):
    first = _bake_on(engine, recipe, tmp_path)
    v1 = Path(first.store).parent

    def published(folder: Path) -> dict[Path, bytes]:
        # Everything but bake.json (compared below) and the Dask driver's survey hand-off,
        # which is scratch space rewritten by every bake of the plan.
        return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*")
                if p.is_file() and p.name not in ("bake.json", "survey.pickle")}

    kept = published(v1)
    first_state = json.loads((v1 / "bake.json").read_text())
    (tmp_path / "original").mkdir()
    originals = [Path(shutil.copy(p, tmp_path / "original")) for p in archive]
    old_sha = _sha(archive[1])
    # The provider re-publishes one day with corrected values (another seed), new ETag.
    fixed = make_daily_archive(tmp_path / "fixed", start="2020-01-02", days=1, ny=6, nx=12,
                               seed=7)[0]
    server.change_file(BAD, fixed.read_bytes())
    new_sha = _sha(archive[1])
    assert new_sha != old_sha
    second = _bake_on(engine, recipe, tmp_path)
    # The same plan over other bytes: a new version; v1 stays exactly as it was published.
    assert second.version == first.version + 1 == 2
    v2 = Path(second.store).parent
    assert v2 == v1.parent / "v2"
    assert published(v1) == kept
    assert json.loads((v1 / "bake.json").read_text()) == first_state
    assert not (v1 / "sources-changed.json").exists()
    xr.testing.assert_identical(xr.open_zarr(first.store).load(), archive_oracle(originals))
    state = json.loads((v2 / "bake.json").read_text())
    assert state["status"] == "complete" and state["revises"] == 1

    cache = StagingCache(tmp_path / "cache")
    records = [r for r in cache.fetches() if r["url"].endswith(BAD)]
    assert [r["sha256"] for r in records] == [old_sha, new_sha]
    assert records[0]["etag"] != records[1]["etag"]
    assert cache.object_path(old_sha) != cache.object_path(new_sha)
    assert Path(cache.object_path(old_sha)).exists() and Path(cache.object_path(new_sha)).exists()
    # Unchanged files were reused after a HEAD, not downloaded again.
    assert server.count("demo_20200101.nc") == 1 and server.count(BAD) == 2

    sources = json.loads((v2 / "sources.json").read_text())
    shown = {Path(s["url"]).name: s["sha256"] for s in sources}
    assert shown[BAD] == new_sha
    xr.testing.assert_identical(xr.open_zarr(second.store).load(), archive_oracle(archive))

    # v2's provenance: the changed source and the store are revisions of v1's.
    prov = json.loads((v2 / "provenance.json").read_text())
    revisions = [r for r in prov["wasDerivedFrom"].values()
                 if r.get("prov:type", {}).get("$") == "prov:Revision"]
    by_new = {r["prov:generatedEntity"]: r["prov:usedEntity"] for r in revisions}
    changed = next(i for i, e in prov["entity"].items()
                   if e.get("prov:location", "").endswith(BAD) and i.startswith("arco:"))
    assert prov["entity"][changed]["arco:sha256"] == new_sha
    assert prov["entity"][by_new[changed]]["arco:sha256"] == old_sha
    assert by_new["arco:store"] == "prev:store" and len(by_new) == 2
    assert prov["prefix"]["prev"].endswith(":v1:")
    collection = json.loads((v2.parent / "collection.json").read_text())
    assert any(link["rel"] == "predecessor-version" and link["href"].endswith("v1/collection.json")
               for link in collection["links"])
    # Unchanged sources from now on: the next bake reuses v2.
    assert _bake_on(engine, recipe, tmp_path).version == 2
