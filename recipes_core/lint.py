"""`arco lint`: every problem in a recipe, one clear message each, before any I/O.

Lint never opens a source or a socket: it validates the schema, runs every semantic check
(:mod:`recipes_core.plan.checks`) and collects their problems rather than stopping at the first,
even on the parts of a recipe that validated when others did not, then checks the rules that
need the compiled plan (the URL policy in ``--untrusted`` mode, the sha256 manifest).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pydantic

from recipes_core.errors import ArcoError, RecipeValidationError
from recipes_core.model import Recipe
from recipes_core.model.recipe import Source, Target
from recipes_core.model.transforms import TransformStep
from recipes_core.plan import compile_recipe
from recipes_core.plan.checks import check_renamed_chunks, check_source, check_target
from recipes_core.plan.pattern import url_scheme
from recipes_core.plan.plan import Plan
from recipes_core.recipe_io import place, validate_recipe
from recipes_core.safe_yaml import SourceMap, load_yaml_file
from recipes_core.storage import AccessPolicy, check_url
from recipes_core.storage.pins import (
    check_manifest_location,
    parse_manifest,
    read_local_manifest,
)

# What a pull request may point at: public https and object stores, nothing local.
UNTRUSTED_POLICY = AccessPolicy(allow_local=False, allow_http=False, allow_private_hosts=False)
MAX_URLS_CHECKED = 200_000
MAX_URL_PROBLEMS = 20  # distinct refusals listed; a host placeholder could make thousands


@dataclass
class LintResult:
    path: str
    problems: list[str] = field(default_factory=list)
    recipe: Recipe | None = None
    plan: Plan | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _error_line(err: ArcoError, source_map: SourceMap | None, filename: str) -> str:
    where = err.where
    looks_like_field = (
        where
        and not where.startswith(("http", "/", "s3:", "gs:"))
        and " " not in where
        and where != filename
    )
    head = place(source_map, where) if (source_map and looks_like_field) else (where or filename)
    text = f"{head}: {err.message}"
    return text + (f" Fix: {err.fix}" if err.fix else "")


def lint_file(path: str | os.PathLike[str], *, untrusted: bool = False) -> LintResult:
    filename = os.fspath(path)
    result = LintResult(filename)
    try:
        data, source_map = load_yaml_file(filename)
    except ArcoError as err:
        result.problems.append(str(err))
        return result
    try:
        recipe = validate_recipe(data, source_map, filename)
    except RecipeValidationError as err:
        result.problems.extend(err.problems or [str(err)])
        result.problems.extend(
            _error_line(e, source_map, filename) for e in _partial_checks(data)
        )
        return result
    result.recipe = recipe
    problems = semantic_problems(recipe.source, recipe.target, recipe.transforms)
    if problems:
        result.problems.extend(_error_line(e, source_map, filename) for e in problems)
        return result
    try:
        plan = compile_recipe(recipe, filename)
    except ArcoError as err:  # the checks above are the compiler's, so this is a safety net
        result.problems.append(_error_line(err, source_map, filename))
        return result
    result.plan = plan
    if untrusted:
        result.problems.extend(_untrusted_sources(recipe, plan, source_map))
    result.problems.extend(_manifest_problems(recipe, plan, source_map, untrusted=untrusted))
    return result


def semantic_problems(
    source: Source | None, target: Target | None, transforms: list[TransformStep] | None
) -> list[ArcoError]:
    """Every rule between fields whose inputs are valid; ``None`` marks a part that is not."""
    problems: list[ArcoError] = []
    if source is not None:
        problems.extend(check_source(source).problems)
    if target is not None:
        merge = (
            None if source is None
            else {name for name, spec in source.dims.items() if spec.role == "merge"}
        )
        problems.extend(check_target(target, merge))
    if target is not None and transforms is not None:
        problems.extend(check_renamed_chunks(target, transforms))
    return problems


_TRANSFORMS = pydantic.TypeAdapter(list[TransformStep])


def _partial_checks(data: Any) -> list[ArcoError]:
    """The semantic checks on the parts of a recipe that validate on their own, so a schema
    error in one field does not hide a pattern or chunk problem in another."""
    if not isinstance(data, dict):
        return []

    def valid(validate: Any, key: str, default: Any) -> Any:
        try:
            return validate(data.get(key, default))
        except pydantic.ValidationError:
            return None  # already reported by the schema validation

    return semantic_problems(
        valid(Source.model_validate, "source", None),
        valid(Target.model_validate, "target", {}),
        valid(_TRANSFORMS.validate_python, "transforms", []),
    )


def _untrusted_sources(recipe: Recipe, plan: Plan, source_map: SourceMap) -> list[str]:
    """Check the policy on the sources without resolving any name (lint does no I/O)."""
    seen: set[str] = set()
    where = place(source_map, "source.pattern")
    raw = recipe.source.pattern
    urls = [raw] if "://" not in raw else []  # a relative pattern is refused as written
    urls += (
        [url for _, (_, url) in zip(range(MAX_URLS_CHECKED), plan.pattern.items(), strict=False)]
        if not urls
        else []
    )
    problems = []
    refused = 0
    for url in urls:
        try:
            check_url(url, UNTRUSTED_POLICY, resolve=False)
        except ArcoError as err:
            text = f"{where}: {err.message}" + (f" Fix: {err.fix}" if err.fix else "")
            if text not in seen:
                seen.add(text)
                refused += 1
                if refused <= MAX_URL_PROBLEMS:
                    problems.append(text + (f" ({err.where})" if err.where else ""))
    if refused > MAX_URL_PROBLEMS:
        problems.append(f"{where}: ... and {refused - MAX_URL_PROBLEMS} more refused sources.")
    return problems


def _manifest_problems(
    recipe: Recipe, plan: Plan, source_map: SourceMap, *, untrusted: bool
) -> list[str]:
    """Where source.sha256_manifest points (never outside the recipe's folder), and whether a
    manifest beside the recipe parses. Reads nothing but that file."""
    ref = recipe.source.sha256_manifest
    if not ref:
        return []
    where = place(source_map, "source.sha256_manifest")
    try:
        check_manifest_location(ref, untrusted=untrusted)
        if not url_scheme(ref):
            text, name = read_local_manifest(ref, plan.pattern.base_dir)
            parse_manifest(text, name)
    except ArcoError as err:
        return [f"{where}: {err.message}" + (f" Fix: {err.fix}" if err.fix else "")
                + (f" ({err.where})" if err.where and err.where != "source.sha256_manifest"
                   else "")]
    return []
