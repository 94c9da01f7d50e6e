"""Remote engines build their jobs without running here; local ones report progress."""

from __future__ import annotations

import json

import yaml
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
    failed = json.loads(log.read_text().splitlines()[-1])
    assert failed["event"] == "failed" and "local paths are not allowed" in failed["error"]
    assert failed["sources_staged"] == 0


def test_summary_names_store_catalogue_and_page(real_data, tmp_path):
    target = tmp_path / "t"
    result = CliRunner().invoke(app, [
        "bake", str(ERSST), "--target", str(target), "--allow-local", "--prune", "12",
        "--cache", str(tmp_path / "c"), "--no-progress"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"catalogue: {target / 'catalog.json'}" in lines
    assert f"page: {target / 'index.html'}" in lines
    assert (target / "catalog.json").exists() and (target / "index.html").exists()


def test_json_log_on_stdout_is_pure_json_lines(real_data, tmp_path):
    result = CliRunner().invoke(app, [
        "bake", str(ERSST), "--target", str(tmp_path / "t"), "--allow-local", "--prune", "12",
        "--cache", str(tmp_path / "c"), "--json-log", "-"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]  # every line is JSON
    assert events[0]["event"] == "setup" and events[-1]["event"] == "done"
    assert events[-1]["catalog"] == str(tmp_path / "t" / "catalog.json")
    for human in ("baking ersst-v5-monthly", "done in", "store:", "catalogue:", "open it:"):
        assert human in result.stderr


def test_failed_event_carries_counts_and_a_redacted_error(tmp_path):
    log = tmp_path / "events.jsonl"
    recipe = tmp_path / "r.yaml"
    data = yaml.safe_load(ERSST.read_text())
    # Nothing listens on port 9 (discard): staging fails, quoting the URL.
    data["source"]["pattern"] = "http://127.0.0.1:9/sst_{time:%Y-%m}.nc?token=SECRET-TOKEN"
    recipe.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, [
        "bake", str(recipe), "--target", str(tmp_path / "t"), "--prune", "2", "--allow-http",
        "--allow-private-hosts", "--cache", str(tmp_path / "c"), "--json-log", str(log)])
    assert result.exit_code != 0, result.output
    failed = json.loads(log.read_text().splitlines()[-1])
    assert failed["event"] == "failed"
    assert {"sources_staged", "chunks_written", "bytes_written"} <= set(failed)
    assert failed["error"] and "127.0.0.1:9" in failed["error"]
    assert "SECRET-TOKEN" not in log.read_text()


def test_dataflow_dry_run_prints_one_honest_line(tmp_path, monkeypatch):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    profile = tmp_path / "df.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "df", "engine": "dataflow", "target_root": "gs://bucket/arco",
        "cache_root": "gs://bucket/cache",
        "dataflow": {"project": "my-project", "region": "europe-west1",
                     "temp_location": "gs://bucket/tmp", "dry_run": True}}))
    result = CliRunner().invoke(app, ["bake", str(ERSST), "--runner", str(profile),
                                      "--allow-local"])
    assert result.exit_code == 0, result.output
    assert "dry run: the dataflow job was built, not submitted; nothing was written" in \
        result.output
    assert "submitted job" not in result.output and "state DONE" not in result.output
