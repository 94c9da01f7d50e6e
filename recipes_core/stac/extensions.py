"""Typed accessors for the two STAC extensions pystac does not implement: zarr and processing.

They follow pystac's own extension classes (``XarrayAssetsExtension`` is the model): a class
per extension with ``ext(obj, add_if_missing)``, properties that read and write the prefixed
fields, and the schema URI added to the owning object's ``stac_extensions``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, Literal, TypeVar

import pystac
from pystac.extensions.base import ExtensionManagementMixin, PropertiesExtension

T = TypeVar("T", pystac.Collection, pystac.Asset)

ZARR_SCHEMA_URI = "https://stac-extensions.github.io/zarr/v1.1.0/schema.json"
PROCESSING_SCHEMA_URI = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"


def _set(properties: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        properties.pop(key, None)
    else:
        properties[key] = value


class ZarrExtension(
    PropertiesExtension, ExtensionManagementMixin[pystac.Item | pystac.Collection]
):
    """The zarr extension's asset fields (v1.1.0), which xpystac reads to open a store."""

    name: Literal["zarr"] = "zarr"
    properties: dict[str, Any]
    additional_read_properties: Iterable[dict[str, Any]] | None = None

    def __init__(self, asset: pystac.Asset) -> None:
        self.asset = asset
        self.properties = asset.extra_fields

    @classmethod
    def get_schema_uri(cls) -> str:
        return ZARR_SCHEMA_URI

    @classmethod
    def ext(cls, obj: pystac.Asset, add_if_missing: bool = False) -> ZarrExtension:
        if not isinstance(obj, pystac.Asset):
            raise pystac.ExtensionTypeError(cls._ext_error_message(obj))
        cls.ensure_owner_has_extension(obj, add_if_missing)
        return cls(obj)

    @property
    def zarr_format(self) -> int | None:
        return self.properties.get("zarr:zarr_format")

    @zarr_format.setter
    def zarr_format(self, v: int | None) -> None:
        _set(self.properties, "zarr:zarr_format", v)

    @property
    def consolidated(self) -> bool | None:
        return self.properties.get("zarr:consolidated")

    @consolidated.setter
    def consolidated(self, v: bool | None) -> None:
        _set(self.properties, "zarr:consolidated", v)

    @property
    def node_type(self) -> Literal["array", "group"] | None:
        return self.properties.get("zarr:node_type")

    @node_type.setter
    def node_type(self, v: Literal["array", "group"] | None) -> None:
        _set(self.properties, "zarr:node_type", v)


class ProcessingExtension(
    Generic[T],
    PropertiesExtension,
    ExtensionManagementMixin[pystac.Item | pystac.Collection],
):
    """The processing extension (v1.2.0): how, when and with what software data was made."""

    name: Literal["processing"] = "processing"
    properties: dict[str, Any]
    additional_read_properties: Iterable[dict[str, Any]] | None = None

    def __init__(self, obj: T) -> None:
        self.obj = obj
        self.properties = obj.extra_fields

    @classmethod
    def get_schema_uri(cls) -> str:
        return PROCESSING_SCHEMA_URI

    @classmethod
    def ext(cls, obj: T, add_if_missing: bool = False) -> ProcessingExtension[T]:
        if isinstance(obj, pystac.Asset):
            cls.ensure_owner_has_extension(obj, add_if_missing)
        elif isinstance(obj, pystac.Collection):
            cls.ensure_has_extension(obj, add_if_missing)
        else:
            raise pystac.ExtensionTypeError(cls._ext_error_message(obj))
        return cls(obj)

    @property
    def software(self) -> dict[str, str] | None:
        return self.properties.get("processing:software")

    @software.setter
    def software(self, v: dict[str, str] | None) -> None:
        _set(self.properties, "processing:software", v)

    @property
    def datetime(self) -> str | None:
        return self.properties.get("processing:datetime")

    @datetime.setter
    def datetime(self, v: str | None) -> None:
        _set(self.properties, "processing:datetime", v)

    @property
    def lineage(self) -> str | None:
        return self.properties.get("processing:lineage")

    @lineage.setter
    def lineage(self, v: str | None) -> None:
        _set(self.properties, "processing:lineage", v)

    @property
    def level(self) -> str | None:
        return self.properties.get("processing:level")

    @level.setter
    def level(self, v: str | None) -> None:
        _set(self.properties, "processing:level", v)

    @property
    def facility(self) -> str | None:
        return self.properties.get("processing:facility")

    @facility.setter
    def facility(self, v: str | None) -> None:
        _set(self.properties, "processing:facility", v)
