"""The recipe: metadata, source pattern, transforms, target and catalogue fields (DESIGN §3).

These models check each field on its own and the simple rules between fields. Rules that need
the whole recipe at once (placeholders against dims, chunk dims against dataset dims) live in
:mod:`recipes_core.lint`, so they can report every problem in one pass.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)

from recipes_core.model.licences import check_license
from recipes_core.model.transforms import MAX_ITEMS, TransformStep

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
# The shape of SPDX identifiers and simple expressions ("CC-BY-4.0", "MIT OR Apache-2.0"), or
# STAC's "other"; check_license then looks each identifier up in the SPDX licence list.
SPDX_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.+-]*( (AND|OR|WITH) [A-Za-z0-9][A-Za-z0-9.+-]*)*$"
License = Annotated[str, Field(pattern=SPDX_PATTERN, max_length=128), AfterValidator(check_license)]
ShortText = Annotated[str, Field(min_length=1, max_length=256)]
LongText = Annotated[str, Field(min_length=1, max_length=20_000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provider(_Strict):
    """A STAC provider of the data."""

    name: ShortText
    roles: Annotated[
        list[Literal["producer", "licensor", "processor", "host"]], Field(max_length=4)
    ] = []
    url: HttpUrl | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None


class Maintainer(_Strict):
    """Who answers for this recipe."""

    name: ShortText
    github: Annotated[str, Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")] | None = None
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=256)] | None = None


def parse_date(value: Any) -> pd.Timestamp:
    """Parse a recipe date ('2010-01', '2010-01-01', '2010-01-01T06:00'), or say what is wrong."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not a date; write it as YYYY-MM-DD")
    text = str(value)
    if not re.fullmatch(r"\d{4}(-\d{2}(-\d{2}([T ]\d{2}(:\d{2}(:\d{2})?)?)?)?)?", text):
        raise ValueError(f"{text!r} is not a valid date; write it as YYYY-MM-DD")
    try:
        return pd.Timestamp(text)
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not a valid date (no such day)") from None


def parse_freq(value: str) -> pd.DateOffset:
    try:
        offset = pd.tseries.frequencies.to_offset(value)
    except (ValueError, TypeError, OverflowError):  # '99999999999999999999D' overflows
        raise ValueError(
            f"{value!r} is not a pandas frequency; use e.g. D (daily), h (hourly), "
            "MS (month start), ME (month end), YS (year start)"
        ) from None
    if offset.n <= 0:
        raise ValueError(f"the frequency {value!r} must step forwards (e.g. 1D, 6h, MS)")
    return offset


KeyValue = str | int | float


class DimSpec(_Strict):
    """One dimension of the file pattern.

    A *concat* dimension lays files end to end along a dataset dimension: either a date range
    (``start``, ``end``, ``freq``) or an explicit list of ``keys``. A *merge* dimension
    (``values``) names files that hold different variables of the same cube (one file per
    variable); it is a placeholder only and adds no dimension to the dataset.
    """

    start: str | None = None
    end: str | None = None
    freq: Annotated[str, Field(max_length=32)] | None = None
    keys: Annotated[list[KeyValue], Field(min_length=1, max_length=1_000_000)] | None = None
    values: Annotated[list[ShortText], Field(min_length=1, max_length=MAX_ITEMS)] | None = None
    items_per_file: Annotated[int, Field(ge=1, le=10_000_000)] | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        if value is None:
            return value
        parse_date(value)
        return str(value)

    @field_validator("freq")
    @classmethod
    def _freq(cls, value: str | None) -> str | None:
        if value is not None:
            parse_freq(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> DimSpec:
        date_fields = [self.start, self.end, self.freq]
        has_dates = any(f is not None for f in date_fields)
        kinds = [has_dates, self.keys is not None, self.values is not None]
        if sum(kinds) != 1:
            raise ValueError(
                "a dimension is either a date range (start, end, freq), a list of keys (keys), "
                "or a merge dimension (values); give exactly one of these"
            )
        if has_dates:
            missing = [
                n for n, f in zip(("start", "end", "freq"), date_fields, strict=True) if f is None
            ]
            if missing:
                raise ValueError(f"a date range needs start, end and freq; missing {missing}")
            if parse_date(self.end) < parse_date(self.start):  # type: ignore[arg-type]
                raise ValueError(f"end {self.end} is before start {self.start}")
        if self.values is not None and self.items_per_file is not None:
            raise ValueError("items_per_file only applies to concat dimensions, not 'values'")
        if self.values is not None and len(set(self.values)) != len(self.values):
            raise ValueError("merge values must be distinct")
        if self.keys is not None:
            if len({type(k) for k in self.keys}) > 1:
                raise ValueError("keys must all be of one type (all numbers or all text)")
            if len(set(self.keys)) != len(self.keys):
                raise ValueError("keys must be distinct: a repeated key names the same file twice")
        return self

    @property
    def role(self) -> Literal["concat", "merge"]:
        return "merge" if self.values is not None else "concat"


class OpenOptions(_Strict):
    """Options passed to the opener (xarray) for every source file."""

    decode_times: bool = True
    decode_timedelta: bool | None = None
    mask_and_scale: bool = True
    use_cftime: bool | None = None
    drop_variables: Annotated[list[ShortText], Field(max_length=MAX_ITEMS)] = []
    group: ShortText | None = None
    # GRIB only: cfgrib's filter, e.g. {typeOfLevel: isobaricInhPa}.
    filter_by_keys: Annotated[dict[ShortText, str | int], Field(max_length=32)] = {}


Format = Literal["netcdf3", "netcdf4", "hdf5", "grib", "zarr"]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Source(_Strict):
    """Where the files are, how they line up, and how to open them."""

    pattern: Annotated[str, Field(min_length=1, max_length=2048)]
    dims: Annotated[dict[ShortText, DimSpec], Field(min_length=1, max_length=8)]
    format: Format = "netcdf4"
    open: OpenOptions = OpenOptions()
    sha256: (
        Annotated[dict[Annotated[str, Field(max_length=2048)], Sha256], Field(max_length=1_000_000)]
        | None
    ) = None
    sha256_manifest: Annotated[str, Field(max_length=2048)] | None = None

    @model_validator(mode="after")
    def _grib_options(self) -> Source:
        if self.open.filter_by_keys and self.format != "grib":
            raise ValueError("open.filter_by_keys only applies to format: grib")
        return self


ChunkSize = Annotated[int, Field(ge=-1)]


class Codec(_Strict):
    """How chunks are compressed. The default, blosc-lz4 with byte shuffle, is fast to write."""

    name: Literal["blosc", "zstd", "gzip", "none"] = "blosc"
    cname: Literal["lz4", "lz4hc", "zstd", "zlib", "blosclz"] = "lz4"
    clevel: Annotated[int, Field(ge=0, le=9)] = 5
    shuffle: Literal["shuffle", "bitshuffle", "noshuffle"] = "shuffle"
    level: Annotated[int, Field(ge=-131072, le=22)] | None = None

    @model_validator(mode="after")
    def _params(self) -> Codec:
        if self.name == "gzip" and self.level is not None and not 0 <= self.level <= 9:
            raise ValueError("gzip level must be between 0 and 9")
        return self


class Target(_Strict):
    """What the store looks like. Where it goes belongs to the operator, never the recipe."""

    chunks: Annotated[dict[ShortText, ChunkSize], Field(max_length=32)] | None = None
    chunk_size: ByteSize | None = None
    zarr_format: Literal[2, 3] = 3
    codec: Codec = Codec()
    shards: Annotated[dict[ShortText, Annotated[int, Field(ge=1)]], Field(max_length=32)] | None = (
        None
    )
    virtual: Literal[False] = False

    @field_validator("chunks")
    @classmethod
    def _no_zero(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        for dim, size in (value or {}).items():
            if size == 0:
                raise ValueError(f"chunk size of '{dim}' is 0; use a positive size, or -1 for all")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        if self.chunk_size is not None and not 1024 <= self.chunk_size <= 2**31:
            raise ValueError("chunk_size must be between 1KB and 2GB (e.g. 100MB)")
        if self.shards and self.zarr_format != 3:
            raise ValueError("shards need zarr_format: 3 (Zarr v2 has no sharding)")
        return self


class Catalog(_Strict):
    """Extra catalogue fields for the STAC Collection."""

    thumbnail_variable: ShortText | None = None
    extra_fields: Annotated[dict[ShortText, Any], Field(max_length=64)] = {}


class Recipe(_Strict):
    """A whole recipe file."""

    id: Annotated[str, Field(pattern=ID_PATTERN)]
    title: ShortText
    description: LongText
    license: License
    keywords: Annotated[list[ShortText], Field(max_length=64)] = []
    providers: Annotated[list[Provider], Field(max_length=16)] = []
    maintainers: Annotated[list[Maintainer], Field(min_length=1, max_length=32)]
    source: Source
    transforms: Annotated[list[TransformStep], Field(max_length=64)] = []
    target: Target = Target()
    catalog: Catalog = Catalog()

    @property
    def concat_dims(self) -> list[str]:
        return [n for n, d in self.source.dims.items() if d.role == "concat"]

    @property
    def merge_dims(self) -> list[str]:
        return [n for n, d in self.source.dims.items() if d.role == "merge"]
