"""Dask: a LocalCluster that needs no fixed port, and an operator's existing cluster."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from distributed import Client, LocalCluster

from recipes_core.bake import bake
from recipes_core.errors import RunnerError
from recipes_core.plan import compile_recipe
from recipes_core.recipe_io import load_recipe
from recipes_core.runners.engines import engine_session
from recipes_core.runners.profile import DaskSettings, RunnerProfile
from recipes_core.storage import AccessPolicy
from tests.conftest import EXAMPLES
from tests.runners.test_contract import chunk_digests

ERSST = EXAMPLES / "ersst-v5-monthly.yaml"
ARCO = Path(sys.executable).with_name("arco")


def _plan(prune: int):
    return compile_recipe(load_recipe(ERSST)[0], ERSST).prune(prune)


def test_local_cluster_does_not_need_port_8787(real_data, tmp_path):
    profile = tmp_path / "dask1.yaml"
    profile.write_text(yaml.safe_dump({"name": "dask1", "engine": "dask",
                                       "dask": {"scheduler": "local", "n_workers": 1}}))
    with socket.socket() as held:
        try:
            held.bind(("127.0.0.1", 8787))
        except OSError:
            pytest.skip("port 8787 is taken already (the test needs to hold it)")
        held.listen()
        run = subprocess.run(
            [str(ARCO), "bake", str(ERSST), "--runner", str(profile), "--allow-local",
             "--prune", "6", "--target", str(tmp_path / "t"), "--cache", str(tmp_path / "c"),
             "--no-progress"],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "PYTHONWARNINGS": "default"})
    assert run.returncode == 0, run.stderr
    assert "done in" in run.stdout
    assert "already in use" not in run.stderr, run.stderr


def _worker_state() -> dict[str, object]:
    import dask

    return {"imported": all(m in sys.modules for m in ("recipes_core.pipeline", "h5py",
                                                       "netCDF4", "dask.array")),
            "frozen": gc.get_freeze_count() > 0,
            "profiling": dask.config.get("distributed.worker.profile.enabled")}


def test_local_workers_start_ready_for_bake_tasks():
    """A local cluster's workers import what bake tasks run, and freeze that heap, as they
    start (the preload), with distributed's sampling profiler off; the driver's own dask
    config is as it was."""
    import dask

    before = {key: dask.config.get(key, None) for key in
              ("distributed.worker.profile.enabled", "logging.distributed",
               "distributed.nanny.pre-spawn-environ")}
    profile = RunnerProfile.model_validate({
        "name": "d2", "engine": "dask", "dask": {"scheduler": "local", "n_workers": 2}})
    with engine_session(profile, _plan(1)) as session:
        address = next(arg.split("=", 1)[1] for arg in session.args
                       if arg.startswith("--dask_client_address="))
        with Client(address) as client:
            states = client.run(_worker_state)
            assert {key: dask.config.get(key, None) for key in before} == before
    assert len(states) == 2
    assert all(state == {"imported": True, "frozen": True, "profiling": False}
               for state in states.values()), states
    assert {key: dask.config.get(key, None) for key in before} == before


def test_existing_cluster_is_used_and_left_running(real_data, tmp_path):
    plan = _plan(12)
    direct = bake(plan, str(tmp_path / "direct"), cache_dir=str(tmp_path / "cache"),
                  policy=AccessPolicy(allow_local=True))
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                      dashboard_address=":0") as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        profile = RunnerProfile.model_validate({
            "name": "site-dask", "engine": "dask",
            "dask": {"scheduler": cluster.scheduler_address}})
        result = bake(plan, str(tmp_path / "dask"), cache_dir=str(tmp_path / "cache"),
                      policy=AccessPolicy(allow_local=True), profile=profile)
        assert chunk_digests(result.store) == chunk_digests(direct.store)
        # The bake neither closed the cluster nor left its clients connected to it.
        assert cluster.status.name == "running"
        with Client(cluster.scheduler_address) as client:
            assert client.submit(sum, [1, 2]).result(timeout=30) == 3
            assert len(client.scheduler_info()["workers"]) == 1
            # Only this test's client is left (workers keep clients of their own).
            drivers = client.run_on_scheduler(lambda dask_scheduler: [
                c for c in dask_scheduler.clients
                if c != "fire-and-forget" and not c.startswith("Client-worker-")])
            assert drivers == [client.id]


def test_tls_and_gateway_addresses():
    assert DaskSettings(scheduler="tls://scheduler.example.org:8786").scheduler.startswith(
        "tls://")
    gateway = RunnerProfile.model_validate({
        "name": "gw", "engine": "dask",
        "dask": {"scheduler": "gateway://gateway.example.org:443/ns.abc123"}})
    try:
        import dask_gateway  # noqa: F401
    except ImportError:
        with pytest.raises(RunnerError, match="needs dask-gateway"), \
                engine_session(gateway, _plan(1)):
            pass
    with pytest.raises(ValueError, match="tls://host:8786"):
        DaskSettings(scheduler="http://scheduler:8786")
