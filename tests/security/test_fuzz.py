"""Fuzz the recipe parser and linter: any input gives a clean result or an ArcoError, never
another exception; `arco lint` never prints a traceback (DESIGN §6, promises 6 and 8)."""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recipes_core.cli import app
from recipes_core.errors import ArcoError
from recipes_core.lint import lint_file
from tests.conftest import EXAMPLES

SETTINGS = settings(deadline=None, max_examples=150,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# One folder for the whole module: hypothesis runs many examples per test function.
WORKDIR = Path(tempfile.mkdtemp(prefix="arco-fuzz-"))
EXAMPLE_RECIPES = {p.name: yaml.safe_load(p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))}

YAML_CHARS = "abcxyz019 -_:.,[]{}&*!|>'\"#%@`?~=\n\t/\\\u00e9\x00\ufeff\x85"
YAML_TOKENS = st.sampled_from([
    *YAML_CHARS, "id: ", "source:", "  pattern: ", "dims:", "time:", "{time:%Y}",
    "!!python/name:os.system", "&a ", "*a", "<<: ", "---\n", "2020-01-01", "1e999", "0x1F",
    "\n  - ", "keys: [", "file:///etc/passwd", "https://127.0.0.1/", "%TAG ! tag:x,2000:\n",
    "[/bold]", "[red]", "id: '[/]'\n",  # rich markup: must be printed, never parsed
])
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.text(max_size=30) | st.sampled_from(
               ["2020-01-01", "D", "MS", "-1", "netcdf4", "https://example.org/x_{time:%Y}.nc",
                "../../etc/passwd", "file:///etc/passwd", "{time}", "%Y", "", "rename",
                "99999999999999999999D", "https://x.org/{time:>99999}", "{time.year}",
                "0000-01-01", "9999-12-31", "-1", "1e400", "{", "}", "%", "\x00", "[/bold]",
                "[link=x]", "http://h.org/[/]_{time:%Y}.nc"]))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=20,
)


def _lint_text(text: str, *, untrusted: bool) -> None:
    """lint_file must return, or raise an ArcoError; anything else fails the test."""
    path = WORKDIR / "recipe.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        result = lint_file(path, untrusted=untrusted)
    except ArcoError:
        return
    assert isinstance(result.problems, list)
    assert all(isinstance(p, str) for p in result.problems)


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _paths(value, (*prefix, i))
    return out


def _replace(data: Any, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


@SETTINGS
@given(st.text(YAML_CHARS, max_size=200), st.booleans())
def test_yaml_like_text(text, untrusted):
    _lint_text(text, untrusted=untrusted)


@SETTINGS
@given(st.lists(YAML_TOKENS, max_size=80).map("".join), st.booleans())
def test_yaml_like_tokens(text, untrusted):
    _lint_text(text, untrusted=untrusted)


@SETTINGS
@given(VALUES, st.booleans())
def test_arbitrary_nested_data(data, untrusted):
    _lint_text(yaml.safe_dump(data, allow_unicode=True), untrusted=untrusted)


@SETTINGS
@given(st.sampled_from(sorted(EXAMPLE_RECIPES)), st.data(), st.booleans())
def test_mutated_example_recipes(name, data, untrusted):
    recipe = copy.deepcopy(EXAMPLE_RECIPES[name])
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(recipe)))
        recipe = _replace(recipe, path, data.draw(VALUES), data.draw(st.booleans()))
    text = yaml.safe_dump(recipe, allow_unicode=True, sort_keys=False)
    _lint_text(text, untrusted=untrusted)


@settings(deadline=None, max_examples=25,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(sorted(EXAMPLE_RECIPES)), st.data())
def test_cli_lint_never_prints_a_traceback(name, data):
    recipe = copy.deepcopy(EXAMPLE_RECIPES[name])
    path = data.draw(st.sampled_from(_paths(recipe)))
    recipe = _replace(recipe, path, data.draw(VALUES), data.draw(st.booleans()))
    text = data.draw(st.sampled_from([yaml.safe_dump(recipe, allow_unicode=True),
                                      data.draw(st.lists(YAML_TOKENS, max_size=40).map("".join))]))
    target = WORKDIR / "cli.yaml"
    target.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = CliRunner().invoke(app, ["lint", "--untrusted", os.fspath(target)])
    # CliRunner catches exceptions and only sets exit_code (1 for any of them): a crash in the
    # printing itself (rich.errors.MarkupError) would pass an exit-code check.
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
