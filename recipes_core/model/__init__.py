"""The recipe model: typed, validated, pure data. No Beam, no I/O.

A recipe is parsed from YAML by :mod:`recipes_core.safe_yaml` and validated by these pydantic
models. Everything here can be imported on a machine without any engine installed.
"""

from recipes_core.model.recipe import (
    Catalog,
    Codec,
    DimSpec,
    Maintainer,
    OpenOptions,
    Provider,
    Recipe,
    Source,
    Target,
)
from recipes_core.model.transforms import TRANSFORM_NAMES, TransformStep

__all__ = [
    "TRANSFORM_NAMES",
    "Catalog",
    "Codec",
    "DimSpec",
    "Maintainer",
    "OpenOptions",
    "Provider",
    "Recipe",
    "Source",
    "Target",
    "TransformStep",
]
