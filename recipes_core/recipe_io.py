"""Read a recipe file: safe YAML, then the typed model, with every error placed on its line."""

from __future__ import annotations

import difflib
import os
from typing import Any

import pydantic

from recipes_core.errors import ArcoError, RecipeValidationError
from recipes_core.model import TRANSFORM_NAMES, Recipe
from recipes_core.safe_yaml import SourceMap, format_validation_error, load_yaml_file


def _transform_problems(data: Any, source_map: SourceMap, filename: str) -> list[str]:
    """Name unknown transforms and suggest the closest known one (pydantic cannot)."""
    steps = data.get("transforms") if isinstance(data, dict) else None
    problems = []
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict) or len(step) != 1:
            continue
        name = next(iter(step))
        if name in TRANSFORM_NAMES:
            continue
        close = difflib.get_close_matches(str(name), TRANSFORM_NAMES, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        problems.append(
            f"{source_map.describe(('transforms', i))}, field transforms[{i}]: unknown transform "
            f"'{name}'.{hint} Known transforms: {', '.join(TRANSFORM_NAMES)}."
        )
    return problems


def load_recipe(path: str | os.PathLike[str]) -> tuple[Recipe, SourceMap]:
    """Load and validate a recipe file, or raise one error that lists every problem."""
    filename = os.fspath(path)
    data, source_map = load_yaml_file(filename)
    return validate_recipe(data, source_map, filename), source_map


def validate_recipe(data: Any, source_map: SourceMap, filename: str) -> Recipe:
    """The typed recipe from loaded YAML, or one error that lists every problem."""
    if not isinstance(data, dict):
        raise RecipeValidationError(
            f"{filename} is not a valid recipe: the top level must be a mapping of fields "
            "(id, title, source, ...)",
            where=filename,
        )
    try:
        return Recipe.model_validate(data)
    except pydantic.ValidationError as exc:
        error = format_validation_error(exc, source_map, filename=filename, model=Recipe)
        named = _transform_problems(data, source_map, filename)
        if named:
            # Replace pydantic's generic union message for these items with the named one.
            generic = [p for p in error.problems if "each transform is a mapping" not in p]
            problems = tuple(named + generic)
            error = RecipeValidationError(
                f"{filename} is not a valid recipe ({len(problems)} "
                f"problem{'s' if len(problems) != 1 else ''})",
                where=filename,
                problems=problems,
            )
        raise error from None


def place(source_map: SourceMap, field: str | None) -> str:
    """``file, line N, field a.b`` for a dotted field path such as ``target.chunks.lat``."""
    if not field:
        return source_map.filename
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in field.split(".")]
    return f"{source_map.describe(parts)}, field {field}"


def locate_field(recipe_file: str | None, field: str) -> str:
    """``file, line N, field a.b`` for a field of a recipe file, read again to find the line.

    For errors found long after loading (when the sources are opened); if the file cannot be
    read any more, the file and field alone.
    """
    if recipe_file is None:
        return field
    try:
        _, source_map = load_yaml_file(recipe_file)
    except (ArcoError, OSError):
        return f"{recipe_file}, field {field}"
    return place(source_map, field)
