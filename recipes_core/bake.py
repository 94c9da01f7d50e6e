"""Run a bake: pick the version directory, build the pipeline, run it on an engine.

Layout of a target root (DESIGN §5)::

    <root>/<id>/v<N>/<id>.zarr     the store
    <root>/<id>/v<N>/bake.json     plan hash, status and timings of the bake that wrote it

A re-run of the same plan reuses its version (chunks are rewritten with identical bytes); a
changed plan gets the next version, so earlier bakes stay readable.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recipes_core.errors import TargetError
from recipes_core.plan.plan import Plan
from recipes_core.storage import AccessPolicy, check_url

VERSION_DIR = re.compile(r"^v(\d+)$")


@dataclass
class BakeResult:
    store: str
    version: int
    plan_hash: str
    seconds: float
    bytes_written: int
    sources: int
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float:
        return self.bytes_written / 1e6 / self.seconds if self.seconds else 0.0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_state(version_dir: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(version_dir, "bake.json"), encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_state(version_dir: str, state: dict[str, Any]) -> None:
    os.makedirs(version_dir, exist_ok=True)
    tmp = os.path.join(version_dir, ".bake.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2, sort_keys=True)
    os.replace(tmp, os.path.join(version_dir, "bake.json"))


def choose_version(dataset_dir: str, plan_hash: str) -> tuple[int, bool]:
    """The version to bake into, and whether it already holds a bake of this plan."""
    versions = []
    if os.path.isdir(dataset_dir):
        for name in os.listdir(dataset_dir):
            match = VERSION_DIR.match(name)
            if match:
                versions.append(int(match.group(1)))
    for n in sorted(versions, reverse=True):
        state = read_state(os.path.join(dataset_dir, f"v{n}"))
        if state and state.get("plan_hash") == plan_hash:
            return n, True
    return (max(versions) + 1 if versions else 1), False


def store_path(target_root: str, plan: Plan, version: int) -> str:
    return os.path.join(target_root, plan.id, f"v{version}", f"{plan.id}.zarr")


def bake(
    plan: Plan,
    target_root: str,
    *,
    cache_dir: str | None = None,
    policy: AccessPolicy | None = None,
    pipeline_args: list[str] | None = None,
) -> BakeResult:
    """Bake a plan into ``target_root`` on Beam's direct runner (or the given pipeline args)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from recipes_core.pipeline import Bake, BakeSpec

    policy = policy or AccessPolicy()
    # Refuse disallowed sources before anything is written or fetched (DESIGN §6, promise 6).
    for _key, url in plan.pattern.items():
        check_url(url, policy, resolve=False)
    target_root = os.path.abspath(target_root)
    if os.path.exists(target_root) and not os.path.isdir(target_root):
        raise TargetError(
            "the target is not a directory", where=target_root, fix="pass a directory to --target."
        )
    dataset_dir = os.path.join(target_root, plan.id)
    plan_hash = plan.hash
    version, existing = choose_version(dataset_dir, plan_hash)
    version_dir = os.path.join(dataset_dir, f"v{version}")
    store = store_path(target_root, plan, version)
    cache_dir = os.path.abspath(cache_dir or os.path.join(target_root, ".cache"))
    state = {
        "id": plan.id,
        "version": version,
        "plan_hash": plan_hash,
        "status": "running",
        "started": _now(),
        "store": os.path.basename(store),
        "pruned": plan.pruned,
    }
    write_state(version_dir, state)
    spec = BakeSpec(plan=plan, store=store, cache_dir=cache_dir, policy=policy)
    args = pipeline_args or ["--runner=DirectRunner", "--direct_num_workers=1"]
    started = time.monotonic()
    try:
        pipeline = beam.Pipeline(options=PipelineOptions(args))
        _ = pipeline | "Bake" >> Bake(spec)
        result = pipeline.run()
        result.wait_until_finish()
    except BaseException:
        state.update(status="failed", ended=_now())
        write_state(version_dir, state)
        raise
    seconds = time.monotonic() - started
    counters = _counters(result)
    state.update(
        status="complete",
        ended=_now(),
        seconds=round(seconds, 3),
        counters=counters,
        reused_version=existing,
    )
    write_state(version_dir, state)
    return BakeResult(
        store=store,
        version=version,
        plan_hash=plan_hash,
        seconds=seconds,
        bytes_written=counters.get("bytes_written", 0),
        sources=plan.nsources,
        counters=counters,
    )


def _counters(result: Any) -> dict[str, int]:
    from apache_beam.metrics.metric import MetricsFilter

    out: dict[str, int] = {}
    try:
        metrics = result.metrics().query(MetricsFilter().with_namespace("arco"))
    except Exception:  # some runners do not report metrics; counts are a nicety
        return out
    for counter in metrics.get("counters", []):
        value = counter.committed if counter.committed is not None else counter.attempted
        out[counter.key.metric.name] = out.get(counter.key.metric.name, 0) + int(value or 0)
    return out
