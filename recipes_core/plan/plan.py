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
from recipes_core.plan.checks import MAX_SOURCES, check_source, check_target
from recipes_core.plan.pattern import FilePattern, PatternDim, SourceKey
from recipes_core.recipe_io import locate_field
from recipes_core.redact import redact_url

PLAN_VERSION = 1
DEFAULT_CHUNK_BYTES = 100 * 1000 * 1000
__all__ = ["DEFAULT_CHUNK_BYTES", "MAX_SOURCES", "Plan", "compile_recipe", "resolve_chunks"]


@dataclass(frozen=True, eq=False)
class Plan:
    """A compiled recipe. Pure data: safe to pickle to any worker."""

    recipe: Recipe
    pattern: FilePattern
    pruned: int | None = None
    recipe_file: str | None = None  # the recipe's absolute path, to place errors on its lines

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
        return self.pattern.items()

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


def compile_recipe(recipe: Recipe, recipe_path: str | os.PathLike[str] | None = None) -> Plan:
    """Compile a validated recipe into a plan. Opens no file and touches no network.

    Raises the first problem found; ``arco lint`` reports them all (:mod:`.checks`).
    """
    checked = check_source(recipe.source)
    problems = checked.problems + check_target(recipe.target, set(recipe.merge_dims))
    if problems:
        raise problems[0]
    recipe_file = base_dir = None
    if recipe_path is not None:
        recipe_file = os.path.abspath(os.fspath(recipe_path))
        base_dir = os.path.dirname(recipe_file)
    pattern = FilePattern(recipe.source.pattern, checked.dims, base_dir)
    return Plan(recipe=recipe, pattern=pattern, recipe_file=recipe_file)


def resolve_chunks(
    recipe_chunks: Mapping[str, int] | None,
    chunk_size: int | None,
    dim_sizes: Mapping[str, int],
    concat_dims: tuple[str, ...],
    bytes_per_concat_step: int,
    *,
    recipe_file: str | None = None,
) -> dict[str, int]:
    """Concrete chunk sizes for every dimension of the dataset.

    Dimensions the recipe names keep their size (``-1``: the whole dimension). Others span the
    whole dimension, except concat dimensions, which take as many steps as fit in
    ``chunk_size`` (default 100 MB) for the largest variable. ``recipe_file`` (the plan's)
    lets a refusal name the line of the offending ``target.chunks`` entry.
    """
    chunks = dict(recipe_chunks or {})
    unknown = sorted(set(chunks) - set(dim_sizes))
    if unknown:
        raise PlanError(
            f"target.chunks names {', '.join(unknown)}, which the dataset does not have "
            f"(its dimensions: {', '.join(dim_sizes)})",
            where=locate_field(recipe_file, f"target.chunks.{unknown[0]}"),
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
