"""The CLI's contract: exit codes, machine-readable output, and the committed JSON Schema."""

from __future__ import annotations

import json

import jsonschema
from typer.testing import CliRunner

from recipes_core.cli import app
from recipes_core.json_schema import SCHEMA_PATH, recipe_json_schema
from recipes_core.safe_yaml import load_yaml_file
from tests.conftest import EXAMPLES

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
