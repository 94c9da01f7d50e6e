"""Shared fixtures: the real data beside the checkout, recipe files, and a bake helper."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from recipes_core.bake import BakeResult, bake
from recipes_core.plan import compile_recipe
from recipes_core.recipe_io import load_recipe
from recipes_core.storage import AccessPolicy

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
EXAMPLES = ROOT / "recipes" / "examples"

logging.getLogger("apache_beam").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not (REAL / "SOURCES.md").exists():
        pytest.skip("../shared/data/real is not beside the checkout (CI has it)")
    return REAL


def recipe_dict(pattern: str, dims: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A minimal valid recipe; keyword arguments override or add top-level fields."""
    recipe: dict[str, Any] = {
        "id": "test-recipe",
        "title": "A test recipe",
        "description": "Made by a test.",
        "license": "CC-BY-4.0",
        "maintainers": [{"name": "Tester", "github": "tester"}],
        "source": {"pattern": pattern, "dims": dims, "format": "netcdf4"},
    }
    recipe.update(fields)
    return recipe


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    def write(recipe: dict[str, Any], name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        return path

    return write


@pytest.fixture
def bake_file(tmp_path: Path) -> Callable[..., BakeResult]:
    """Bake a recipe file into tmp_path/target on the direct runner."""

    def run(path: Path, *, prune: int | None = None, target: Path | None = None,
            **policy: Any) -> BakeResult:
        recipe, _ = load_recipe(path)
        plan = compile_recipe(recipe, path)
        if prune:
            plan = plan.prune(prune)
        policy.setdefault("allow_local", True)
        policy.setdefault("allow_http", True)  # tests serve loopback archives over plain http
        return bake(plan, str(target or tmp_path / "target"), cache_dir=str(tmp_path / "cache"),
                    policy=AccessPolicy(**policy))

    return run
