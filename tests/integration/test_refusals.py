"""One test per refusal: each names the file, line, field, URL or source, and the fix."""

from __future__ import annotations

import re

import pytest
import yaml
from typer.testing import CliRunner

from recipes_core.cli import app
from recipes_core.errors import AlignmentError, SchemaError, SourceMissingError
from recipes_core.testing import ArchiveServer, make_daily_archive, make_regridded_copy
from tests.conftest import EXAMPLES, recipe_dict

runner = CliRunner()


def _lint(path) -> tuple[int, str]:
    result = runner.invoke(app, ["lint", str(path)])
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def ersst_yaml() -> dict:
    return yaml.safe_load((EXAMPLES / "ersst-v5-monthly.yaml").read_text())


def test_unknown_field_names_line_and_suggests(tmp_path, ersst_yaml):
    text = (EXAMPLES / "ersst-v5-monthly.yaml").read_text().replace("  chunks:", "  chunkz:")
    path = tmp_path / "r.yaml"
    path.write_text(text)
    line = text.splitlines().index("  chunkz: {time: 12, lat: -1, lon: -1}") + 1
    code, output = _lint(path)
    assert code == 1
    assert f"line {line}, field target.chunkz: unknown field 'chunkz'" in output
    assert "Did you mean 'chunks'?" in output


def test_wrong_type(tmp_path, write_recipe, ersst_yaml):
    ersst_yaml["target"]["chunks"]["time"] = "twelve"
    code, output = _lint(write_recipe(ersst_yaml))
    assert code == 1
    assert re.search(r"line \d+, field target\.chunks\.time: .*whole number", output), output


def test_bad_date(tmp_path, write_recipe, ersst_yaml):
    ersst_yaml["source"]["dims"]["time"]["start"] = "2010-02-30"
    code, output = _lint(write_recipe(ersst_yaml))
    assert code == 1
    assert re.search(r"line \d+, field source\.dims\.time\.start: '2010-02-30' is not a valid "
                     r"date", output), output


def test_placeholder_and_dim_mismatch(tmp_path, write_recipe, ersst_yaml):
    ersst_yaml["source"]["pattern"] = "https://example.org/sst_{date:%Y-%m}.nc"
    code, output = _lint(write_recipe(ersst_yaml))
    assert code == 1
    assert "field source.pattern: the pattern uses {date}, which is not declared" in output
    assert "Fix: declare date under source.dims" in output


def test_unknown_transform(tmp_path, write_recipe, ersst_yaml):
    ersst_yaml["transforms"] = [{"renam": {"lat": "latitude"}}]
    code, output = _lint(write_recipe(ersst_yaml))
    assert code == 1
    assert re.search(r"line \d+, field transforms\[0\]: unknown transform 'renam'\. "
                     r"Did you mean 'rename'\?", output), output


def test_misaligned_shards_are_refused_at_compile_time(tmp_path, write_recipe, ersst_yaml):
    ersst_yaml["target"]["shards"] = {"time": 20}
    code, output = _lint(write_recipe(ersst_yaml))
    assert code == 1
    assert "shards.time = 20 is not a multiple of chunks.time = 12 (try 12 or 24)" in output
    with pytest.raises(AlignmentError):
        from recipes_core.plan import compile_recipe
        from recipes_core.recipe_io import load_recipe

        compile_recipe(load_recipe(write_recipe(ersst_yaml, "again.yaml"))[0])


def test_untrusted_refuses_local_and_http(tmp_path, write_recipe, ersst_yaml):
    result = runner.invoke(app, ["lint", "--untrusted", str(EXAMPLES / "ersst-v5-monthly.yaml")])
    assert result.exit_code == 1 and "local paths are not allowed" in result.output
    ersst_yaml["source"]["pattern"] = "http://example.org/sst_{time:%Y-%m}.nc"
    result = runner.invoke(app, ["lint", "--untrusted", str(write_recipe(ersst_yaml))])
    assert result.exit_code == 1 and "plain http is not allowed" in result.output


def test_missing_http_source_names_the_url(tmp_path, write_recipe, bake_file):
    make_daily_archive(tmp_path / "archive", days=3)
    (tmp_path / "archive" / "demo_20200102.nc").unlink()
    with ArchiveServer(tmp_path / "archive") as server:
        base = server.url
        recipe = recipe_dict(base + "/demo_{time:%Y%m%d}.nc",
                             {"time": {"start": "2020-01-01", "end": "2020-01-03", "freq": "D"}})
        with pytest.raises(SourceMissingError) as info:
            bake_file(write_recipe(recipe), allow_private_hosts=True)
    assert f"{base}/demo_20200102.nc" in str(info.value)
    assert "HTTP 404" in str(info.value)


def test_missing_local_file_through_the_cli(tmp_path, write_recipe):
    make_daily_archive(tmp_path / "archive", days=2)
    recipe = recipe_dict(str(tmp_path / "archive" / "demo_{time:%Y%m%d}.nc"),
                         {"time": {"start": "2020-01-01", "end": "2020-01-03", "freq": "D"}})
    result = runner.invoke(app, ["bake", str(write_recipe(recipe)), "--target",
                                 str(tmp_path / "t"), "--allow-local", "--cache",
                                 str(tmp_path / "c")])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "demo_20200103.nc: no such file" in output
    assert "Traceback" not in result.output


def test_source_on_a_different_grid_names_the_file(tmp_path, write_recipe, bake_file):
    files = make_daily_archive(tmp_path / "archive", days=4)
    odd = files[2]
    make_regridded_copy(odd, tmp_path / "odd.nc", ny=9, nx=36)
    (tmp_path / "odd.nc").replace(odd)
    recipe = recipe_dict(str(tmp_path / "archive" / "demo_{time:%Y%m%d}.nc"),
                         {"time": {"start": "2020-01-01", "end": "2020-01-04", "freq": "D"}})
    with pytest.raises(SchemaError) as info:
        bake_file(write_recipe(recipe))
    message = str(info.value)
    assert str(odd) in message
    assert "dimension 'lat' has size 9 here but 18" in message
    assert "different grid" in message


def test_items_per_file_mismatch_names_the_file(tmp_path, write_recipe, bake_file):
    make_daily_archive(tmp_path / "archive", days=4)
    recipe = recipe_dict(str(tmp_path / "archive" / "demo_{time:%Y%m%d}.nc"),
                         {"time": {"start": "2020-01-01", "end": "2020-01-04", "freq": "D",
                                   "items_per_file": 2}})
    with pytest.raises(SchemaError, match=r"demo_20200101\.nc: the source has 1 steps along "
                       r"'time' but the recipe says items_per_file: 2"):
        bake_file(write_recipe(recipe))


def test_private_hosts_refused_before_any_io(tmp_path, write_recipe, bake_file):
    from recipes_core.errors import UnsafeRecipeError

    recipe = recipe_dict("http://127.0.0.1:9/demo_{time:%Y%m%d}.nc",
                         {"time": {"start": "2020-01-01", "end": "2020-01-02", "freq": "D"}})
    with pytest.raises(UnsafeRecipeError, match="loopback"):
        bake_file(write_recipe(recipe))
    assert not (tmp_path / "target").exists()


def test_chained_url_in_a_local_recipe_is_refused_as_written(tmp_path, write_recipe):
    url = "simplecache::https://example.org/sst_{time:%Y-%m}.nc"
    recipe = recipe_dict(url, {"time": {"start": "2010-01", "end": "2010-02", "freq": "MS"}})
    path = write_recipe(recipe)
    result = runner.invoke(app, ["bake", str(path), "--target", str(tmp_path / "t"),
                                 "--allow-local", "--cache", str(tmp_path / "c"),
                                 "--no-progress"])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert ("simplecache::https://example.org/sst_2010-01.nc: chained fsspec URLs (like "
            "simplecache::, zip:: or reference::) are not allowed") in output
    assert str(tmp_path) + "/simplecache" not in output  # not resolved as a relative path
    code, output = _lint_untrusted(path)
    assert code == 1
    assert "chained fsspec URLs" in output and "(simplecache::https://example.org/sst_" in output
    assert str(tmp_path) + "/simplecache" not in output


def _lint_untrusted(path) -> tuple[int, str]:
    result = runner.invoke(app, ["lint", "--untrusted", str(path)])
    return result.exit_code, " ".join(result.output.split())
