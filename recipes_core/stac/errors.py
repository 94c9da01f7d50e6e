"""Errors of the catalogue: part of the one error tree, so the CLI prints them as a paragraph."""

from __future__ import annotations

from recipes_core.errors import ArcoError


class CatalogError(ArcoError):
    """A catalogue cannot be read, written or opened; ``where`` names the file or dataset."""
