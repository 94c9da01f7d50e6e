"""Run a command and measure its whole process tree: wall time, peak summed RSS, CPU time.

``/usr/bin/time`` and ``ru_maxrss`` report the largest single process, which hides most of a
multi-process bake (Beam's SDK workers, Dask's nanny and worker processes). Here a thread
samples the process and all its descendants every ``interval`` seconds and keeps the largest
*sum* of their RSS. Shared pages (libraries, copy-on-write) are counted once per process, so
the sum is an upper bound on the memory the tree really needs, which is what an operator
sizing a machine wants to know.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass
class TreeUsage:
    wall: float  # seconds from start to exit, including interpreter start-up and imports
    peak_rss: int  # bytes: the largest sum of RSS over the tree at one sample
    peak_processes: int  # processes in the tree at the peak
    largest_process_rss: int  # bytes: the largest single process (what /usr/bin/time sees)
    cpu_seconds: float  # user + system of the whole tree (reaped descendants included)
    # busy CPU seconds of everything else on the machine meanwhile: the machine is shared
    # (other sessions run tests), so a run with much of it is not comparable
    other_cpu_seconds: float
    steal_seconds: float  # CPU time the hypervisor gave to other machines (a noisy VM)
    samples: int
    returncode: int


class TreeSampler:
    """Samples the summed RSS of a process and its descendants in a background thread."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.peak_processes = 0
        self.largest = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def sample(self) -> int:
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for process in processes:
            try:
                rss = process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue  # exited between the listing and the read
            total += rss
            self.largest = max(self.largest, rss)
        self.samples += 1
        if total > self.peak:
            self.peak, self.peak_processes = total, len(processes)
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_measured(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    interval: float = 0.05,
    timeout: float | None = None,
) -> TreeUsage:
    """Run ``command`` to completion, sampling its process tree; stdout+stderr go to log_path."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before, steal_before = _busy_cpu()
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), cwd=cwd, env=dict(env or os.environ),
                                   stdout=log, stderr=subprocess.STDOUT)
        with TreeSampler(process.pid, interval) as sampler:
            try:
                returncode = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_tree(process.pid)
                returncode = process.wait()
        wall = time.perf_counter() - started
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # RUSAGE_CHILDREN covers every descendant that was waited for, recursively; a descendant
    # that was never reaped (rare) is missing from the CPU time.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    busy_after, steal_after = _busy_cpu()
    other = max(0.0, busy_after - busy_before - cpu)
    return TreeUsage(wall=wall, peak_rss=sampler.peak, peak_processes=sampler.peak_processes,
                     largest_process_rss=sampler.largest, cpu_seconds=cpu,
                     other_cpu_seconds=other, steal_seconds=steal_after - steal_before,
                     samples=sampler.samples, returncode=returncode)


def _busy_cpu() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine since boot, all cores."""
    times = psutil.cpu_times()
    steal = getattr(times, "steal", 0.0)
    return sum(times) - times.idle - getattr(times, "iowait", 0.0) - steal, steal


def _kill_tree(pid: int) -> None:
    """Kill a run that overran its timeout, children first (only this run's own processes)."""
    try:
        root = psutil.Process(pid)
        for child in root.children(recursive=True):
            child.kill()
        root.kill()
    except psutil.NoSuchProcess:
        pass
