"""Fixtures for the catalogue tests: a baked ERSST target shared by the read-only tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import dask
import pytest

from recipes_core.bake import BakeResult, bake
from recipes_core.plan import compile_recipe
from recipes_core.recipe_io import load_recipe
from recipes_core.storage import AccessPolicy

ERSST = Path(__file__).resolve().parents[2] / "recipes" / "examples" / "ersst-v5-monthly.yaml"
ERSST_ID = "ersst-v5-monthly"


def bake_recipe(recipe: Path, target: Path, cache: Path, prune: int | None = None) -> BakeResult:
    loaded, _ = load_recipe(recipe)
    plan = compile_recipe(loaded, recipe)
    if prune:
        plan = plan.prune(prune)
    return bake(plan, str(target), cache_dir=str(cache), policy=AccessPolicy(allow_local=True))


@pytest.fixture(autouse=True)
def local_dask_scheduler() -> Iterator[None]:
    """Read lazily opened stores on local threads, whatever scheduler another test left set."""
    with dask.config.set(scheduler="threads"):
        yield


@pytest.fixture(scope="session")
def ersst_target(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A target root holding one full bake of the ERSST example (read-only for tests)."""
    root = tmp_path_factory.mktemp("ersst-catalog")
    bake_recipe(ERSST, root / "target", root / "cache")
    return root / "target"


@pytest.fixture
def bake_into(tmp_path: Path) -> Callable[..., BakeResult]:
    """Bake a recipe file into a target root (default tmp_path/target)."""

    def run(recipe: Path, target: Path | None = None, prune: int | None = None) -> BakeResult:
        return bake_recipe(recipe, target or tmp_path / "target", tmp_path / "cache", prune)

    return run
