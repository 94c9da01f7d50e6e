"""`arco catalog validate`, `arco ls` and `arco open` on a baked catalogue."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from recipes_core.cli import app
from tests.stac.conftest import ERSST_ID

runner = CliRunner()


def copy_catalogue(target: Path, into: Path) -> Path:
    """The catalogue's JSON documents only (validation never reads the store)."""
    for path in target.rglob("*.json"):
        if ".zarr" in path.parts[-2] or any(p.endswith(".zarr") for p in path.parts):
            continue
        dest = into / path.relative_to(target)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    return into


def test_validate_passes_on_a_baked_catalogue(ersst_target):
    result = runner.invoke(app, ["catalog", "validate", str(ersst_target)])
    assert result.exit_code == 0, result.output
    assert "3 document(s) valid" in result.output  # root, Collection, its frozen v1 copy


def test_validate_reports_every_problem_of_a_corrupted_catalogue(ersst_target, tmp_path):
    root = copy_catalogue(ersst_target, tmp_path / "copy")
    path = root / ERSST_ID / "collection.json"
    document = json.loads(path.read_text())
    del document["license"]
    document["extent"]["temporal"]["interval"] = [["2010-01-01 00:00", None]]  # not RFC 3339
    del document["cube:dimensions"]["lon"]["axis"]
    path.write_text(json.dumps(document))

    result = runner.invoke(app, ["catalog", "validate", str(root / "catalog.json")])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"{ERSST_ID}/collection.json" in text
    assert "'license' is a required property" in text
    assert "2010-01-01 00:00" in text  # every problem is reported, each where it is
    assert "at cube:dimensions/lon: matches none of the allowed forms ('axis' is a required" in text
    assert f"ok {root / 'catalog.json'}" in text  # and the sound document is named as such


def test_validate_reports_a_missing_child(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (root / "catalog.json").write_text(json.dumps({
        "type": "Catalog", "id": "c", "stac_version": "1.1.0", "description": "d",
        "links": [{"rel": "child", "href": "./gone/collection.json"}]}))
    result = runner.invoke(app, ["catalog", "validate", str(root)])
    assert result.exit_code == 1
    assert "no such file" in " ".join(result.output.split())


def test_validate_without_a_catalogue_says_where_to_look(tmp_path):
    result = runner.invoke(app, ["catalog", "validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "no STAC catalogue here" in " ".join(result.output.split())


def test_ls_lists_datasets_with_extents_and_variables(ersst_target):
    result = runner.invoke(app, ["ls", str(ersst_target)])
    assert result.exit_code == 0, result.output
    assert ERSST_ID in result.output
    row = next(line for line in result.output.splitlines() if ERSST_ID in line)
    assert "-180,-89,180,89" in row and "2010-01-01..2020-08-01" in row
    assert "sst [degC]" in row


def test_open_prints_the_dataset(ersst_target):
    result = runner.invoke(app, ["open", str(ersst_target / "catalog.json"), ERSST_ID])
    assert result.exit_code == 0, result.output
    assert "<xarray.Dataset>" in result.output
    assert "sst" in result.output and "(time: 128, lat: 89, lon: 180)" in result.output


def test_open_an_unknown_dataset_names_the_known_ones(ersst_target):
    result = runner.invoke(app, ["open", str(ersst_target), "nope"])
    assert result.exit_code == 1
    assert "no dataset 'nope'" in result.output and ERSST_ID in result.output
