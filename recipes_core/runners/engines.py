"""One plan, several engines: Beam pipeline options and engine lifecycles per profile.

This is the only module that knows Dask, Flink or Dataflow, and it imports each engine lazily
(the rechunker pattern), so a machine with only the direct runner never imports distributed.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from recipes_core.errors import RunnerError
from recipes_core.plan.plan import Plan
from recipes_core.runners.profile import (
    DaskSettings,
    DataflowSettings,
    DirectSettings,
    FlinkSettings,
    RunnerProfile,
)

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
# Loaded by every local Dask worker as it starts (see the module; operators of their own
# cluster can pass it to ``dask worker --preload``).
DASK_WORKER_PRELOAD = "recipes_core.runners.dask_worker"


@dataclass
class EngineSession:
    """Pipeline arguments for one bake, and what to tidy up after it."""

    args: list[str]
    remote: bool = False  # the job runs elsewhere: show its id and state, not live progress
    # Run as two graphs (survey, then write) with the driver preparing the store in between:
    # for engines that recompute side inputs instead of materialising them (Beam's Dask).
    two_phase: bool = False
    dashboard: str | None = None
    # The SDK workers run inside this process (LOOPBACK): the job dies with it.
    loopback: bool = False
    _after: list[Callable[[Any], None]] = field(default_factory=list)

    def finished(self, result: Any) -> None:
        for hook in self._after:
            hook(result)


def direct_args(settings: DirectSettings) -> list[str]:
    # Beam's DirectRunner is a switch: it first converts the pipeline for Prism (a Go binary it
    # downloads) and falls back to the FnApiRunner when that fails, as it does offline. Naming
    # the FnApiRunner skips that detour (0.3-0.5 s a bake) and runs the same engine whether or
    # not the machine can download Prism.
    return ["--runner=FnApiRunner", f"--direct_running_mode={settings.running_mode}",
            f"--direct_num_workers={settings.num_workers}"]


def dask_npartitions(settings: DaskSettings, plan: Plan) -> int:
    """Beam's Dask runner puts ~128 elements in a partition by default, so a 100-source bake
    would run on one worker; spread the sources over every worker thread instead."""
    if settings.npartitions:
        return settings.npartitions
    slots = settings.n_workers * settings.threads_per_worker
    return max(1, min(plan.nsources, 4 * slots))


def flink_args(settings: FlinkSettings) -> list[str]:
    if settings.job_endpoint:
        args = ["--runner=PortableRunner", f"--job_endpoint={settings.job_endpoint}",
                f"--environment_type={settings.environment_type}"]
    else:
        args = ["--runner=FlinkRunner", f"--flink_master={settings.flink_master}",
                f"--flink_version={settings.flink_version}",
                f"--parallelism={settings.parallelism}",
                f"--environment_type={settings.environment_type}"]
        if settings.flink_job_server_jar:
            args.append(f"--flink_job_server_jar={settings.flink_job_server_jar}")
    if settings.environment_config and settings.environment_type != "LOOPBACK":
        args.append(f"--environment_config={settings.environment_config}")
    if settings.sdk_container_image:
        args.append(f"--sdk_container_image={settings.sdk_container_image}")
    return args


def dataflow_args(settings: DataflowSettings, plan: Plan) -> list[str]:
    args = ["--runner=DataflowRunner", f"--project={settings.project}",
            f"--region={settings.region}", f"--temp_location={settings.temp_location}",
            f"--job_name=arco-{plan.id}-{plan.hash[:8]}"]
    optional = {
        "staging_location": settings.staging_location,
        "machine_type": settings.machine_type,
        "max_num_workers": settings.max_num_workers,
        "sdk_container_image": settings.sdk_container_image,
        "service_account_email": settings.service_account_email,
    }
    args += [f"--{k}={v}" for k, v in optional.items() if v is not None]
    if settings.dry_run:
        args.append("--dry_run=True")
    return args


@contextlib.contextmanager
def _local_dask(settings: DaskSettings) -> Iterator[tuple[str, str | None, list[Any]]]:
    """Start a LocalCluster, and close every client before the cluster so nothing reconnects."""
    try:
        from distributed import LocalCluster
    except ImportError:
        raise RunnerError("the dask engine needs distributed",
                          fix="install the extra: pip install 'arco-recipes[dask]'.") from None
    for name in ("distributed", "distributed.worker", "distributed.nanny",
                 "distributed.scheduler", "distributed.core", "tornado"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    import dask

    previous = dask.config.get("scheduler", None)
    # The nannies copy this process's config for the workers they start.
    worker_config = {
        # Worker processes configure logging from dask's config, not from this process.
        "logging.distributed": "error",
        # distributed's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which makes
        # every multi-MB chunk buffer a fresh mmap and page faults: ~1.5x slower writes.
        "distributed.nanny.pre-spawn-environ": {"MALLOC_TRIM_THRESHOLD_": None},
        # The statistical profiler samples every worker thread 100 times a second, holding
        # the GIL, for a dashboard page that this cluster never advertises.
        "distributed.worker.profile.enabled": False,
    }
    clients: list[Any] = []
    with dask.config.set(worker_config):
        cluster = LocalCluster(n_workers=settings.n_workers,
                               threads_per_worker=settings.threads_per_worker,
                               processes=True, memory_limit=settings.memory_limit,
                               # The scheduler serves HTTP even without a dashboard, on 8787
                               # by default; any free port avoids a warning when it is taken.
                               dashboard_address=":0", silence_logs=logging.CRITICAL,
                               preload=[DASK_WORKER_PRELOAD])
    try:
        yield cluster.scheduler_address, None, clients
    finally:
        # Beam's runner makes its own Client; close every client (ours, and any the runner
        # left behind when a bake failed) before the cluster, or they log reconnect errors.
        with contextlib.suppress(Exception):
            from distributed.client import _global_clients

            clients.extend(_global_clients.values())
        _close_clients(clients, previous)
        cluster.close()


def _close_clients(clients: list[Any], previous_scheduler: Any) -> None:
    """Close the Clients Beam's runner made (never their cluster: `Client.close` leaves the
    scheduler and workers running), and give the process its old default scheduler back."""
    for client in clients:
        with contextlib.suppress(Exception):
            client.close()
    clients.clear()
    import dask

    # A Client makes itself dask's default scheduler.
    dask.config.refresh()
    if previous_scheduler is not None:
        dask.config.set(scheduler=previous_scheduler)


@contextlib.contextmanager
def _existing_dask(address: str) -> Iterator[list[Any]]:
    """An operator's cluster: connect only; close the runner's clients, never the cluster.

    TLS settings (``tls://``) come from dask's own configuration (``distributed.comm.tls.*``,
    e.g. DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT), which the runner's ``Client(address)``
    reads; ``gateway://`` addresses need dask-gateway, which registers that protocol.
    """
    try:
        import dask
        import distributed  # noqa: F401
    except ImportError:
        raise RunnerError("the dask engine needs distributed",
                          fix="install the extra: pip install 'arco-recipes[dask]'.") from None
    if address.startswith("gateway://"):
        try:
            import dask_gateway  # noqa: F401  (registers the gateway:// comm)
        except ImportError:
            raise RunnerError(
                f"the scheduler address {address} needs dask-gateway",
                fix="pip install dask-gateway, or use the scheduler's tls:// address with "
                "TLS files in dask's config (see docs/runners.md).") from None
    previous = dask.config.get("scheduler", None)
    clients: list[Any] = []
    try:
        yield clients
    finally:
        _close_clients(clients, previous)


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep Python's cyclic garbage collector off every object alive before the bake.

    By the time a bake starts, Beam, xarray, pandas and zarr have left a quarter of a million
    long-lived objects behind, and each full collection the bake's own allocations trigger
    walks all of them: two such collections cost 0.3 s of a 5 s bake of the benchmark
    (measured with ``gc.callbacks``; 0.06 s frozen). ``gc.freeze`` moves them out of the
    collector's sight (CPython's advice for pre-fork servers); objects made during the bake
    are collected as usual, and everything is handed back to the collector afterwards.
    Inside another one (``arco bake`` freezes before it loads the recipe), or a caller's own
    ``gc.freeze()``, it changes nothing.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def engine_session(profile: RunnerProfile, plan: Plan) -> Iterator[EngineSession]:
    """Everything an engine needs around one pipeline run (with :func:`frozen_heap` for the
    part of it that runs in this process)."""
    with frozen_heap():
        yield from _engine_session(profile, plan)


def _engine_session(profile: RunnerProfile, plan: Plan) -> Iterator[EngineSession]:
    settings = profile.settings
    if profile.engine == "direct":
        assert isinstance(settings, DirectSettings)
        yield EngineSession(direct_args(settings))
    elif profile.engine == "dask":
        assert isinstance(settings, DaskSettings)
        with contextlib.ExitStack() as stack:
            if settings.scheduler == "local":
                address, dashboard, clients = stack.enter_context(_local_dask(settings))
            else:
                address, dashboard = settings.scheduler, None
                clients = stack.enter_context(_existing_dask(address))
            session = EngineSession(
                [f"--runner={DASK_RUNNER}", f"--dask_client_address={address}",
                 f"--dask_npartitions={dask_npartitions(settings, plan)}"],
                dashboard=dashboard, two_phase=True)
            # The runner makes its own Client; hand it to the cluster's clean-up (first).
            session._after.append(lambda result: clients.append(getattr(result, "client", None))
                                  if getattr(result, "client", None) else None)
            yield session
    elif profile.engine == "flink":
        assert isinstance(settings, FlinkSettings)
        if settings.job_endpoint == "embed":
            dashboard = None
        elif settings.job_endpoint:
            dashboard = f"grpc://{settings.job_endpoint}"  # a Beam job service (Job API)
        else:
            dashboard = f"http://{settings.flink_master}"  # Flink's web UI and REST API
        yield EngineSession(flink_args(settings), remote=settings.job_endpoint != "embed",
                            dashboard=dashboard,
                            loopback=settings.environment_type == "LOOPBACK")
    else:
        assert isinstance(settings, DataflowSettings)
        yield EngineSession(
            dataflow_args(settings, plan), remote=True,
            dashboard=f"https://console.cloud.google.com/dataflow/jobs/{settings.region}"
            f"?project={settings.project}")
