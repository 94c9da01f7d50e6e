"""Local sources hashed by the write tasks that read them, not before the first write.

Every source's sha256 goes into ``sources.json`` (and from there into the provenance and the
catalogue). A remote source is hashed while it downloads, for free; a local file has to be
read once more just for its hash, and doing that for every file before the first write task
starts puts a whole extra pass over the archive on the critical path (5 s of an 11 GB bake on
two cores, bench/README.md). So, when nothing needs the hashes up front, staging only checks
that a local file exists and records its size, and the write task that reads a source first
also hashes it, on a thread, while its chunks are being read and compressed.

The hashes are needed up front when a published version could be overwritten: prepare then
compares them with the published ``sources.json`` (see
:func:`recipes_core.pipeline.refuse_changed_sources`), and when the recipe pins a checksum,
which is checked before the file is opened. Both keep hashing at staging.

Each write task records the hashes it computed in ``hashes/task-<index>.json`` beside the
store (so a retried task simply writes its record again, and every engine, local or remote,
can hand them back); :func:`complete_sources` folds them into ``sources.json`` once the job is
done, before the bake is marked complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from recipes_core.errors import TargetError
from recipes_core.plan.pattern import SourceKey
from recipes_core.storage import files
from recipes_core.storage.cache import sha256_file
from recipes_core.storage.stage import StagedSource
from recipes_core.tasks import WriteTask

HASHES_DIR = "hashes"


def hash_owners(tasks: Sequence[WriteTask], pending: Iterable[SourceKey],
                ) -> dict[int, tuple[SourceKey, ...]]:
    """Which task hashes which pending source: the first task (in plan order) reading it.

    A source read by several tasks (a file split across spatial chunks) is hashed once.
    """
    todo = set(pending)
    owned: dict[int, list[SourceKey]] = {}
    for task in tasks:
        for key in task.sources:
            if key in todo:
                todo.discard(key)
                owned.setdefault(task.index, []).append(key)
    if todo:
        raise TargetError(f"{len(todo)} source(s) are read by no write task "
                          f"(first: {sorted(todo)[0]})", where="write tasks",
                          fix="this is a planning bug; please report it with the recipe.")
    return {index: tuple(keys) for index, keys in owned.items()}


def task_record_path(version_dir: str, task_index: int) -> str:
    return files.join(version_dir, HASHES_DIR, f"task-{task_index}.json")


def hash_sources(sources: Mapping[SourceKey, tuple[str, StagedSource]],
                  ) -> list[dict[str, object]]:
    """The sha256 of each source's local path, checked against the size staging saw."""
    records = []
    for key, (path, staged) in sources.items():
        sha256, size = sha256_file(path)
        if size != staged.size:
            raise TargetError(
                f"the source changed while it was being baked ({staged.size} bytes when "
                f"staged, {size} now)", where=staged.url,
                fix="bake again once the file is no longer being written.")
        records.append({"key": list(key), "sha256": sha256, "size": size})
    return records


def write_task_record(version_dir: str, task_index: int,
                      records: list[dict[str, object]]) -> None:
    files.write_json(task_record_path(version_dir, task_index), records, indent=None)


def complete_sources(version_dir: str) -> int:
    """Fill the pending hashes of ``sources.json`` from the tasks' records; return how many.

    A source no record covers (a task record lost with its worker) is hashed here when its
    file is on this machine; otherwise the bake cannot be completed truthfully and stops.
    """
    path = files.join(version_dir, "sources.json")
    records = files.read_json(path)
    if not isinstance(records, list) or all(r.get("sha256") for r in records):
        return 0
    found: dict[tuple[int, ...], str] = {}
    folder = files.join(version_dir, HASHES_DIR)
    for name in files.list_names(folder):
        for entry in files.read_json(files.join(folder, name)) or []:
            found[tuple(entry["key"])] = entry["sha256"]
    filled = 0
    for record in records:
        if record.get("sha256"):
            continue
        sha256 = found.get(tuple(record["key"]))
        if sha256 is None and os.path.isfile(record.get("path") or ""):
            sha256, _ = sha256_file(record["path"])
        if sha256 is None:
            raise TargetError(
                f"no write task recorded the sha256 of {record.get('url')}",
                where=folder, fix="bake again: the sources are hashed by the write tasks.")
        record["sha256"] = sha256
        filled += 1
    files.write_json(path, records, indent=1)
    files.remove_tree(folder)
    return filled
