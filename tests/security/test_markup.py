"""Recipe values are printed verbatim, never parsed as rich markup (a recipe is untrusted text).

Before the fix, ``id: "[/bold]"`` made `arco lint --untrusted` and `arco bake` end in a
``rich.errors.MarkupError`` traceback, and a refusal quoting the id pattern
``^[a-z0-9][a-z0-9-]{0,62}$`` lost its ``[a-z0-9]`` classes (rich read them as style tags).
Under typer's CliRunner a crash only sets ``exit_code`` (to 1, like a refusal), so every check
here also asserts that the command ended through ``typer.Exit`` and no other exception.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recipes_core.cli import app
from tests.conftest import recipe_dict

DIMS = {"time": {"start": "2020-01-01", "end": "2021-01-01", "freq": "YS"}}
HTTPS = "https://example.org/x_{time:%Y}.nc"
ID_PATTERN = "'^[a-z0-9][a-z0-9-]{0,62}$'"
_TMP = tempfile.mkdtemp(prefix="arco-markup-")  # one folder for all hypothesis examples


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))
    assert "Traceback" not in result.output and "internal error" not in result.output
    return result.output


def _write(tmp_path: Path, recipe: dict) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return str(path)


@pytest.mark.parametrize("command", [["lint", "--untrusted"], ["plan"], ["bake"]])
def test_a_markup_id_is_quoted_verbatim(tmp_path, command):
    path = _write(tmp_path, recipe_dict(HTTPS, DIMS, id="[/bold]"))
    extra = ["--target", str(tmp_path / "t"), "--cache", str(tmp_path / "c")] * (
        command == ["bake"])
    output = _invoke(*command, path, *extra)
    assert f"field id: '[/bold]' does not match the pattern {ID_PATTERN}" in output
    assert not (tmp_path / "t").exists()


def test_a_markup_title_is_quoted_verbatim(tmp_path):
    path = _write(tmp_path, recipe_dict(HTTPS, DIMS, title=["[bold red]x[/]", "[link=y]"]))
    output = _invoke("lint", "--untrusted", path)
    assert "field title: expected text, got ['[bold red]x[/]', '[link=y]']" in output


def test_a_markup_url_is_quoted_verbatim(tmp_path):
    url = "http://example.org/[red]x[/red]/[/]_{time:%Y}.nc"
    path = _write(tmp_path, recipe_dict(url, DIMS))
    shown = "http://example.org/[red]x[/red]/[/]_2020.nc"
    assert shown in _invoke("lint", "--untrusted", path)  # refused: plain http
    assert f"first: {shown}" in _invoke("plan", path)
    # The bake refuses plain http before any I/O, naming the URL as written.
    output = _invoke("bake", path, "--target", str(tmp_path / "t"), "--cache",
                     str(tmp_path / "c"))
    assert f"error: {shown}" in output and "plain http" in output


MARKUP = st.text(alphabet="[]/=#a-z bold", min_size=1, max_size=24).map(
    lambda s: "[" + s.strip() + "]") | st.sampled_from(
    ["[/]", "[/bold]", "[bold", "[red]x[/blue]", "[link=file:///etc/passwd]", "[@click]",
     "\\[", "[#ff00zz]"])


@settings(deadline=None, max_examples=40)
@given(MARKUP)
def test_any_markup_in_a_value_is_printed_verbatim(text):
    """Whatever rich-like tag a value holds, the message shows it as written."""
    path = Path(_TMP) / "fuzz.yaml"
    path.write_text(yaml.safe_dump(recipe_dict(HTTPS, DIMS, id=text)))
    assert f"field id: '{text}' does not match" in _invoke("lint", "--untrusted", str(path))
