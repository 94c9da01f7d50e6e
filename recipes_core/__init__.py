"""arco-recipes: compile declarative recipes into Beam pipelines that bake analysis-ready Zarr.

``recipes_core.open_dataset(catalog, id)`` opens a catalogued dataset; it is imported on first
use so that ``import recipes_core`` stays light (no xarray, pystac or Beam).
"""

from __future__ import annotations

from typing import Any

__all__ = ["open_dataset"]


def __getattr__(name: str) -> Any:
    if name == "open_dataset":
        from recipes_core.stac.open import open_dataset

        return open_dataset
    raise AttributeError(f"module 'recipes_core' has no attribute {name!r}")
