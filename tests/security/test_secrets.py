"""Secrets never reach output, logs, plans, errors or files (DESIGN §6, promise 7).

A recipe whose URLs carry a token in the query string is planned, preflighted, baked, re-baked
with a missing file, and listed from the cache through the CLI (no --debug), with a secret in
the environment too. Everything printed or logged, and every file written under the target and
the cache, is scraped for both secrets.
"""

from __future__ import annotations

import logging
from pathlib import Path

from typer.testing import CliRunner

from recipes_core.cli import app
from recipes_core.testing import ArchiveServer, make_daily_archive
from tests.conftest import recipe_dict

QUERY_SECRET = "SECRET123"
ENV_SECRET = "SECRETENV456"


def _scrape(root: Path) -> list[str]:
    """Files under ``root`` that contain either secret (bytes, so binary files count too)."""
    leaks = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if QUERY_SECRET.encode() in data or ENV_SECRET.encode() in data:
                leaks.append(str(path))
    return leaks


def test_no_secret_in_output_logs_or_files(tmp_path, write_recipe, monkeypatch, caplog, capfd):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
    monkeypatch.setenv("ARCO_TOKEN", ENV_SECRET)
    caplog.set_level(logging.DEBUG)
    make_daily_archive(tmp_path / "archive", days=3, ny=4, nx=8)
    target, cache, log = tmp_path / "target", tmp_path / "cache", tmp_path / "status.jsonl"
    outputs: list[str] = []
    runner = CliRunner()

    def arco(*args: str) -> int:
        result = runner.invoke(app, list(args))
        outputs.append(result.output)
        return result.exit_code

    with ArchiveServer(tmp_path / "archive") as server:
        recipe = write_recipe(recipe_dict(
            server.url + "/demo_{time:%Y%m%d}.nc?token=" + QUERY_SECRET + "&var=tas",
            {"time": {"start": "2020-01-01", "end": "2020-01-03", "freq": "D"}}))
        common = ["--allow-private-hosts", "--allow-http", "--cache", str(cache)]
        assert arco("plan", str(recipe)) == 0
        assert arco("plan", str(recipe), "--json") == 0
        assert arco("preflight", str(recipe), "--allow-private-hosts", "--allow-http") == 0
        assert arco("bake", str(recipe), "--target", str(target), *common) == 0
        assert arco("cache", "ls", "--cache", str(cache)) == 0
        assert arco("cache", "ls", "--cache", str(cache), "--json", "--history") == 0
        # The failure paths: a missing file (404), through preflight and through the bake.
        (tmp_path / "archive" / "demo_20200102.nc").unlink()
        assert arco("bake", str(recipe), "--target", str(tmp_path / "t2"), "--preflight",
                    *common) == 1
        assert arco("bake", str(recipe), "--target", str(tmp_path / "t2"), "--json-log",
                    str(log), *common) == 1
        assert server.count("demo_20200101.nc") >= 1  # the token URLs really were fetched

    printed = "\n".join(outputs)
    assert "token=***" in printed and "demo_20200102.nc" in printed  # redacted, not silent
    captured = capfd.readouterr()
    for text in (printed, caplog.text, captured.out, captured.err, log.read_text()):
        assert QUERY_SECRET not in text and ENV_SECRET not in text
    assert "Traceback" not in printed
    for root in (target, tmp_path / "t2", cache):
        assert _scrape(root) == [], "a secret was written to disk"
    written = {p.name for root in (target, cache) for p in root.rglob("*") if p.is_file()}
    assert {"bake.json", "sources.json", "manifest.jsonl"} <= written


PROFILE_SECRET = "SECRETPROFILE789"
IMAGE = "registry.example.org/arco:1"


def test_no_secret_from_the_runner_profile_or_pipeline_args(tmp_path, write_recipe, caplog,
                                                             capfd):
    """Pipeline options carry what the operator set (`--set`): here an image reference with a
    query token. The bake runs (Beam's portable runner, embedded, so the option really reaches a
    Beam job and the provenance that records the options) and nothing it prints, logs or writes
    shows the token."""
    caplog.set_level(logging.DEBUG)
    make_daily_archive(tmp_path / "archive", days=2, ny=4, nx=8)
    target, cache = tmp_path / "target", tmp_path / "cache"
    profile = tmp_path / "portable.yaml"
    profile.write_text(
        "name: portable\nengine: flink\n"
        "flink: {job_endpoint: embed, environment_type: LOOPBACK}\n"
        "access: {allow_http: true, allow_private_hosts: true}\n")
    with ArchiveServer(tmp_path / "archive") as server:
        recipe = write_recipe(recipe_dict(
            server.url + "/demo_{time:%Y%m%d}.nc",
            {"time": {"start": "2020-01-01", "end": "2020-01-02", "freq": "D"}}))
        result = CliRunner().invoke(app, [
            "bake", str(recipe), "--runner", str(profile), "--target", str(target),
            "--cache", str(cache), "--no-progress",
            "--set", f"flink.sdk_container_image={IMAGE}?token={PROFILE_SECRET}"])
    assert result.exit_code == 0, result.output
    assert server.count("demo_20200102.nc") == 1
    captured = capfd.readouterr()
    for text in (result.output, caplog.text, captured.out, captured.err):
        assert PROFILE_SECRET not in text
    leaks = [str(p) for root in (target, cache) for p in root.rglob("*")
             if p.is_file() and PROFILE_SECRET.encode() in p.read_bytes()]
    assert leaks == [], "a secret from the profile was written to disk"
    written = {p.name for p in target.rglob("*") if p.is_file()}
    assert {"bake.json", "provenance.json"} <= written
    provenance = next(target.rglob("provenance.json")).read_text()
    assert f"--sdk_container_image={IMAGE}?token=***" in provenance  # recorded, redacted
