"""The fixed registry of recipe transforms, each with typed parameters.

A recipe lists transforms as one-key mappings (``- rename: {lat: latitude}``). Each key selects a
model below; the parameters are validated like every other field. Transforms never name code:
the functions that apply them live in :mod:`recipes_core.ops` and are looked up by name.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

Name = Annotated[str, Field(min_length=1, max_length=256)]
# Parameters are small by nature; a cap keeps an untrusted recipe from smuggling megabytes in.
MAX_ITEMS = 1000
AttrValue = str | int | float | bool | list[str | int | float | bool] | None


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def name(self) -> str:
        return next(iter(type(self).model_fields))

    @property
    def params(self) -> Any:
        return getattr(self, self.name)


class SelectVariables(_Step):
    """Keep only these data variables (and the coordinates they need)."""

    select_variables: Annotated[list[Name], Field(min_length=1, max_length=MAX_ITEMS)]


class DropVariables(_Step):
    """Drop these variables (data variables or coordinates)."""

    drop_variables: Annotated[list[Name], Field(min_length=1, max_length=MAX_ITEMS)]


class Rename(_Step):
    """Rename variables, coordinates or dimensions: ``{old: new}``."""

    rename: Annotated[dict[Name, Name], Field(min_length=1, max_length=MAX_ITEMS)]


class AttrUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Annotated[dict[Name, AttrValue], Field(max_length=MAX_ITEMS)] = {}
    variables: Annotated[
        dict[Name, Annotated[dict[Name, AttrValue], Field(max_length=MAX_ITEMS)]],
        Field(max_length=MAX_ITEMS),
    ] = {}

    @field_validator("dataset", "variables")
    @classmethod
    def _short_strings(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_attr_sizes(value)
        return value


def _check_attr_sizes(value: Any) -> None:
    if isinstance(value, str) and len(value) > 16_384:
        raise ValueError("an attribute value is longer than 16384 characters")
    if isinstance(value, dict):
        for item in value.values():
            _check_attr_sizes(item)
    if isinstance(value, list):
        for item in value:
            _check_attr_sizes(item)


class SetAttrs(_Step):
    """Set (or, with ``null``, delete) global and per-variable attributes."""

    set_attrs: AttrUpdate


class Bound(BaseModel):
    """A label or position slice; ``start``/``stop`` are inclusive for labels, like xarray."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str | int | float | None = None
    stop: str | int | float | None = None
    step: int | None = None


Indexer = Bound | str | int | float


class Sel(_Step):
    """Select by coordinate label: a scalar, or a slice ``{start, stop}``."""

    sel: Annotated[dict[Name, Indexer], Field(min_length=1, max_length=64)]


class PositionalBound(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: int | None = None
    stop: int | None = None
    step: Annotated[int, Field(gt=0)] | None = None


class Isel(_Step):
    """Select by position: an integer, or a slice ``{start, stop, step}``."""

    isel: Annotated[dict[Name, PositionalBound | int], Field(min_length=1, max_length=64)]


DType = Literal[
    "float16", "float32", "float64",
    "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64",
    "bool",
]  # fmt: skip


class AsType(_Step):
    """Cast variables to another dtype: ``{sst: float32}``."""

    astype: Annotated[dict[Name, DType], Field(min_length=1, max_length=MAX_ITEMS)]


class Squeeze(_Step):
    """Drop dimensions of length one (all of them when the list is empty)."""

    squeeze: Annotated[list[Name], Field(max_length=64)] = []


class ExpandDim(BaseModel):
    """Add a leading dimension; with ``from_key`` its coordinate is the file's key along it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: Name
    value: str | int | float | None = None
    from_key: bool = False


class ExpandDims(_Step):
    expand_dims: ExpandDim


class VariableEncoding(BaseModel):
    """How a variable is stored. ``null`` removes a key inherited from the source."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    dtype: DType | None = None
    fill_value: float | int | None = Field(default=None, alias="_FillValue")
    scale_factor: float | None = None
    add_offset: float | None = None
    units: Annotated[str, Field(max_length=256)] | None = None
    calendar: Annotated[str, Field(max_length=64)] | None = None
    drop_missing_value: bool = False


class SetEncoding(_Step):
    """Choose the stored encoding of variables: dtype, fill value, packing, time units."""

    set_encoding: Annotated[dict[Name, VariableEncoding], Field(min_length=1, max_length=MAX_ITEMS)]


_STEPS: tuple[type[_Step], ...] = (
    SelectVariables,
    DropVariables,
    Rename,
    SetAttrs,
    Sel,
    Isel,
    AsType,
    Squeeze,
    ExpandDims,
    SetEncoding,
)
TRANSFORM_NAMES: tuple[str, ...] = tuple(next(iter(s.model_fields)) for s in _STEPS)


def _step_tag(value: Any) -> str | None:
    """Pick the transform model from the single key of the mapping (or the model itself)."""
    if isinstance(value, _Step):
        return value.name
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return key if isinstance(key, str) else None
    return None


TransformStep = Annotated[
    Annotated[SelectVariables, Tag("select_variables")]
    | Annotated[DropVariables, Tag("drop_variables")]
    | Annotated[Rename, Tag("rename")]
    | Annotated[SetAttrs, Tag("set_attrs")]
    | Annotated[Sel, Tag("sel")]
    | Annotated[Isel, Tag("isel")]
    | Annotated[AsType, Tag("astype")]
    | Annotated[Squeeze, Tag("squeeze")]
    | Annotated[ExpandDims, Tag("expand_dims")]
    | Annotated[SetEncoding, Tag("set_encoding")],
    Discriminator(
        _step_tag,
        custom_error_type="unknown_transform",
        custom_error_message=(
            "each transform is a mapping with exactly one key, the transform's name, one of: "
            + ", ".join(TRANSFORM_NAMES)
        ),
    ),
]
