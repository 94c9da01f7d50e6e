"""Local sources hashed by their write tasks: every sha256 recorded, each file hashed once.

A fresh bake stages local files without reading them and lets the first write task that
reads a file hash it (recipes_core/source_hashes.py); a re-bake of a published version hashes
at staging, because prepare compares the hashes with the published record before writing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from recipes_core.errors import TargetError
from recipes_core.source_hashes import (
    HASHES_DIR,
    complete_sources,
    hash_owners,
    hash_sources,
    write_task_record,
)
from recipes_core.storage import StagedSource
from recipes_core.storage.cache import MAPPED_HASH_BYTES, sha256_file
from recipes_core.tasks import WriteTask
from recipes_core.testing import make_daily_archive
from tests.conftest import recipe_dict


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _task(index: int, *sources: tuple[int, ...]) -> WriteTask:
    return WriteTask(index=index, box=(), variables=("tas",), sources=tuple(sources))


def test_each_pending_source_is_hashed_by_the_first_task_reading_it() -> None:
    tasks = [_task(0, (0,), (1,)), _task(1, (1,), (2,)), _task(2, (2,), (3,))]
    owners = hash_owners(tasks, [(1,), (2,), (3,)])
    assert owners == {0: ((1,),), 1: ((2,),), 2: ((3,),)}
    with pytest.raises(TargetError, match="read by no write task"):
        hash_owners(tasks, [(9,)])


def test_a_file_that_grew_since_staging_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.nc"
    path.write_bytes(b"12345")
    staged = StagedSource(url="file://a.nc", path=str(path), size=5, sha256="")
    [record] = hash_sources({(0,): (str(path), staged)})
    assert record == {"key": [0], "sha256": _sha256(path), "size": 5}
    with pytest.raises(TargetError, match="changed while it was being baked") as caught:
        hash_sources({(0,): (str(path), dataclasses.replace(staged, size=4))})
    assert caught.value.where == "file://a.nc"


def test_complete_sources_fills_every_pending_hash(tmp_path: Path) -> None:
    files = []
    for i in range(3):
        files.append(tmp_path / f"s{i}.nc")
        files[-1].write_bytes(bytes([i]) * (100 + i))
    version = tmp_path / "v1"
    version.mkdir()
    records = [{"key": [0], "url": "s0", "path": str(files[0]), "sha256": _sha256(files[0])},
               {"key": [1], "url": "s1", "path": str(files[1]), "sha256": ""},
               {"key": [2], "url": "s2", "path": str(files[2]), "sha256": ""}]
    (version / "sources.json").write_text(json.dumps(records))
    # Task 5 hashed source 1; no record covers source 2 (its file is here: hashed now).
    write_task_record(str(version), 5, [{"key": [1], "sha256": _sha256(files[1]), "size": 101}])
    assert complete_sources(str(version)) == 2
    done = json.loads((version / "sources.json").read_text())
    assert [r["sha256"] for r in done] == [_sha256(f) for f in files]
    assert not (version / HASHES_DIR).exists()
    assert complete_sources(str(version)) == 0  # nothing left to do

    records[2]["path"] = str(tmp_path / "gone.nc")
    (version / "sources.json").write_text(json.dumps(records[1:]))
    write_task_record(str(version), 5, [{"key": [1], "sha256": _sha256(files[1]), "size": 101}])
    with pytest.raises(TargetError, match="no write task recorded the sha256 of s2"):
        complete_sources(str(version))


def test_fresh_bake_records_every_sha256_and_rebake_keeps_them(tmp_path: Path, write_recipe,
                                                               bake_file) -> None:
    make_daily_archive(tmp_path / "src", days=12, steps_per_file=1, variables=("tas", "pr"))
    recipe = recipe_dict(str(tmp_path / "src" / "demo_{time:%Y%m%d}.nc"),
                         {"time": {"start": "2020-01-01", "end": "2020-01-12", "freq": "D"}},
                         target={"chunks": {"time": 5}})
    path = write_recipe(recipe)
    result = bake_file(path)
    version = Path(result.store).parent
    sources = json.loads((version / "sources.json").read_text())
    assert len(sources) == 12
    for record in sources:
        assert record["sha256"] == _sha256(Path(record["path"])), record["url"]
    assert not (version / HASHES_DIR).exists()

    # A re-bake of the published version hashes at staging (to compare with this record)
    # and records the same hashes.
    again = bake_file(path)
    assert again.version == result.version
    rebaked = json.loads((version / "sources.json").read_text())
    assert [(r["key"], r["sha256"]) for r in rebaked] == [(r["key"], r["sha256"])
                                                         for r in sources]


@pytest.mark.parametrize("size", [0, 1000, MAPPED_HASH_BYTES - 1, MAPPED_HASH_BYTES,
                                  3 * MAPPED_HASH_BYTES + 17])
def test_a_file_hashes_the_same_read_or_mapped(tmp_path: Path, size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype="u1").tobytes()
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert sha256_file(path) == (hashlib.sha256(data).hexdigest(), size)
    assert sha256_file(str(path)) == sha256_file(path)
