"""Live progress of a bake on engines that run on this machine.

Beam's direct and Dask runners report metrics only when a job ends, so each DoFn also keeps
running counts in a small JSON file of its own under a progress folder; the driver sums those
files while the pipeline runs. Engines elsewhere (Dataflow, a Flink cluster) get no folder and
report their job state instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FLUSH_SECONDS = 0.5
TOTALS_PREFIX = "totals-"


class ProgressSink:
    """Worker side: cumulative counts, flushed to ``<directory>/<unique>.json`` now and then."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self._counts: dict[str, int] = {}
        self._name: str | None = None
        self._flushed = 0.0

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory}  # every unpickled copy counts on its own

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["directory"])  # type: ignore[misc]

    def add(self, **counts: int) -> None:
        if self.directory is None:
            return
        for name, value in counts.items():
            self._counts[name] = self._counts.get(name, 0) + int(value)
        if time.monotonic() - self._flushed > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.directory is None or not self._counts:
            return
        if self._name is None:
            self._name = f"{os.getpid()}-{uuid.uuid4().hex}.json"
        _write_json(os.path.join(self.directory, self._name), self._counts)
        self._flushed = time.monotonic()


def write_totals(directory: str | None, **totals: int) -> None:
    """Record what 100% means once it is known (the number of chunks, after Prepare)."""
    if directory is not None:
        # One file per writer (the driver knows the sources, Prepare the chunks).
        _write_json(os.path.join(directory, TOTALS_PREFIX + "-".join(sorted(totals)) + ".json"),
                    totals)


def _write_json(path: str, payload: dict[str, int]) -> None:
    with contextlib.suppress(OSError):  # progress is a nicety: never fail a bake over it
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(payload, f)
        os.replace(tmp, path)


@dataclass
class Snapshot:
    """Counts summed over every worker, with the totals known so far."""

    counts: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def get(self, name: str) -> int:
        return self.counts.get(name, 0)

    @property
    def chunks_done(self) -> int:
        """Chunks written to the target and, in a staged rechunk, to its intermediate stores
        (the total counts both)."""
        return self.get("chunks_written") + self.get("rechunk_chunks_written")

    @property
    def bytes_done(self) -> int:
        return self.get("bytes_written") + self.get("rechunk_bytes_written")

    @property
    def phase(self) -> str:
        sources = self.totals.get("sources", 0)
        if self.get("sources_staged") < sources:
            return "fetching"
        chunks = self.totals.get("chunks")
        if chunks is None or self.chunks_done < chunks:
            return "writing"
        return "finalising"


def read_snapshot(directory: str, started: float) -> Snapshot:
    snapshot = Snapshot(elapsed=time.monotonic() - started)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return snapshot
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                payload = json.load(f)
        except (OSError, json.JSONDecodeError):
            continue  # a file being replaced right now; the next poll reads it
        if name.startswith(TOTALS_PREFIX):
            snapshot.totals.update(payload)
            continue
        for key, value in payload.items():
            snapshot.counts[key] = snapshot.counts.get(key, 0) + int(value)
    return snapshot


class ProgressMonitor:
    """Driver side: polls the progress folder in a thread and calls ``callback``."""

    def __init__(self, directory: str, callback: Callable[[Snapshot], None],
                 sources: int, interval: float = 0.25) -> None:
        self.directory = directory
        self.callback = callback
        self.interval = interval
        self.started = time.monotonic()
        write_totals(directory, sources=sources)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="arco-progress", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.callback(read_snapshot(self.directory, self.started))

    def __enter__(self) -> ProgressMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def final(self) -> Snapshot:
        snapshot = read_snapshot(self.directory, self.started)
        self.callback(snapshot)
        return snapshot
