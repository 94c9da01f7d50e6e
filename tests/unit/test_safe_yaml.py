"""Tests for recipes_core.safe_yaml: safe loading, source positions and friendly errors."""

from __future__ import annotations

import contextlib
import datetime
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, model_validator

from recipes_core.errors import RecipeError, RecipeValidationError, UnsafeRecipeError
from recipes_core.safe_yaml import (
    Limits,
    SourceMap,
    format_validation_error,
    load_yaml,
    load_yaml_file,
)

RECIPE = """\
title: ERA5 surface
source:
  kind: http
  url: https://example.org/era5.nc
  dims:
    time:
      start: 2010-01-01
      end: 2010-12-31
target:
  chunks: {time: 24, lat: 90}
transforms:
  - rename: {t2m: air_temperature}
  - scale: 0.5
"""


def load(text: str | bytes, **kwargs: Any) -> tuple[Any, SourceMap]:
    return load_yaml(text, filename="recipe.yaml", **kwargs)


def refusal(text: str | bytes, error: type[RecipeError] = UnsafeRecipeError, **kwargs: Any) -> str:
    """Load ``text``, expect ``error`` and return its message."""
    with pytest.raises(error) as info:
        load(text, **kwargs)
    assert type(info.value) is error
    return str(info.value)


# ------------------------------------------------------------------------------------------
# Values and positions
# ------------------------------------------------------------------------------------------


def test_loads_plain_values() -> None:
    data, _ = load(RECIPE)
    assert data == {
        "title": "ERA5 surface",
        "source": {
            "kind": "http",
            "url": "https://example.org/era5.nc",
            "dims": {"time": {"start": "2010-01-01", "end": "2010-12-31"}},
        },
        "target": {"chunks": {"time": 24, "lat": 90}},
        "transforms": [{"rename": {"t2m": "air_temperature"}}, {"scale": 0.5}],
    }


def test_scalar_types_follow_yaml() -> None:
    data, _ = load("a: 0x1F\nb: 1_000\nc: .inf\nd: true\ne: ~\nf: '12'\ng: 1.5e+3\nh: =\n")
    assert data == {"a": 31, "b": 1000, "c": math.inf, "d": True, "e": None, "f": "12"} | {
        "g": 1500.0,
        "h": "=",
    }


def test_dates_and_timestamps_stay_strings() -> None:
    data, _ = load(
        "start: 2010-01-01\nwhen: 2001-12-14t21:59:43.10-05:00\nexplicit: !!timestamp 2020-02-02\n"
    )
    assert data == {
        "start": "2010-01-01",
        "when": "2001-12-14t21:59:43.10-05:00",
        "explicit": "2020-02-02",
    }
    assert all(isinstance(value, str) for value in data.values())
    assert not any(isinstance(value, datetime.date) for value in data.values())


def test_source_map_locates_nested_keys_and_list_items() -> None:
    _, source_map = load(RECIPE)
    assert source_map.locate(()) == (1, 1)
    assert source_map.locate(("title",)) == (1, 1)
    assert source_map.locate(("source", "url")) == (4, 3)
    assert source_map.locate(("source", "dims", "time", "start")) == (7, 7)
    assert source_map.locate(("target", "chunks", "lat")) == (10, 22)
    assert source_map.locate(("transforms", 0)) == (12, 5)
    assert source_map.locate(("transforms", 1, "scale")) == (13, 5)
    assert source_map.describe(("source", "dims", "time", "end")) == "recipe.yaml, line 8"


def test_source_map_falls_back_to_nearest_ancestor() -> None:
    _, source_map = load(RECIPE)
    assert source_map.locate(("source", "dims", "time", "step")) == (6, 5)
    assert source_map.locate(("transforms", 7, "rename")) == (11, 1)
    assert source_map.locate(("nowhere", "at", "all")) == (1, 1)
    assert ("source", "url") in source_map
    assert ("source", "nope") not in source_map
    assert source_map.locate(["source", "url"]) == (4, 3)  # any sequence works as a path
    assert source_map.locate("title") == (1, 1)  # a bare key is a one-part path


def test_empty_source_map_locates_nothing() -> None:
    source_map = SourceMap("x.yaml")
    assert source_map.locate(("a",)) is None
    assert source_map.describe(("a",)) == "x.yaml"


def test_non_mapping_top_level_is_returned() -> None:
    data, source_map = load("- a\n- b\n")
    assert data == ["a", "b"]
    assert source_map.locate((1,)) == (2, 3)
    data, source_map = load("just text")
    assert data == "just text"
    assert source_map.locate(()) == (1, 1)
    assert load("~")[0] is None


def test_aliases_are_expanded_into_independent_copies() -> None:
    data, source_map = load("base: &b {x: 1}\nfirst: *b\nsecond: *b\n")
    assert data == {"base": {"x": 1}, "first": {"x": 1}, "second": {"x": 1}}
    data["first"]["x"] = 2
    assert data["second"]["x"] == 1
    assert source_map.locate(("second",)) == (3, 1)
    assert source_map.locate(("second", "x")) == (1, 11)  # where the anchored text is


def test_bytes_are_decoded_and_bom_accepted() -> None:
    assert load("a: é\n".encode())[0] == {"a": "é"}
    assert load(b"\xef\xbb\xbfa: 1\n")[0] == {"a": 1}
    assert load("a: 1\n".encode("utf-16"))[0] == {"a": 1}
    message = refusal(b"a: 1\nb: \xff\n", RecipeError)
    assert "recipe.yaml, line 2" in message
    assert "not valid UTF-8" in message


def test_load_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("title: x\nsource:\n  url: y\n", encoding="utf-8")
    data, source_map = load_yaml_file(path)
    assert data == {"title": "x", "source": {"url": "y"}}
    assert source_map.describe(("source", "url")) == f"{path}, line 3"
    assert source_map.filename == str(path)


def test_load_yaml_file_missing_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(RecipeError) as info:
        load_yaml_file(path)
    assert str(path) in str(info.value)
    assert info.value.where == str(path)


def test_load_yaml_file_refuses_big_files_without_reading_them(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(UnsafeRecipeError) as info:
        load_yaml_file(path, limits=Limits(max_bytes=1000))
    assert "1000 bytes" in str(info.value)
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------------------
# Refusals
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("cmd: !!python/object/apply:os.system [echo hi]\n", "!!python/object/apply:os.system"),
        ("f: !!python/name:os.system\n", "!!python/name:os.system"),
        (
            "x: !!python/object:collections.OrderedDict {}\n",
            "!!python/object:collections.OrderedDict",
        ),
        ("x: !custom value\n", "!custom"),
        ("x: !<tag:example.com,2024:thing> value\n", "tag:example.com,2024:thing"),
        ("!!python/str k: v\n", "!!python/str"),
    ],
)
def test_code_tags_are_refused(text: str, shown: str) -> None:
    message = refusal("title: t\n" + text)
    assert message == (
        f"recipe.yaml, line 2: the tag '{shown}' is not allowed: recipes are data, never code. "
        "Remove the tag."
    )


@pytest.mark.parametrize("tag", ["!!binary", "!!set", "!!omap", "!!pairs"])
def test_non_plain_standard_tags_are_refused(tag: str) -> None:
    value = {"!!binary": "aGk=", "!!set": "{a, b}", "!!omap": "[a: 1]", "!!pairs": "[a: 1]"}[tag]
    message = refusal(f"x: {tag} {value}\n")
    assert f"recipe.yaml, line 1: the tag '{tag}' is not supported" in message
    assert message.endswith("Remove the tag.")


def test_mismatched_standard_tag_is_refused() -> None:
    assert "the tag '!!seq' cannot be used" in refusal("x: !!seq {a: 1}\n")


def test_plain_standard_tags_are_accepted() -> None:
    data, _ = load("a: !!str 12\nb: !!int '7'\nc: !!float '1'\nd: !!map {x: !!seq [1]}\n")
    assert data == {"a": "12", "b": 7, "c": 1.0, "d": {"x": [1]}}


def test_bad_value_for_explicit_tag_is_a_recipe_error() -> None:
    message = refusal("a: 1\nb: !!int abc\n", RecipeError)
    assert message.startswith("recipe.yaml, line 2, column 4: could not read 'abc' as a whole")


def test_duplicate_keys_name_the_key_and_both_lines() -> None:
    message = refusal("title: a\nsource:\n  url: x\n  kind: http\n  url: y\n")
    assert message == (
        "recipe.yaml, line 5: the key 'url' appears twice in the same mapping "
        "(first on line 3, again on line 5). Keep only one of them."
    )


def test_duplicate_keys_spelled_differently_are_still_duplicates() -> None:
    assert "the key 'a' appears twice" in refusal("a: 1\n'a': 2\n")


def test_same_key_in_different_mappings_is_fine() -> None:
    assert load("a: {x: 1}\nb: {x: 2}\n")[0] == {"a": {"x": 1}, "b": {"x": 2}}


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("1: x\n", "the key 1 is read as a number"),
        ("1.5: x\n", "the key 1.5 is read as a number"),
        ("true: x\n", "the key true is read as true/false"),
        ("on: x\n", "the key on is read as true/false"),
        ("~: x\n", "the key ~ is read as null"),
        ("null: x\n", "the key null is read as null"),
    ],
)
def test_non_text_keys_are_refused(text: str, what: str) -> None:
    message = refusal("title: t\n" + text)
    assert message.startswith(f"recipe.yaml, line 2: {what}, but recipe keys must be text.")
    assert "Put the key in quotes" in message


def test_quoted_keys_and_date_keys_are_text() -> None:
    data, _ = load("'1': x\n\"true\": y\n2010-01-01: z\n")
    assert data == {"1": "x", "true": "y", "2010-01-01": "z"}


@pytest.mark.parametrize(
    ("text", "kind"), [("? [a, b]\n: c\n", "a list"), ("? {a: 1}\n: c\n", "a mapping")]
)
def test_collection_keys_are_refused(text: str, kind: str) -> None:
    message = refusal(text)
    assert message.startswith(f"recipe.yaml, line 1: a mapping key is {kind}")


def test_merge_keys_are_refused() -> None:
    message = refusal("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n")
    assert message == (
        "recipe.yaml, line 3: merge keys '<<' are not supported. Write the keys out in full."
    )


def test_quoted_merge_key_is_just_text() -> None:
    assert load("'<<': 1\n")[0] == {"<<": 1}


def test_documents_over_max_bytes_are_refused_before_parsing() -> None:
    # Not even valid YAML: the size check must come first.
    text = "a: [" + "x" * 2000
    message = refusal(text, limits=Limits(max_bytes=1000))
    assert message.startswith("recipe.yaml: the recipe is larger than the limit of 1000 bytes.")
    assert "1000" in refusal(text.encode(), limits=Limits(max_bytes=1000))


def test_max_bytes_counts_utf8_bytes() -> None:
    text = "a: " + "é" * 600  # 603 characters, 1203 bytes
    refusal(text, limits=Limits(max_bytes=1000))


def test_nesting_deeper_than_max_depth_is_refused() -> None:
    ok = "[" * 32 + "]" * 32
    assert load(ok)[0] is not None
    message = refusal("[" * 33 + "]" * 33)
    assert message == (
        "recipe.yaml, line 1: the recipe nests mappings and lists more than 32 levels deep. "
        "Flatten the structure."
    )


def test_block_nesting_reports_the_line() -> None:
    text = "".join("  " * level + f"k{level}:\n" for level in range(6)) + "  " * 6 + "v: 1\n"
    message = refusal(text, limits=Limits(max_depth=5))
    assert message.startswith("recipe.yaml, line 6: the recipe nests")


def test_very_deep_nesting_is_refused_without_recursion_error() -> None:
    message = refusal("[" * 100_000 + "]" * 100_000)
    assert "more than 32 levels deep" in message


def test_depth_counts_alias_expansion() -> None:
    text = "a: &a [[[[x]]]]\nb: [[[[*a]]]]\n"
    assert load(text, limits=Limits(max_depth=9))[0]["b"] == [[[[[[[["x"]]]]]]]]
    message = refusal(text, limits=Limits(max_depth=8))
    assert "more than 8 levels deep" in message


def test_too_many_aliases_are_refused() -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * 101) + "]\n"
    message = refusal(text)
    assert message == (
        "recipe.yaml, line 2: the recipe uses more than 100 aliases (*name). "
        "Write the repeated values out, or repeat them less."
    )
    assert load(text, limits=Limits(max_aliases=101))[0]["b"] == ["x"] * 101


def billion_laughs(levels: int = 9) -> str:
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*lol{level - 1}"] * 10)
        lines.append(f"lol{level}: &lol{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_before_expansion() -> None:
    # Fully expanded, this is 10**10 strings: a refusal at all means the count was bounded.
    text = billion_laughs()
    assert len(text) < 1024
    message = refusal(text)
    assert "more than 20000 values once its aliases (*name) are expanded" in message
    assert message.startswith("recipe.yaml, line 5:")  # lol4 is the first node over the limit


def test_node_limit_without_aliases() -> None:
    text = "[" + ", ".join(["1"] * 50) + "]"
    message = refusal(text, limits=Limits(max_nodes=40))
    assert "more than 40 values." in message
    assert "aliases" not in message


def test_recursive_alias_is_refused() -> None:
    message = refusal("a: &a [1, *a]\n")
    assert message.startswith("recipe.yaml, line 1: an alias (*name) refers to the mapping")


def test_more_than_one_document_is_refused() -> None:
    message = refusal("title: a\n---\ntitle: b\n")
    assert message == (
        "recipe.yaml, line 2: the file holds more than one YAML document; a recipe is exactly "
        "one. Remove the second '---' and what follows it, or move it to its own file."
    )


def test_explicit_single_document_is_fine() -> None:
    assert load("---\ntitle: a\n...\n")[0] == {"title": "a"}


@pytest.mark.parametrize("text", ["", "   \n\n", "# just a comment\n", "---\n", "--- # c\n...\n"])
def test_empty_document_is_refused(text: str) -> None:
    message = refusal(text)
    assert message.startswith("recipe.yaml: the recipe file is empty.")


# ------------------------------------------------------------------------------------------
# Syntax errors
# ------------------------------------------------------------------------------------------


def test_syntax_error_names_line_and_column() -> None:
    message = refusal("title: a\nsource:\n  kind: http\n  url: a: b\n", RecipeError)
    assert message.startswith(
        "recipe.yaml, line 4, column 9: could not parse the YAML: "
        "mapping values are not allowed here."
    )


def test_tab_indentation_gets_a_hint() -> None:
    message = refusal("a:\n\tb: 1\n", RecipeError)
    assert message.startswith("recipe.yaml, line 2, column 1: could not parse the YAML")
    assert "spaces, never tabs" in message


def test_unclosed_flow_sequence() -> None:
    message = refusal("a: [1, 2\nb: 3\n", RecipeError)
    assert message.startswith("recipe.yaml, line 2")
    assert "could not parse the YAML" in message


def test_undefined_alias_is_a_syntax_error() -> None:
    message = refusal("a: 1\nb: *nope\n", RecipeError)
    assert message.startswith("recipe.yaml, line 2, column 4: could not parse the YAML: ")
    assert "undefined alias" in message


def test_control_characters_are_refused() -> None:
    message = refusal("a: 1\nb: \x00\n", RecipeError)
    assert message.startswith("recipe.yaml, line 2: could not read the YAML: the character U+0000")


def test_errors_pickle_for_beam() -> None:
    import pickle

    with pytest.raises(UnsafeRecipeError) as info:
        load("x: !!python/name:os.system\n")
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value)


# ------------------------------------------------------------------------------------------
# format_validation_error
# ------------------------------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Period(Strict):
    start: datetime.date
    end: datetime.date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class HttpSource(Strict):
    kind: Literal["http"]
    url: str
    dims: dict[str, Period] = {}


class FileSource(Strict):
    kind: Literal["file"]
    pattern: str


class Target(Strict):
    chunks: dict[str, int]
    format: Literal["zarr", "netcdf"] = "zarr"
    shards: int = Field(default=1, gt=0)


class Rename(Strict):
    rename: dict[str, str]


class Scale(Strict):
    scale: float


class Recipe(Strict):
    title: str
    source: Annotated[HttpSource | FileSource, Field(discriminator="kind")]
    target: Target
    transforms: list[Rename | Scale] = []
    version: int | str = 1


def problems_for(text: str, *, model: type[BaseModel] | None = Recipe) -> RecipeValidationError:
    data, source_map = load(text)
    with pytest.raises(pydantic.ValidationError) as info:
        Recipe.model_validate(data)
    return format_validation_error(info.value, source_map, filename="recipe.yaml", model=model)


def test_valid_recipe_passes_the_test_model() -> None:
    data, _ = load(RECIPE)
    recipe = Recipe.model_validate(data)
    assert recipe.source.dims["time"].start == datetime.date(2010, 1, 1)  # type: ignore[union-attr]


def test_validation_error_shape() -> None:
    error = problems_for(RECIPE.replace("title: ERA5 surface\n", "").replace("24", "many"))
    assert isinstance(error, RecipeValidationError)
    assert error.message == "recipe.yaml is not a valid recipe (2 problems)"
    assert error.where == "recipe.yaml"
    assert error.problems == (
        "recipe.yaml, line 1, field title: missing required field 'title'.",
        "recipe.yaml, line 9, field target.chunks.time: 'many' is not a valid whole number "
        "(expected digits such as 42).",
    )
    assert str(error).startswith("recipe.yaml: recipe.yaml is not a valid recipe (2 problems)\n")


def test_bad_date_in_nested_mapping() -> None:
    error = problems_for(RECIPE.replace("start: 2010-01-01", "start: not-a-date"))
    assert error.problems == (
        "recipe.yaml, line 7, field source.dims.time.start: 'not-a-date' is not a valid date "
        "(expected YYYY-MM-DD).",
    )
    assert error.message.endswith("(1 problem)")


def test_model_validator_message_without_prefix() -> None:
    error = problems_for(RECIPE.replace("end: 2010-12-31", "end: 2009-12-31"))
    assert error.problems == (
        "recipe.yaml, line 6, field source.dims.time: end must not be before start.",
    )


def test_unknown_field_with_did_you_mean() -> None:
    error = problems_for(RECIPE.replace("chunks:", "chunkz:"))
    # The misspelling also makes "chunks" missing; the suggestion covers both.
    assert error.problems == (
        "recipe.yaml, line 10, field target.chunkz: unknown field 'chunkz'. Did you mean 'chunks'?",
    )


def test_unknown_field_without_model_or_close_match() -> None:
    text = RECIPE + "colour: blue\n"
    assert problems_for(text, model=None).problems == (
        "recipe.yaml, line 14, field colour: unknown field 'colour'.",
    )
    assert problems_for(text).problems == (
        "recipe.yaml, line 14, field colour: unknown field 'colour'. "
        "Known fields here: source, target, title, transforms, version.",
    )


def test_wrong_types_show_expected_and_given() -> None:
    text = RECIPE.replace("url: https://example.org/era5.nc", "url: [1, 2]")
    text = text.replace("title: ERA5 surface", "title: " + "{a: " + "x" * 100 + "}")
    problems = problems_for(text).problems
    assert problems[0] == (
        "recipe.yaml, line 1, field title: expected text, got {'a': '"
        + "x" * 50
        + "... (a mapping)."
    )
    assert (
        problems[1] == "recipe.yaml, line 4, field source.url: expected text, got [1, 2] (a list)."
    )


def test_literal_and_bounds() -> None:
    text = RECIPE.replace(
        "  chunks: {time: 24, lat: 90}", "  chunks: {}\n  format: grib\n  shards: 0"
    )
    assert problems_for(text).problems == (
        "recipe.yaml, line 11, field target.format: 'grib' is not allowed; "
        "expected 'zarr' or 'netcdf'.",
        "recipe.yaml, line 12, field target.shards: must be greater than 0, got 0.",
    )


def test_list_items_and_union_branches() -> None:
    text = RECIPE.replace("scale: 0.5", "scale: abc") + "  - renam: {a: b}\n"
    assert problems_for(text).problems == (
        "recipe.yaml, line 13, field transforms[1].scale: 'abc' is not a valid number "
        "(expected a number such as 1.5).",
        "recipe.yaml, line 14, field transforms[2].renam: unknown field 'renam'. "
        "Did you mean 'rename'?",
    )


def test_union_of_scalars_merges_expectations() -> None:
    assert problems_for(RECIPE + "version: [1]\n").problems == (
        "recipe.yaml, line 14, field version: expected a whole number or text, got [1] (a list).",
    )


def test_discriminator_problems() -> None:
    text = RECIPE.replace("kind: http", "kind: ftp")
    (problem,) = problems_for(text).problems
    assert problem.startswith("recipe.yaml, line 2, field source: 'ftp' is not a known 'kind'")
    text = RECIPE.replace("  kind: http\n", "")
    (problem,) = problems_for(text).problems
    assert problem == (
        "recipe.yaml, line 2, field source: cannot tell what kind of entry this is: "
        "the field 'kind' is missing."
    )


def test_tagged_union_member_names_are_dropped_from_paths() -> None:
    text = RECIPE.replace("  url: https://example.org/era5.nc\n", "")
    assert problems_for(text).problems == (
        "recipe.yaml, line 2, field source.url: missing required field 'url'.",
    )


def test_top_level_type_error_has_no_field() -> None:
    data, source_map = load("- a\n- b\n")
    with pytest.raises(pydantic.ValidationError) as info:
        Recipe.model_validate(data)
    error = format_validation_error(info.value, source_map, filename="recipe.yaml")
    assert error.problems == ("recipe.yaml, line 1: expected a mapping, got ['a', 'b'] (a list).",)


def test_format_without_source_positions_keeps_field_names() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        Recipe.model_validate({"title": "t", "source": {"kind": "file"}, "target": {"chunks": {}}})
    error = format_validation_error(info.value, SourceMap(), filename="r.yaml")
    (problem,) = error.problems
    # Without positions the tag "file" cannot be told from a key, so it stays in the path.
    assert problem.startswith("r.yaml, field source.")
    assert problem.endswith("pattern: missing required field 'pattern'.")


# ------------------------------------------------------------------------------------------
# Property tests: nothing but RecipeError ever escapes
# ------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text_only_raises_recipe_errors(text: str) -> None:
    with contextlib.suppress(RecipeError):
        load_yaml(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=":-[]{}&*!|>'\"%@`#,?~ \n\tab01.<="))
def test_yaml_punctuation_only_raises_recipe_errors(text: str) -> None:
    with contextlib.suppress(RecipeError):
        load_yaml(text)


plain_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plain_data)
def test_dumped_data_round_trips(value: Any) -> None:
    text = yaml.safe_dump(value, allow_unicode=True)
    try:
        loaded, source_map = load_yaml(text)
    except RecipeError:
        return
    # PyYAML's own safe loader is the reference (it also reads "\x85" in a key as a line
    # break, so comparing with ``value`` itself would test PyYAML's dumper, not this module).
    assert loaded == yaml.safe_load(text)
    assert source_map.locate(()) is not None
