"""The STAC catalogue of a target root: publishing, provenance, validation, opening, the page.

* :func:`publish` is the last step of every bake: recipe copy, provenance, thumbnail, the
  dataset's Collection, the root Catalog and ``index.html``.
* :func:`open_dataset` opens a catalogued dataset in one line.
* :func:`validate_catalog` checks a catalogue offline against the schemas shipped here.
"""

from recipes_core.stac.catalog import Published, publish
from recipes_core.stac.errors import CatalogError
from recipes_core.stac.open import open_catalog, open_dataset
from recipes_core.stac.validate import Report, validate_catalog

__all__ = [
    "CatalogError",
    "Published",
    "Report",
    "open_catalog",
    "open_dataset",
    "publish",
    "validate_catalog",
]
