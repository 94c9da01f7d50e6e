"""The CLI's contract: exit codes, machine-readable output, and the committed JSON Schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
from typer.testing import CliRunner

from recipes_core.cli import app
from recipes_core.json_schema import SCHEMA_PATH, recipe_json_schema
from recipes_core.safe_yaml import load_yaml_file
from recipes_core.testing import make_daily_archive
from tests.conftest import EXAMPLES, recipe_dict

runner = CliRunner()


def test_committed_json_schema_is_current():
    assert SCHEMA_PATH.read_text() == recipe_json_schema(), (
        "recipes_core/recipe.schema.json is stale: run `make schema` and commit it")


def test_schema_command_prints_a_schema_the_examples_satisfy():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    for path in EXAMPLES.glob("*.yaml"):
        data, _ = load_yaml_file(path)  # dates stay text, as the model reads them
        jsonschema.validate(data, schema)


def test_lint_examples_pass():
    result = runner.invoke(app, ["lint", *map(str, sorted(EXAMPLES.glob("*.yaml")))])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == 2


def test_plan_json_describes_sources_without_opening_them():
    result = runner.invoke(app, ["plan", str(EXAMPLES / "ersst-v5-monthly.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["sources"] == 128
    assert info["first_url"].endswith("ersstv5_monthly/sst.mnmean_2010-01.nc")
    assert info["last_url"].endswith("ersstv5_monthly/sst.mnmean_2020-08.nc")
    assert info["dims"][0] == {"name": "time", "role": "concat", "keys": 128,
                               "first": "2010-01-01", "last": "2020-08-01", "items_per_file": 1}
    assert info["target"]["chunks"] == {"time": 12, "lat": -1, "lon": -1}
    assert len(info["plan_hash"]) == 64


def test_plan_inspect_shows_the_template(real_data):
    result = runner.invoke(app, ["plan", str(EXAMPLES / "ersst-v5-monthly.yaml"), "--inspect",
                                 "--json", "--allow-local"])
    assert result.exit_code == 0, result.output
    template = json.loads(result.output)["template"]
    (sst,) = template["variables"]
    assert sst["shape"] == [128, 89, 180] and sst["chunks"] == [12, 89, 180]
    assert sst["grid"] == [11, 1, 1] and sst["dtype"] == "float32"
    assert template["nchunks"] == 11 and template["exact"] is True


def test_errors_are_one_paragraph_without_traceback(tmp_path):
    result = runner.invoke(app, ["plan", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "there is no recipe file" in result.output
    assert "Traceback" not in result.output


def _flat(output: str) -> str:
    return " ".join(output.split())


MULTI_PROBLEM = """\
id: multi-problem
title: Four problems at once
description: Each semantic check must report its own problem.
license: CC-BY-4.0
maintainers: [{name: Tester}]
source:
  pattern: "https://example.org/{var}_{time:%Y%m%d}.nc"
  dims:
    time: {start: 2020-01-01, end: 2020-01-03, freq: D}
    member: {keys: [1, 2]}
transforms:
  - rename: {lat: latitude}
target:
  chunks: {time: 10, lat: 5}
  shards: {time: 15}
"""


def test_lint_reports_every_problem_of_a_recipe(tmp_path):
    path = tmp_path / "multi.yaml"
    path.write_text(MULTI_PROBLEM)
    result = runner.invoke(app, ["lint", str(path)])
    assert result.exit_code == 1
    output = _flat(result.output)
    assert output.count("error ") == 4, result.output
    assert (f"{path}, line 7, field source.pattern: the pattern uses {{var}}, which is not "
            "declared under source.dims") in output
    assert (f"{path}, line 8, field source.dims: source.dims declares member but the pattern "
            "never uses it") in output
    assert (f"{path}, line 14, field target.chunks.lat: 'lat' is renamed to 'latitude' by a "
            "transform, so the target has no 'lat' Fix: chunk 'latitude' instead.") in output
    assert (f"{path}, line 15, field target.shards: target shards do not align with chunks: "
            "shards.time = 15 is not a multiple of chunks.time = 10 (try 10 or 20)") in output


def test_a_schema_error_does_not_hide_the_semantic_checks(tmp_path):
    path = tmp_path / "multi.yaml"
    path.write_text(MULTI_PROBLEM.replace("title: Four problems at once", "title: 5\nbogus: 1")
                    .replace("CC-BY-4.0", "Totally-Made-Up"))
    result = runner.invoke(app, ["lint", str(path)])
    assert result.exit_code == 1
    output = _flat(result.output)
    assert f"{path}, line 2, field title: expected text" in output
    assert f"{path}, line 3, field bogus: unknown field 'bogus'" in output
    assert (f"{path}, line 5, field license: 'Totally-Made-Up' is not an SPDX licence "
            "identifier") in output
    # source, target and transforms validated on their own, so their checks still ran
    assert f"{path}, line 8, field source.pattern: the pattern uses {{var}}" in output
    assert f"{path}, line 9, field source.dims: source.dims declares member" in output
    assert f"{path}, line 15, field target.chunks.lat: 'lat' is renamed" in output
    assert f"{path}, line 16, field target.shards: target shards do not align" in output
    assert output.count("error ") == 7, result.output


def test_checks_on_a_broken_part_are_skipped_not_doubled(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(MULTI_PROBLEM.replace("freq: D}", "freq: D, bogus: 1}"))
    output = _flat(runner.invoke(app, ["lint", str(path)]).output)
    assert "field source.dims.time.bogus: unknown field 'bogus'" in output
    assert "the pattern uses {var}" not in output  # source did not validate: no source checks
    assert "field target.shards: target shards do not align" in output  # target did


@pytest.mark.parametrize("sample", ["0", "-2"])
def test_verify_refuses_a_sample_below_one(tmp_path, sample):
    result = runner.invoke(app, ["verify", str(tmp_path), "--recipe",
                                 str(EXAMPLES / "demo.yaml"), "--sample", sample])
    assert result.exit_code == 2
    output = _flat(result.output)
    assert "Invalid value for '--sample'" in output
    assert "greater than or equal to 1" in output
    assert "internal error" not in output


@pytest.mark.parametrize("command", ["bake", "verify"])
def test_prune_zero_is_refused_not_taken_as_no_prune(tmp_path, command):
    args = (["bake", str(EXAMPLES / "demo.yaml"), "--target", str(tmp_path / "t")]
            if command == "bake" else ["verify", str(tmp_path), "--recipe",
                                       str(EXAMPLES / "demo.yaml")])
    result = runner.invoke(app, [*args, "--prune", "0", "--cache", str(tmp_path / "c")])
    assert result.exit_code == 1, result.output
    assert "--prune must be at least 1, got 0" in _flat(result.output)
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("command", ["plan", "bake"])
def test_unknown_chunk_dim_names_the_recipe_line_and_the_dims(tmp_path, write_recipe, command):
    make_daily_archive(tmp_path / "archive", days=2)
    path = write_recipe(recipe_dict(
        str(tmp_path / "archive" / "demo_{time:%Y%m%d}.nc"),
        {"time": {"start": "2020-01-01", "end": "2020-01-02", "freq": "D"}},
        target={"chunks": {"time": 2, "depth": 3}}))
    line = path.read_text().splitlines().index("    depth: 3") + 1
    args = (["plan", str(path), "--inspect"] if command == "plan"
            else ["bake", str(path), "--target", str(tmp_path / "t"), "--no-progress"])
    result = runner.invoke(app, [*args, "--allow-local", "--cache", str(tmp_path / "c")])
    assert result.exit_code == 1, result.output
    output = _flat(result.output)
    assert (f"{path}, line {line}, field target.chunks.depth: target.chunks names depth, which "
            "the dataset does not have (its dimensions: time, lat, lon)") in output
    assert "Traceback" not in result.output
