"""Remote engines build their jobs without running here; local ones report progress."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from recipes_core.bake import bake
from recipes_core.cli import app
from recipes_core.plan import compile_recipe
from recipes_core.recipe_io import load_recipe
from recipes_core.runners.profile import RunnerProfile
from recipes_core.storage import AccessPolicy
from tests.conftest import EXAMPLES

ERSST = EXAMPLES / "ersst-v5-monthly.yaml"


def test_dataflow_dry_run_builds_the_whole_job(tmp_path, monkeypatch):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    profile = RunnerProfile.model_validate({
        "name": "df", "engine": "dataflow", "target_root": "gs://bucket/arco",
        "cache_root": "gs://bucket/cache",
        "dataflow": {"project": "my-project", "region": "europe-west1",
                     "temp_location": "gs://bucket/tmp", "dry_run": True}})
    plan = compile_recipe(load_recipe(ERSST)[0], ERSST)
    result = bake(plan, profile=profile, policy=AccessPolicy(allow_local=True))
    assert result.state == "DRY_RUN"
    job = result.pipeline_result.job
    names = {t.unique_name for t in job.proto_pipeline.components.transforms.values()}
    for stage in ("Expand", "Stage", "Survey", "CollectSurvey", "Prepare", "WriteTasks",
                  "Spread", "Write", "SumBytes", "Finalise"):
        assert f"Bake/{stage}" in names
    assert job.proto.type.name == "JOB_TYPE_BATCH"
    assert not (tmp_path / "bucket").exists()


def test_bake_progress_and_json_log(real_data, tmp_path):
    log = tmp_path / "events.jsonl"
    result = CliRunner().invoke(app, [
        "bake", str(ERSST), "--target", str(tmp_path / "t"), "--allow-local", "--prune", "24",
        "--cache", str(tmp_path / "c"), "--json-log", str(log)])
    assert result.exit_code == 0, result.output
    assert "chunks written" in result.output and "sources fetched" in result.output
    assert "MB/s" in result.output and "store:" in result.output
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "setup" and kinds[-1] == "done"
    done = events[-1]
    assert done["counters"]["sources_staged"] == 24
    assert done["counters"]["chunks_written"] == 2
    assert done["bytes_written"] == 24 * 89 * 180 * 4


def test_failed_bake_logs_failed(tmp_path):
    log = tmp_path / "events.jsonl"
    result = CliRunner().invoke(app, [
        "bake", str(ERSST), "--target", str(tmp_path / "t"), "--json-log", str(log)])
    assert result.exit_code == 1
    assert "local paths are not allowed" in result.output
    assert json.loads(log.read_text().splitlines()[-1])["event"] == "failed"
