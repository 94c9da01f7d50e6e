"""Compile a validated recipe into a frozen plan, and hash it.

The plan holds everything a bake needs that can be known without opening a file: the keyed
sources, the transforms, the target layout. Its hash covers exactly what changes the output
bytes, so two recipes that differ only in their description bake to the same plan hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from recipes_core.errors import PlanError
from recipes_core.model import Recipe
from recipes_core.model.recipe import parse_date, parse_freq
from recipes_core.plan.chunks import check_shards_align
from recipes_core.plan.pattern import FilePattern, PatternDim, SourceKey, parse_placeholders
from recipes_core.redact import redact_url

PLAN_VERSION = 1
DEFAULT_CHUNK_BYTES = 100 * 1000 * 1000
MAX_SOURCES = 10_000_000


@dataclass(frozen=True, eq=False)
class Plan:
    """A compiled recipe. Pure data: safe to pickle to any worker."""

    recipe: Recipe
    pattern: FilePattern
    pruned: int | None = None

    @property
    def id(self) -> str:
        return self.recipe.id

    @property
    def concat_dims(self) -> tuple[PatternDim, ...]:
        return tuple(d for d in self.pattern.dims if d.role == "concat")

    @property
    def merge_dims(self) -> tuple[PatternDim, ...]:
        return tuple(d for d in self.pattern.dims if d.role == "merge")

    @property
    def nsources(self) -> int:
        return len(self.pattern)

    def sources(self) -> list[tuple[SourceKey, str]]:
        return list(self.pattern.items())

    def first_last_urls(self) -> tuple[str, str]:
        n = self.nsources
        return self.pattern.url(self.pattern.key_of(0)), self.pattern.url(
            self.pattern.key_of(n - 1)
        )

    def prune(self, n: int) -> Plan:
        """Keep only the first ``n`` keys of each concat dimension (for test bakes)."""
        if n < 1:
            raise PlanError(f"--prune must be at least 1, got {n}")
        return replace(self, pattern=self.pattern.pruned(n), pruned=n)

    def hash_payload(self) -> dict[str, Any]:
        """What determines the output bytes: sources, opening, transforms and target layout."""
        recipe = self.recipe
        return {
            "plan_version": PLAN_VERSION,
            "id": recipe.id,
            "pattern": self.pattern.template,
            "base_dir": self.pattern.base_dir,
            "dims": {
                d.name: {
                    "role": d.role,
                    "n": len(d),
                    "first": d.label(0),
                    "last": d.label(len(d) - 1),
                    "items_per_file": d.items_per_file,
                    "keys_digest": _keys_digest(d),
                }
                for d in self.pattern.dims
            },
            "format": recipe.source.format,
            "open": recipe.source.open.model_dump(mode="json"),
            "sha256": recipe.source.sha256,
            "transforms": [t.model_dump(mode="json", by_alias=True) for t in recipe.transforms],
            "target": recipe.target.model_dump(mode="json"),
        }

    @property
    def hash(self) -> str:
        return _digest(self.hash_payload())

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for ``arco plan``."""
        first, last = (redact_url(u) for u in self.first_last_urls())  # no tokens on screen
        target = self.recipe.target
        return {
            "id": self.id,
            "plan_hash": self.hash,
            "sources": self.nsources,
            "first_url": first,
            "last_url": last,
            "dims": [
                {
                    "name": d.name,
                    "role": d.role,
                    "keys": len(d),
                    "first": d.label(0),
                    "last": d.label(len(d) - 1),
                    "items_per_file": d.items_per_file,
                }
                for d in self.pattern.dims
            ],
            "format": self.recipe.source.format,
            "transforms": [t.name for t in self.recipe.transforms],
            "target": {
                "zarr_format": target.zarr_format,
                "chunks": target.chunks or {},
                "chunk_size": int(target.chunk_size) if target.chunk_size else None,
                "shards": target.shards,
                "codec": target.codec.model_dump(),
            },
            "pruned": self.pruned,
        }


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _keys_digest(dim: PatternDim) -> str:
    if isinstance(dim.keys, pd.DatetimeIndex):
        return hashlib.sha256(dim.keys.asi8.tobytes()).hexdigest()
    return _digest([str(k) for k in dim.keys])


def recipe_hash(recipe: Recipe) -> str:
    return _digest(recipe.model_dump(mode="json", by_alias=True))


def _pattern_dim(name: str, spec: Any) -> PatternDim:
    if spec.role == "merge":
        return PatternDim(name, "merge", tuple(spec.values))
    if spec.keys is not None:
        return PatternDim(name, "concat", tuple(spec.keys), spec.items_per_file)
    start, end, offset = parse_date(spec.start), parse_date(spec.end), parse_freq(spec.freq)
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


def compile_recipe(recipe: Recipe, recipe_path: str | os.PathLike[str] | None = None) -> Plan:
    """Compile a validated recipe into a plan. Opens no file and touches no network."""
    source = recipe.source
    try:
        placeholders = parse_placeholders(source.pattern)
    except ValueError as err:
        raise PlanError(str(err), where="source.pattern") from None
    names = {name for name, _ in placeholders}
    unknown = sorted(names - set(source.dims))
    unused = sorted(set(source.dims) - names)
    if unknown:
        raise PlanError(
            f"the pattern uses {', '.join('{' + n + '}' for n in unknown)}, "
            f"which {'is' if len(unknown) == 1 else 'are'} not declared under source.dims",
            where="source.pattern",
            fix=f"declare {unknown[0]} under source.dims, or fix the placeholder's spelling.",
        )
    if unused:
        raise PlanError(
            f"source.dims declares {', '.join(unused)} but the pattern never uses "
            f"{'it' if len(unused) == 1 else 'them'}, so every key would name the same file",
            where="source.dims",
            fix=f"add {{{unused[0]}}} to the pattern, or remove the dimension.",
        )
    dims = tuple(_pattern_dim(name, spec) for name, spec in source.dims.items())
    for dim in dims:
        for name, spec in placeholders:
            if name != dim.name:
                continue
            # Date ranges hold one type, so the first key stands for all; listed keys are
            # all checked (a YAML file can hold only so many).
            try:
                for i in range(1 if isinstance(dim.keys, pd.DatetimeIndex) else len(dim)):
                    format(dim.key(i), spec)
            except (ValueError, TypeError) as err:
                raise PlanError(
                    f"placeholder {{{name}:{spec}}} cannot format a key of '{name}': {err}",
                    where="source.pattern",
                    fix="use a strftime format such as %Y%m%d for dates, or 03d for integers.",
                ) from None
    concat = [d for d in dims if d.role == "concat"]
    if not concat:
        raise PlanError(
            "the pattern has no concat dimension, so there is nothing to lay files along",
            where="source.dims",
            fix="declare a date range (start, end, freq) or a list of keys for one dimension.",
        )
    target = recipe.target
    for dim_name in target.chunks or {}:
        if dim_name in {d.name for d in dims if d.role == "merge"}:
            raise PlanError(
                f"'{dim_name}' is a merge dimension (files holding different variables); "
                "it does not exist in the dataset and cannot be chunked",
                where=f"target.chunks.{dim_name}",
                fix=f"remove {dim_name} from target.chunks.",
            )
    if target.shards:
        check_shards_align(target.chunks or {}, target.shards)
    base_dir = None
    if recipe_path is not None:
        base_dir = os.path.dirname(os.path.abspath(os.fspath(recipe_path)))
    return Plan(recipe=recipe, pattern=FilePattern(source.pattern, dims, base_dir))


def resolve_chunks(
    recipe_chunks: Mapping[str, int] | None,
    chunk_size: int | None,
    dim_sizes: Mapping[str, int],
    concat_dims: tuple[str, ...],
    bytes_per_concat_step: int,
) -> dict[str, int]:
    """Concrete chunk sizes for every dimension of the dataset.

    Dimensions the recipe names keep their size (``-1``: the whole dimension). Others span the
    whole dimension, except concat dimensions, which take as many steps as fit in
    ``chunk_size`` (default 100 MB) for the largest variable.
    """
    chunks = dict(recipe_chunks or {})
    unknown = sorted(set(chunks) - set(dim_sizes))
    if unknown:
        raise PlanError(
            f"target.chunks names {', '.join(unknown)}, which the dataset does not have "
            f"(its dimensions: {', '.join(dim_sizes)})",
            where=f"target.chunks.{unknown[0]}",
            fix="chunk only dimensions of the dataset after transforms (check rename/squeeze).",
        )
    resolved: dict[str, int] = {}
    budget = chunk_size or DEFAULT_CHUNK_BYTES
    for dim, size in dim_sizes.items():
        want = chunks.get(dim)
        if want is None and dim in concat_dims:
            want = max(1, budget // max(1, bytes_per_concat_step))
        if want is None or want == -1 or want > size:
            want = size
        resolved[dim] = max(1, want)
    return resolved
