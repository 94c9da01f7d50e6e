"""A real remote job: Beam's portable job service runs on 127.0.0.1 and the CLI follows it.

The flink profile's ``job_endpoint`` points at the service, so the bake is submitted over the
Beam Job API exactly as to a Flink job server: the CLI prints the job id and the engine's URL,
polls the state until DONE (or returns at once with ``--detach``, after which
``arco publish`` completes the bake).
"""

from __future__ import annotations

import json
import shutil
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
import yaml
from apache_beam.portability.api import beam_fn_api_pb2_grpc, beam_job_api_pb2
from apache_beam.runners.portability.local_job_service import LocalJobServicer
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer
from typer.testing import CliRunner

from recipes_core.bake import bake
from recipes_core.cli import app
from recipes_core.cli_publish import store_problems
from recipes_core.plan import compile_recipe
from recipes_core.recipe_io import load_recipe
from recipes_core.storage import AccessPolicy
from recipes_core.testing import make_daily_archive
from tests.conftest import EXAMPLES, recipe_dict
from tests.runners.test_contract import chunk_digests

ERSST = EXAMPLES / "ersst-v5-monthly.yaml"
PRUNE = 12


@pytest.fixture
def job_service():
    """Beam's local job service (the Job API a Flink job server speaks) on localhost."""
    servicer = LocalJobServicer()
    port = servicer.start_grpc_server(0)
    yield servicer, f"localhost:{port}"
    servicer.stop()


@pytest.fixture
def worker_pool():
    """An SDK worker pool (what runs beside each Flink task manager for EXTERNAL), on 127.0.0.1
    only, with workers as threads of this process."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    port = server.add_insecure_port("127.0.0.1:0")
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(
        BeamFnExternalWorkerPoolServicer(use_process=False), server)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(1)


def _profile(tmp_path: Path, **flink: str) -> Path:
    path = tmp_path / "remote.yaml"
    path.write_text(yaml.safe_dump({"name": "remote", "engine": "flink", "flink": flink}))
    return path


def _jobs(servicer: LocalJobServicer) -> dict[str, str]:
    """Job id -> state name, as the job service reports them over the Job API."""
    jobs = servicer.GetJobs(beam_job_api_pb2.GetJobsRequest()).job_info
    return {j.job_id: beam_job_api_pb2.JobState.Enum.Name(j.state) for j in jobs}


def _direct_store(tmp_path: Path) -> str:
    plan = compile_recipe(load_recipe(ERSST)[0], ERSST).prune(PRUNE)
    return bake(plan, str(tmp_path / "direct"), cache_dir=str(tmp_path / "cache"),
                policy=AccessPolicy(allow_local=True)).store


def _bake_args(tmp_path: Path, profile: Path, *extra: str) -> list[str]:
    return ["bake", str(ERSST), "--runner", str(profile), "--target", str(tmp_path / "t"),
            "--cache", str(tmp_path / "cache"), "--allow-local", "--prune", str(PRUNE), *extra]


def test_remote_job_is_followed_until_done(real_data, tmp_path, job_service):
    servicer, endpoint = job_service
    profile = _profile(tmp_path, job_endpoint=endpoint, environment_type="LOOPBACK")
    log = tmp_path / "events.jsonl"
    result = CliRunner().invoke(app, _bake_args(tmp_path, profile, "--json-log", str(log)))
    assert result.exit_code == 0, result.output
    jobs = _jobs(servicer)
    assert len(jobs) == 1
    job_id, final = next(iter(jobs.items()))
    assert final == "DONE"
    assert f"submitted job {job_id} to grpc://{endpoint}" in result.output
    states = [line.split()[1].rstrip(":") for line in result.output.splitlines()
              if line.startswith("job ")]
    assert states[-1] == "DONE" and "RUNNING" in states, result.output
    assert "sources staged" in result.output  # the service's counters, once it reports them
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["state"] for e in events if e["event"] == "state"][-1] == "DONE"
    assert events[-1]["event"] == "done" and events[-1]["counters"]["sources_staged"] == PRUNE
    store = events[-1]["store"]
    assert chunk_digests(store) == chunk_digests(_direct_store(tmp_path))
    state = json.loads((Path(store).parent / "bake.json").read_text())
    assert state["status"] == "complete" and state["job"]["id"] == job_id
    assert (tmp_path / "t" / "catalog.json").exists()


def test_failed_remote_job_marks_the_bake_failed(tmp_path, job_service):
    _, endpoint = job_service
    make_daily_archive(tmp_path / "archive", days=3, variables=("tas",))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(recipe_dict(
        str(tmp_path / "archive" / "tas_{time:%Y%m%d}.nc"),
        {"time": {"start": "2020-01-01", "end": "2020-01-04", "freq": "D",
                  "items_per_file": 1}})))  # the 4th day's file does not exist
    profile = _profile(tmp_path, job_endpoint=endpoint, environment_type="LOOPBACK")
    log = tmp_path / "events.jsonl"
    result = CliRunner().invoke(app, [
        "bake", str(recipe), "--runner", str(profile), "--target", str(tmp_path / "t"),
        "--cache", str(tmp_path / "cache"), "--allow-local", "--json-log", str(log)])
    assert result.exit_code == 1, result.output
    assert "ended in state FAILED" in result.output
    failed = json.loads(log.read_text().splitlines()[-1])
    assert failed["event"] == "failed" and "FAILED" in failed["error"]
    [state_file] = (tmp_path / "t").glob("*/v1/bake.json")
    assert json.loads(state_file.read_text())["status"] == "failed"


def test_detach_then_publish(real_data, tmp_path, job_service, worker_pool):
    servicer, endpoint = job_service
    profile = _profile(tmp_path, job_endpoint=endpoint, environment_type="EXTERNAL",
                       environment_config=worker_pool)
    runner = CliRunner()
    result = runner.invoke(app, _bake_args(tmp_path, profile, "--detach"))
    assert result.exit_code == 0, result.output
    [(job_id, _)] = _jobs(servicer).items()
    assert f"submitted job {job_id}" in result.output and "arco publish" in result.output
    [state_file] = (tmp_path / "t").glob("*/v1/bake.json")
    assert json.loads(state_file.read_text())["status"] == "running"

    publish = ["publish", str(ERSST), "--target", str(tmp_path / "t"), "--prune", str(PRUNE)]
    early = runner.invoke(app, publish)  # the job has only just been submitted
    assert early.exit_code == 1 and "is not finished" in early.output, early.output
    assert not (tmp_path / "t" / "catalog.json").exists()

    deadline = time.monotonic() + 120
    while _jobs(servicer)[job_id] != "DONE":
        assert time.monotonic() < deadline and _jobs(servicer)[job_id] != "FAILED"
        time.sleep(0.5)
    assert json.loads(state_file.read_text())["status"] == "running"  # nobody was polling
    store = state_file.parent / "ersst-v5-monthly.zarr"

    # A missing chunk is found (and named) even with consolidated metadata in place.
    chunk = next(p for p in sorted(store.rglob("*")) if p.is_file() and "sst/c/" in p.as_posix())
    shutil.move(chunk, tmp_path / "aside")
    assert any(p.startswith("sst: ") for p in store_problems(str(store)))
    shutil.move(tmp_path / "aside", chunk)
    assert store_problems(str(store)) == []

    done = runner.invoke(app, publish)
    assert done.exit_code == 0, done.output
    assert f"catalogue: {tmp_path / 't' / 'catalog.json'}" in done.output
    assert json.loads(state_file.read_text())["status"] == "complete"
    assert (tmp_path / "t" / "index.html").exists()
    assert chunk_digests(str(store)) == chunk_digests(_direct_store(tmp_path))


def test_detach_refuses_a_loopback_job(real_data, tmp_path):
    profile = _profile(tmp_path, job_endpoint="localhost:1", environment_type="LOOPBACK")
    result = CliRunner().invoke(app, _bake_args(tmp_path, profile, "--detach"))
    assert result.exit_code == 1
    assert "--detach cannot leave a LOOPBACK job running" in result.output

