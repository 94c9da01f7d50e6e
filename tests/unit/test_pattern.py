"""File patterns: placeholder parsing, lazy keyed URLs in C order, and path/URL classification."""

from __future__ import annotations

import datetime as dt
import itertools

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recipes_core.plan.pattern import (
    FilePattern,
    PatternDim,
    is_relative_path,
    parse_placeholders,
    url_scheme,
)

# -- parse_placeholders -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("https://host/sst_{time}.nc", [("time", "")]),
        ("sst.mnmean_{time:%Y-%m}.nc", [("time", "%Y-%m")]),
        ("{var}/{time:%Y%m%d}_{member:03d}.grib", [("var", ""), ("time", "%Y%m%d"),
                                                   ("member", "03d")]),
        ("{time:%Y}/{time:%Y%m%d}.nc", [("time", "%Y"), ("time", "%Y%m%d")]),
        ("no/placeholders.nc", []),
        ("literal_{{braces}}_{t}.nc", [("t", "")]),
        ("", []),
    ],
)
def test_placeholders_are_bare_names_with_optional_specs(pattern, expected) -> None:
    assert parse_placeholders(pattern) == expected


@pytest.mark.parametrize(
    ("pattern", "fragments"),
    [
        ("{a.b}", ["{a.b}", "bare dimension name", "no attributes"]),
        ("{time.__class__}", ["{time.__class__}", "bare dimension name"]),
        ("{a[0]}", ["{a[0]}", "indexes"]),
        ("{0}", ["{0}", "positional"]),
        ("{}", ["{}", "bare dimension name"]),
        ("{ time}", ["{ time}", "bare dimension name"]),
        ("{a!r}", ["{a!r}", "conversions are not allowed"]),
        ("{a!s:>5}", ["{a!s}", "conversions are not allowed"]),
        ("{a:{b}}", ["{a:{b}}", "nested placeholders are not allowed"]),
        ("{a:>{width}}", ["nested placeholders are not allowed"]),
        ("file_{time.nc", ["not a valid format string", "'{{' for a brace"]),
        ("file_time}.nc", ["not a valid format string", "Single '}'"]),
        ("}{time}", ["not a valid format string"]),
        ("{time:%Y", ["not a valid format string", "{name:%Y%m%d}"]),
    ],
)
def test_refused_placeholders_say_why(pattern, fragments) -> None:
    with pytest.raises(ValueError) as info:
        parse_placeholders(pattern)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


@settings(max_examples=100, deadline=None)
@given(st.lists(
    st.tuples(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
        st.sampled_from(["", "%Y", "%Y%m%d", "03d", "%Y-%m-%dT%H"]),
    ),
    max_size=4,
))
def test_parse_round_trips_generated_patterns(fields) -> None:
    pattern = "root/" + "_".join(
        "{" + name + (":" + spec if spec else "") + "}" for name, spec in fields
    ) + ".nc"
    assert parse_placeholders(pattern) == fields


# -- FilePattern --------------------------------------------------------------------------------


def _days(n: int) -> PatternDim:
    return PatternDim("time", "concat", pd.date_range("2020-01-30", periods=n, freq="D"))


VARS = PatternDim("var", "merge", ("sst", "ice"))


def test_sources_are_numbered_in_c_order_over_dims() -> None:
    pattern = FilePattern("{var}/f_{time:%Y%m%d}.nc", (_days(3), VARS))
    assert pattern.shape == (3, 2)
    assert len(pattern) == 6
    assert [pattern.key_of(i) for i in range(6)] == [
        (0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1),
    ]
    assert list(pattern.items()) == [
        ((0, 0), "sst/f_20200130.nc"),
        ((0, 1), "ice/f_20200130.nc"),
        ((1, 0), "sst/f_20200131.nc"),
        ((1, 1), "ice/f_20200131.nc"),
        ((2, 0), "sst/f_20200201.nc"),
        ((2, 1), "ice/f_20200201.nc"),
    ]


def test_url_formats_dates_ints_and_keeps_literal_braces() -> None:
    members = PatternDim("member", "concat", (1, 12))
    pattern = FilePattern("{{x}}_{member:03d}_{time:%Y-%m-%dT%H}_{time}.nc", (members, _days(1)))
    assert pattern.url((1, 0)) == "{x}_012_2020-01-30T00_2020-01-30 00:00:00.nc"


def test_keys_are_python_values() -> None:
    dim = _days(2)
    assert dim.key(1) == dt.datetime(2020, 1, 31)
    assert type(dim.key(1)) is dt.datetime
    assert PatternDim("m", "concat", (3, 4)).key(1) == 4


def test_labels_are_short_dates_unless_times_matter() -> None:
    assert _days(1).label(0) == "2020-01-30"
    hourly = PatternDim("time", "concat", pd.date_range("2020-01-01", periods=3, freq="h"))
    assert hourly.label(0) == "2020-01-01"
    assert hourly.label(2) == "2020-01-01T02:00:00"
    assert VARS.label(1) == "ice"


def test_relative_paths_join_base_dir() -> None:
    pattern = FilePattern("data/f_{time:%Y%m%d}.nc", (_days(1),), base_dir="/recipes/demo/")
    assert pattern.url((0,)) == "/recipes/demo/data/f_20200130.nc"
    parent = FilePattern("../shared/{time:%Y}.nc", (_days(1),), base_dir="/recipes/demo")
    assert parent.url((0,)) == "/recipes/shared/2020.nc"  # normalised
    dot = FilePattern("./{time:%Y}.nc", (_days(1),), base_dir="/recipes/demo")
    assert dot.url((0,)) == "/recipes/demo/2020.nc"


@pytest.mark.parametrize(
    "template",
    [
        "/abs/data/f_{time:%Y%m%d}.nc",
        "https://host/data/f_{time:%Y%m%d}.nc",
        "s3://bucket/f_{time:%Y%m%d}.nc",
        "file:///abs/f_{time:%Y%m%d}.nc",
    ],
)
def test_absolute_paths_and_urls_are_untouched(template) -> None:
    pattern = FilePattern(template, (_days(1),), base_dir="/recipes/demo")
    assert pattern.url((0,)) == template.replace("{time:%Y%m%d}", "20200130")


def test_without_base_dir_relative_paths_stay_relative() -> None:
    assert FilePattern("f_{time:%Y}.nc", (_days(1),)).url((0,)) == "f_2020.nc"


def test_pruned_keeps_first_keys_of_concat_dims_only() -> None:
    pattern = FilePattern("{var}/{time:%Y%m%d}.nc", (_days(5), VARS), base_dir="/b")
    pruned = pattern.pruned(2)
    assert pruned.shape == (2, 2)
    assert len(pruned) == 4
    assert pruned.template == pattern.template and pruned.base_dir == "/b"
    assert list(pruned.dim("time").keys) == list(pattern.dim("time").keys[:2])
    assert pruned.dim("var").keys == ("sst", "ice")
    assert [u for _, u in pruned.items()] == [u for _, u in pattern.items()][:4]
    assert pattern.shape == (5, 2)  # the original is untouched
    assert pattern.pruned(100).shape == (5, 2)


def test_dim_lookup() -> None:
    pattern = FilePattern("{var}/{time}.nc", (_days(2), VARS))
    assert pattern.dim("var") is VARS
    with pytest.raises(KeyError):
        pattern.dim("nope")


def test_pattern_without_dims_is_empty() -> None:
    assert len(FilePattern("x.nc", ())) == 0
    assert list(FilePattern("x.nc", ()).items()) == []


def test_large_pattern_is_lazy() -> None:
    hours = PatternDim("time", "concat", pd.date_range("2000-01-01", periods=1_000_000, freq="h"))
    pattern = FilePattern("https://h/{time:%Y%m%d%H}.nc", (hours,))
    assert len(pattern) == 1_000_000
    assert pattern.url(pattern.key_of(999_999)) == "https://h/2114012915.nc"  # 2114-01-29T15


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4))
def test_key_of_enumerates_the_c_order_product(shape) -> None:
    dims = tuple(PatternDim(f"d{i}", "concat", tuple(range(n))) for i, n in enumerate(shape))
    pattern = FilePattern("_".join("{" + d.name + "}" for d in dims), dims)
    product = list(itertools.product(*(range(n) for n in shape)))
    assert len(pattern) == len(product)
    assert [pattern.key_of(i) for i in range(len(pattern))] == product
    assert all(type(i) is int for i in pattern.key_of(len(pattern) - 1))
    assert [u for _, u in pattern.items()] == ["_".join(map(str, k)) for k in product]


# -- url_scheme / is_relative_path --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("https://host/x.nc", "https"),
        ("HTTPS://host/x.nc", "https"),
        ("http://host/x.nc", "http"),
        ("s3://bucket/key", "s3"),
        ("gs://bucket/key", "gs"),
        ("abfs://container/key", "abfs"),
        ("file:///abs/x.nc", "file"),
        ("https://host/a?next=s3://b", "https"),
        ("C://data/x.nc", ""),  # a Windows drive letter, not a scheme
        ("c:\\data\\x.nc", ""),
        ("/abs/x.nc", ""),
        ("rel/x.nc", ""),
        ("x.nc", ""),
        ("", ""),
        ("://host/x", ""),
        ("a b://host/x", ""),
        ("dir/sub://x", ""),
        ("simplecache::s3://bucket/key", ""),
    ],
)
def test_url_scheme(url, scheme) -> None:
    assert url_scheme(url) == scheme


@pytest.mark.parametrize(
    ("url", "relative"),
    [
        ("x.nc", True),
        ("data/x.nc", True),
        ("../shared/x.nc", True),
        ("./x.nc", True),
        ("", True),
        ("/abs/x.nc", False),
        ("https://host/x.nc", False),
        ("s3://bucket/x.nc", False),
        ("file:///abs/x.nc", False),
        ("simplecache::https://example.org/x.nc", False),  # a chain, not a path
        ("zip::data/x.zip", False),
        ("data\\x.nc", False),
        ("data/[::1]/x.nc", True),  # brackets hold an IPv6 literal, not a chain
    ],
)
def test_is_relative_path(url, relative) -> None:
    assert is_relative_path(url) is relative


def test_chained_urls_are_left_as_written_for_the_policy_to_refuse() -> None:
    template = "simplecache::https://example.org/f_{time:%Y%m%d}.nc"
    pattern = FilePattern(template, (_days(1),), base_dir="/recipes/demo")
    expected = "simplecache::https://example.org/f_20200130.nc"
    assert pattern.url((0,)) == expected
    assert [url for _, url in pattern.items()] == [expected]


# -- expanding every source at once -------------------------------------------------------------

_DIRECTIVES = ["%Y", "%m", "%d", "%H", "%M", "%S", "%j", "%y", "%%", "%b", "%a", "%G", "%V"]


@settings(max_examples=150, deadline=None)
@given(
    start=st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9990, 1, 1)),
    periods=st.integers(1, 40),
    freq=st.sampled_from(["D", "6h", "MS", "YS", "17min", "s", "h"]),
    pieces=st.lists(st.one_of(st.sampled_from(_DIRECTIVES), st.sampled_from(["", "-", "/", "T",
                                                                             "x_", ".nc"])),
                    max_size=8),
)
def test_strftime_all_matches_pandas(start, periods, freq, pieces) -> None:
    from recipes_core.plan.strftime import strftime_all

    try:
        dates = pd.date_range(start, periods=periods, freq=freq, unit="s")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        return  # past the year 9999
    spec = "".join(pieces)
    assert strftime_all(dates, spec) == dates.strftime(spec).tolist()


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    order=st.randoms(use_true_random=False),
    relative=st.booleans(),
)
def test_items_are_each_keys_url(sizes, order, relative) -> None:
    """Expanding all sources at once gives, key for key, what ``url`` gives for one: dims
    placed anywhere in the template, repeated, or absent (shared files)."""
    dims = tuple(PatternDim(f"d{i}", "merge", tuple(range(10, 10 + n)))
                 for i, n in enumerate(sizes[1:]))
    dims = (PatternDim("time", "concat", pd.date_range("1999-12-30", periods=sizes[0],
                                                       freq="D")), *dims)
    fields = ["{time:%Y%m%d}", "{time:%H}", *("{" + d.name + ":03d}" for d in dims[1:])]
    fields += ["{" + d.name + "}" for d in dims[1:]]
    order.shuffle(fields)
    kept = fields[: order.randint(1, len(fields))]
    template = ("../" if relative else "https://h/") + "_".join(kept) + ".nc"
    pattern = FilePattern(template, dims, base_dir="/base/dir")
    keys = list(itertools.product(*(range(len(d)) for d in dims)))
    assert list(pattern.items()) == [(key, pattern.url(key)) for key in keys]
