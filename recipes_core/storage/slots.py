"""Per-host connection slots, shared by the threads and processes of one machine.

``policy.max_connections_per_host`` must hold for a whole bake, and a multi-process runner
(Beam's direct runner in ``multi_processing`` mode, local Dask workers) stages from several
processes at once. Each host therefore has ``limit`` slot files under ``<cache>/locks/``; a
request holds an exclusive ``flock`` on one of them while it runs. Every process that stages
into the same cache shares the files, so together they never have more than ``limit`` requests
open to one host. The kernel drops a lock when its process dies, so a killed worker cannot leave
a slot taken.

A process-wide semaphore per host comes first, as the fast path: the threads of one process
queue on it without touching the disk, and at most ``limit`` of them try the files at a time.

Workers on *different machines* each have their own cache and so their own limit: a bake on
N machines may open N x limit connections to one host. Where flock is unavailable (some network
filesystems) the limit falls back to one process's semaphore, with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from recipes_core.errors import SourceError
from recipes_core.redact import redact_url

try:
    import fcntl
except ImportError:  # not POSIX: only the in-process semaphore bounds connections
    fcntl = None  # type: ignore[assignment]

__all__ = ["SLOT_WAIT_SECONDS", "host_key", "host_slot"]

log = logging.getLogger(__name__)
# A slot is held for one whole request, body included, so a wait may be as long as other
# workers' downloads; past this bound something is stuck, and the bake says so.
SLOT_WAIT_SECONDS = 1800.0
_POLL_MIN, _POLL_MAX = 0.005, 0.1

_SEMAPHORES: dict[tuple[str, str, int, int], threading.BoundedSemaphore] = {}
_SEMAPHORES_LOCK = threading.Lock()
_warned_dirs: set[str] = set()


def host_key(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL: what one connection limit covers."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def _semaphore(key: tuple[str, str, int], limit: int) -> threading.BoundedSemaphore:
    with _SEMAPHORES_LOCK:
        semaphore = _SEMAPHORES.get((*key, limit))
        if semaphore is None:
            semaphore = _SEMAPHORES[(*key, limit)] = threading.BoundedSemaphore(limit)
        return semaphore


def _slot_paths(lock_dir: str, key: tuple[str, str, int], limit: int) -> list[str]:
    scheme, host, port = key
    # Readable for an operator looking at the folder, hashed so any host makes a safe name.
    shown = re.sub(r"[^a-z0-9.-]", "_", host)[:80] or "_"
    digest = hashlib.sha256(f"{scheme}://{host}:{port}".encode()).hexdigest()[:12]
    return [os.path.join(lock_dir, f"{shown}-{port}-{digest}.{i}.lock") for i in range(limit)]


def _try_slots(paths: list[str]) -> int | None:
    """An open descriptor holding the lock of one free slot file, or None if all are taken."""
    start = random.randrange(len(paths))  # spread the processes over the slots
    for i in range(len(paths)):
        fd = os.open(paths[(start + i) % len(paths)], os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        return fd
    return None


def _take_file_slot(lock_dir: str, key: tuple[str, str, int], limit: int, url: str,
                    max_wait: float) -> int | None:
    try:
        os.makedirs(lock_dir, exist_ok=True)
        paths = _slot_paths(lock_dir, key, limit)
        deadline = time.monotonic() + max_wait
        pause = _POLL_MIN
        while True:
            fd = _try_slots(paths)
            if fd is not None:
                return fd
            if time.monotonic() >= deadline:
                raise SourceError(
                    f"waited {max_wait:.0f} s for one of the {limit} connection slots to "
                    f"{key[1]}:{key[2]} (lock files in {lock_dir}); other processes staging "
                    "into this cache hold them all",
                    where=redact_url(url),
                    fix="check for a stuck bake using the same cache, or raise "
                    "access.max_connections_per_host in the runner profile.",
                )
            time.sleep(pause * (0.5 + random.random()))
            pause = min(_POLL_MAX, pause * 2)
    except OSError as err:  # no flock here (ENOLCK, EOPNOTSUPP) or an unwritable folder
        if lock_dir not in _warned_dirs:
            _warned_dirs.add(lock_dir)
            log.warning("per-host connection limits hold per process only: cannot lock files "
                        "in %s (%s)", lock_dir, err)
        return None


@contextlib.contextmanager
def host_slot(url: str, limit: int, lock_dir: str | None = None, *,
              max_wait: float = SLOT_WAIT_SECONDS) -> Iterator[None]:
    """Hold one of ``limit`` connection slots to ``url``'s host for the ``with`` block.

    Without ``lock_dir`` the slots are this process's only; with it they are shared with every
    process using the same folder (see the module docstring).
    """
    key = host_key(url)
    with _semaphore(key, limit):
        fd = None
        if lock_dir is not None and fcntl is not None:
            fd = _take_file_slot(lock_dir, key, limit, url, max_wait)
        try:
            yield
        finally:
            if fd is not None:
                os.close(fd)  # closing the descriptor releases its flock
