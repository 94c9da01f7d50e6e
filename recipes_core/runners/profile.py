"""Runner profiles: which engine runs a bake, where it writes, and what it may read.

A profile belongs to the operator. It owns the target and cache roots (never the recipe), the
engine's options and the source-access policy. Credentials never appear in it: each engine takes
them from the environment or its own mechanisms (ADC for Dataflow, AWS_* for s3, ...).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import pydantic
import yaml
from pydantic import BaseModel, ByteSize, ConfigDict, Field, field_validator, model_validator

from recipes_core.errors import RecipeValidationError, RunnerError
from recipes_core.safe_yaml import format_validation_error, load_yaml_file

PROFILES_DIR = Path(__file__).resolve().with_name("profiles")
Engine = Literal["direct", "dask", "flink", "dataflow"]
Text = Annotated[str, Field(min_length=1, max_length=1024)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_credentials(value: str | None) -> str | None:
    if value and "://" in value:
        parts = urlsplit(value)
        if parts.username or parts.password:
            raise ValueError("credentials do not belong in a profile: remove user:password@ and "
                             "give them to the engine through its environment")
    return value


class AccessSettings(_Strict):
    """The source-access policy for bakes run with this profile."""

    allow_local: bool = False
    allow_http: bool = False  # only https unless the operator trusts a plain-http server
    allow_private_hosts: bool = False
    # host:port (or host) of the operator's own private mirrors, exempt from the refusal of
    # private addresses without opening every private address.
    allowed_hosts: Annotated[list[Annotated[str, Field(max_length=300)]],
                             Field(max_length=256)] = []
    timeout: Annotated[float, Field(gt=0, le=3600)] = 60.0
    connect_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    max_retries: Annotated[int, Field(ge=0, le=20)] = 4
    max_retry_seconds: Annotated[float, Field(gt=0, le=86_400)] = 120.0
    max_connections_per_host: Annotated[int, Field(ge=1, le=1024)] = 4


class DirectSettings(_Strict):
    running_mode: Literal["in_memory", "multi_threading", "multi_processing"] = "in_memory"
    num_workers: Annotated[int, Field(ge=1, le=256)] = 1


class DaskSettings(_Strict):
    # "local", or a scheduler address: tcp://host:8786, tls://host:8786 (TLS files from dask's
    # config, distributed.comm.tls.*), or gateway://... (needs dask-gateway installed).
    scheduler: Text = "local"
    n_workers: Annotated[int, Field(ge=1, le=1024)] = 2
    threads_per_worker: Annotated[int, Field(ge=1, le=64)] = 1
    memory_limit: Text = "4GiB"
    npartitions: Annotated[int, Field(ge=1)] | None = None  # default: from the plan

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, value: str) -> str:
        if value != "local" and not value.startswith(("tcp://", "tls://", "inproc://", "ws://",
                                                      "wss://", "gateway://")):
            raise ValueError("scheduler is 'local' or an address like tcp://host:8786, "
                             "tls://host:8786 or gateway://host:443/<cluster-name>")
        return _no_credentials(value) or value


class FlinkSettings(_Strict):
    flink_master: Text = "localhost:8081"
    flink_version: Literal["1.19", "1.20", "2.0", "2.1", "2.2"] = "1.19"
    parallelism: Annotated[int, Field(ge=1, le=100_000)] = 2
    environment_type: Literal["EXTERNAL", "PROCESS", "DOCKER", "LOOPBACK"] = "EXTERNAL"
    environment_config: Text | None = None
    sdk_container_image: Text | None = None
    flink_job_server_jar: Text | None = None
    # Submit to an already running job service instead (e.g. "embed" for Beam's in-process
    # portable runner, which receives the same job protos Flink would).
    job_endpoint: Text | None = None

    @model_validator(mode="after")
    def _loopback(self) -> FlinkSettings:
        if self.environment_type == "LOOPBACK" and self.job_endpoint is None:
            raise ValueError("environment_type LOOPBACK only works with a job_endpoint "
                             "(e.g. embed): a Flink cluster cannot call back into this process")
        return self


class DataflowSettings(_Strict):
    project: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
    region: Annotated[str, Field(pattern=r"^[a-z]+-[a-z]+[0-9]$")]
    temp_location: Annotated[str, Field(pattern=r"^gs://.+")]
    staging_location: Annotated[str, Field(pattern=r"^gs://.+")] | None = None
    machine_type: Text | None = None
    max_num_workers: Annotated[int, Field(ge=1, le=4000)] | None = None
    sdk_container_image: Text | None = None
    service_account_email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    dry_run: bool = False  # build the job graph without submitting it


class RunnerProfile(_Strict):
    """One runner profile file (``runners/*.yaml``)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    description: Annotated[str, Field(max_length=2000)] = ""
    engine: Engine
    target_root: Text | None = None
    cache_root: Text | None = None
    access: AccessSettings = AccessSettings()
    # The memory bound of one task's chunk buffers: a write task narrows its box along
    # non-concat dimensions until its chunks fit, or the bake rechunks in stages when that
    # would read every file many times (a single chunk larger than this still runs).
    max_task_memory: ByteSize = ByteSize(256 * 1024 * 1024)
    # Threads per worker that encode and store full chunks while the task goes on reading its
    # sources (an eighth of max_task_memory waits for each); 0 writes on the task's own
    # thread: slower, and the least memory. Unset: for blosc-lz4, 2 when each local worker
    # has at least 2 cores to itself, else 1 (1 with no codec); one per core for the slower
    # codecs (zstd, gzip). See recipes_core.writer.auto_write_threads.
    write_threads: Annotated[int, Field(ge=0, le=16)] | None = None
    # What a reader passes to fsspec to reach a store on an object store, published as the
    # Zarr asset's xarray:storage_options (e.g. {"anon": true}, or {"endpoint_url": ...} for
    # an S3-compatible server). Never credentials: readers bring their own.
    catalog_storage_options: Annotated[
        dict[Annotated[str, Field(max_length=100)], str | int | float | bool | None],
        Field(max_length=32)] | None = None
    direct: DirectSettings | None = None
    dask: DaskSettings | None = None
    flink: FlinkSettings | None = None
    dataflow: DataflowSettings | None = None

    _check_roots = field_validator("target_root", "cache_root")(
        classmethod(lambda cls, v: _no_credentials(v)))

    @field_validator("catalog_storage_options")
    @classmethod
    def _no_secret_options(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for name in value or {}:
            if any(w in name.lower() for w in ("key", "secret", "token", "password", "cred")):
                raise ValueError(f"'{name}' looks like a credential, and the catalogue is "
                                 "public: remove it (readers bring their own credentials)")
        return value

    @model_validator(mode="after")
    def _one_engine_section(self) -> RunnerProfile:
        for section in ("direct", "dask", "flink", "dataflow"):
            if section != self.engine and getattr(self, section) is not None:
                raise ValueError(f"the '{section}' section does not apply to engine "
                                 f"'{self.engine}'; remove it or change engine")
        if self.engine == "dataflow" and self.dataflow is None:
            raise ValueError("engine 'dataflow' needs a dataflow section (project, region, "
                             "temp_location)")
        return self

    @property
    def settings(self) -> BaseModel:
        defaults: dict[str, BaseModel] = {"direct": DirectSettings(), "dask": DaskSettings(),
                                          "flink": FlinkSettings()}
        return getattr(self, self.engine) or defaults[self.engine]

    @property
    def runs_here(self) -> bool:
        """Whether the engine runs on this machine (so progress can be shown live)."""
        if self.engine in ("direct", "dask"):
            return True
        return self.engine == "flink" and self.settings.job_endpoint == "embed"  # type: ignore[attr-defined]

    @property
    def spreads_work(self) -> bool:
        """Whether the bake's tasks are worth spreading over workers (Beam's Reshuffle): not
        when one worker in this process runs them all, one after another."""
        return self.local_workers != 1 or self.engine != "direct"

    @property
    def local_workers(self) -> int | None:
        """How many tasks run at once on this machine's cores (worker processes, or SDK
        worker threads of one process); None when the workers run elsewhere (a Dask cluster,
        Flink, Dataflow)."""
        settings = self.settings
        if self.engine == "direct":
            return (1 if settings.running_mode == "in_memory"  # type: ignore[attr-defined]
                    else settings.num_workers)  # type: ignore[attr-defined]
        if self.engine == "dask" and settings.scheduler == "local":  # type: ignore[attr-defined]
            return settings.n_workers * settings.threads_per_worker  # type: ignore[attr-defined]
        return None


def bundled_profiles() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PROFILES_DIR.glob("*.yaml"))}


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values read as YAML scalars, e.g. ``2``, ``true``).

    This is how an operator bakes with a bundled profile changed in one place, e.g.
    ``--set flink.job_endpoint=embed --set flink.environment_type=LOOPBACK``.
    """
    data = dict(data)
    for override in overrides:
        key, sep, raw = override.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(p.isidentifier() for p in parts):
            raise RunnerError(f"--set {override!r} is not of the form section.key=value",
                              fix="write e.g. --set dask.n_workers=4")
        value = yaml.safe_load(raw) if raw.strip() else None
        if isinstance(value, dict | list):
            raise RunnerError(f"--set {override!r}: only single values can be set",
                              fix="set nested keys one by one (section.key=value).")
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[parts[-1]] = value
    return data


def load_profile(name_or_path: str | os.PathLike[str],
                 overrides: Sequence[str] = ()) -> RunnerProfile:
    """Load a bundled profile by name (``dask``) or any profile file by path."""
    text = os.fspath(name_or_path)
    bundled = bundled_profiles()
    if text in bundled:
        path = bundled[text]
    elif os.path.exists(text):
        path = Path(text)
    else:
        raise RunnerError(
            f"no runner profile named '{text}'",
            fix=f"use one of {', '.join(bundled)} (see `arco runners`) or a path to a profile "
            "file.",
        )
    data, source_map = load_yaml_file(path)
    if not isinstance(data, dict):
        raise RunnerError("not a runner profile: the top level must be a mapping",
                          where=str(path))
    data = apply_overrides(data, overrides)
    try:
        return RunnerProfile.model_validate(data)
    except pydantic.ValidationError as exc:
        error = format_validation_error(exc, source_map, filename=str(path), model=RunnerProfile)
        raise RecipeValidationError(
            f"not a valid runner profile ({len(error.problems)} "
            f"problem{'s' if len(error.problems) != 1 else ''})",
            where=str(path), problems=error.problems) from None
