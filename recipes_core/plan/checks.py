"""The recipe rules that need more than one field at once, each problem collected, none raised.

:func:`~recipes_core.plan.plan.compile_recipe` raises the first problem these checks find;
``arco lint`` reports every one of them, and runs the checks whose inputs validated even when
other fields of the recipe did not (DESIGN §3: every problem in one pass).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from recipes_core.errors import PlanError
from recipes_core.model.recipe import DimSpec, Source, Target, parse_date, parse_freq
from recipes_core.model.transforms import TransformStep
from recipes_core.plan.chunks import check_shards_align
from recipes_core.plan.pattern import PatternDim, parse_placeholders

MAX_SOURCES = 10_000_000
# Keys of a date range whose file names must all differ. A name that drops part of the date
# (%Y%m for a daily range, %y over a century) repeats within a few hundred keys, so checking
# the first ten thousand finds it while keeping 100,000-source plans fast.
DISTINCT_KEYS_CHECKED = 10_000
# The strftime directives Python documents as portable (C89 plus ISO 8601 %G %u %V); pandas
# formats dates with Python's strftime. Anything else (%q, %-d, %E...) depends on the C library
# and is copied through as text on glibc, so every key would name the same file.
STRFTIME_DIRECTIVES = frozenset("aAbBcdfGHIjmMpSuUVwWxXyYzZ%")
_FORMAT_FIX = "use a strftime format such as %Y%m%d for dates, or 03d for integers."


@dataclass
class SourceCheck:
    """What the source checks found: the placeholders, the dims that built, the problems."""

    placeholders: list[tuple[str, str]] = field(default_factory=list)
    dims: tuple[PatternDim, ...] = ()
    problems: list[PlanError] = field(default_factory=list)


def pattern_dim(name: str, spec: DimSpec) -> PatternDim:
    """The keys of one dimension, or a PlanError saying why the range cannot be built."""
    if spec.role == "merge":
        return PatternDim(name, "merge", tuple(spec.values or ()))
    if spec.keys is not None:
        return PatternDim(name, "concat", tuple(spec.keys), spec.items_per_file)
    start, end = parse_date(spec.start), parse_date(spec.end)
    offset = parse_freq(spec.freq or "")
    if isinstance(offset, pd.offsets.Tick) and (end - start) // pd.Timedelta(offset) > MAX_SOURCES:
        raise PlanError(
            f"the date range of '{name}' has more than {MAX_SOURCES:,} steps",
            where=f"source.dims.{name}",
            fix="split the archive into several recipes, or use a coarser frequency.",
        )
    keys = pd.date_range(start, end, freq=offset)
    if len(keys) == 0:
        raise PlanError(
            f"the date range of '{name}' is empty: no {spec.freq} dates between "
            f"{spec.start} and {spec.end}",
            where=f"source.dims.{name}",
            fix="widen the range or pick a frequency whose anchor falls inside it "
            "(e.g. MS for the first of each month).",
        )
    return PatternDim(name, "concat", keys, spec.items_per_file)


def check_source(source: Source) -> SourceCheck:
    """Placeholders against dims, the date ranges, and the placeholders' format specs."""
    try:
        placeholders = parse_placeholders(source.pattern)
    except ValueError as err:
        return SourceCheck(problems=[PlanError(str(err), where="source.pattern")])
    result = SourceCheck(placeholders=placeholders)
    names = {name for name, _ in placeholders}
    unknown = sorted(names - set(source.dims))
    unused = sorted(set(source.dims) - names)
    if unknown:
        result.problems.append(PlanError(
            f"the pattern uses {', '.join('{' + n + '}' for n in unknown)}, "
            f"which {'is' if len(unknown) == 1 else 'are'} not declared under source.dims",
            where="source.pattern",
            fix=f"declare {unknown[0]} under source.dims, or fix the placeholder's spelling.",
        ))
    if unused:
        result.problems.append(PlanError(
            f"source.dims declares {', '.join(unused)} but the pattern never uses "
            f"{'it' if len(unused) == 1 else 'them'}, so every key would name the same file",
            where="source.dims",
            fix=f"add {{{unused[0]}}} to the pattern, or remove the dimension.",
        ))
    dims = []
    for name, spec in source.dims.items():
        try:
            dims.append(pattern_dim(name, spec))
        except PlanError as err:
            result.problems.append(err)
    result.dims = tuple(dims)
    unformattable: list[PlanError] = []
    repeated: list[PlanError] = []
    for dim in dims:
        specs = [spec for name, spec in placeholders if name == dim.name]
        if specs:
            bad, same = _format_problems(dim, specs)
            unformattable += bad
            repeated += same
    # A spec that cannot format a key is the cause; repeated names elsewhere may follow from it.
    result.problems.extend(unformattable or repeated)
    if not any(spec.role == "concat" for spec in source.dims.values()):
        result.problems.append(PlanError(
            "the pattern has no concat dimension, so there is nothing to lay files along",
            where="source.dims",
            fix="declare a date range (start, end, freq) or a list of keys for one dimension.",
        ))
    return result


def _bad_directive(spec: str) -> str | None:
    """The first strftime directive of ``spec`` that is not portable, e.g. '%q' or '%-d'."""
    i = spec.find("%")
    while i >= 0:
        directive = spec[i : i + 2]
        if len(directive) < 2 or directive[1] not in STRFTIME_DIRECTIVES:
            return directive
        i = spec.find("%", i + 2)
    return None


def _format_problems(
    dim: PatternDim, specs: Sequence[str]
) -> tuple[list[PlanError], list[PlanError]]:
    """Specs that cannot format a key of ``dim``, and keys that would name one file."""
    dates = isinstance(dim.keys, pd.DatetimeIndex)
    for spec in specs:
        bad = _bad_directive(spec) if dates else None
        if bad is not None:
            return [PlanError(
                f"placeholder {{{dim.name}:{spec}}} uses {bad!r}, which is not a strftime "
                "directive Python supports on every platform (it would be copied into the file "
                "name as text)",
                where="source.pattern",
                fix="use the standard directives: %Y year, %m month, %d day, %H hour, "
                "%M minute, %j day of year (always zero-padded).",
            )], []
    # Date ranges hold one type, so their first keys stand for all; listed keys are all
    # checked (a YAML file can hold only so many).
    n = min(len(dim), DISTINCT_KEYS_CHECKED) if dates else len(dim)
    columns = []
    for spec in specs:
        try:
            columns.append(_formatted(dim, spec, n))
        except (ValueError, TypeError) as err:
            return [PlanError(
                f"placeholder {{{dim.name}:{spec}}} cannot format a key of '{dim.name}': {err}",
                where="source.pattern",
                fix=_FORMAT_FIX,
            )], []
    return [], _repeated_names(dim, specs, list(zip(*columns, strict=True)))


def _formatted(dim: PatternDim, spec: str, n: int) -> list[str]:
    if isinstance(dim.keys, pd.DatetimeIndex) and "%" in spec:
        return list(dim.keys[:n].strftime(spec))  # what FilePattern.items() writes
    return [format(dim.key(i), spec) for i in range(n)]


def _repeated_names(
    dim: PatternDim, specs: Sequence[str], names: Sequence[tuple[str, ...]]
) -> list[PlanError]:
    """Two keys that format to the same text would read one file twice."""
    seen: dict[tuple[str, ...], int] = {}
    for i, name in enumerate(names):
        first = seen.setdefault(name, i)
        if first != i:
            shown = ", ".join(f"{{{dim.name}:{s}}}" if s else f"{{{dim.name}}}" for s in specs)
            return [PlanError(
                f"{shown} gives the same text ({'/'.join(name)!r}) for the keys "
                f"{dim.label(first)} and {dim.label(i)} of '{dim.name}', so both would read "
                "one file",
                where="source.pattern",
                fix="put every part of the key that changes from file to file in the pattern "
                "(e.g. %Y%m%d for a daily range); when one file holds several steps, use a "
                "coarser freq with items_per_file.",
            )]
    return []


def check_target(target: Target, merge_dims: Collection[str] | None) -> list[PlanError]:
    """Chunks on merge dims (unless ``None``: the source is not known), and shards that are
    not whole multiples of chunks."""
    problems = [
        PlanError(
            f"'{dim}' is a merge dimension (files holding different variables); "
            "it does not exist in the dataset and cannot be chunked",
            where=f"target.chunks.{dim}",
            fix=f"remove {dim} from target.chunks.",
        )
        for dim in target.chunks or {}
        if merge_dims is not None and dim in merge_dims
    ]
    if target.shards:
        try:
            check_shards_align(target.chunks or {}, target.shards)
        except PlanError as err:
            problems.append(err)
    return problems


def check_renamed_chunks(target: Target, transforms: Iterable[TransformStep]) -> list[PlanError]:
    """Chunks on a dimension that a ``rename`` transform takes away."""
    renamed: dict[str, str] = {}
    for step in transforms:
        if step.name == "rename":
            renamed.update(step.params)
    return [
        PlanError(
            f"'{dim}' is renamed to '{renamed[dim]}' by a transform, so the target has no "
            f"'{dim}'",
            where=f"target.chunks.{dim}",
            fix=f"chunk '{renamed[dim]}' instead.",
        )
        for dim in target.chunks or {}
        if dim in renamed and dim not in renamed.values()
    ]
