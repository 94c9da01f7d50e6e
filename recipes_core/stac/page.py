"""``<root>/index.html``: a static page listing every dataset of a catalogue, for people.

Built from the catalogue (never from a bake's memory), so it always says what the catalogue says,
and rebuilt whenever a dataset is published. It needs no network: CSS is inline, thumbnails are
relative paths, the only script is an inline ``onload`` that marks a thumbnail as shown (tests
read it), and the links to licences and providers are plain anchors that load nothing.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac
from pystac.extensions.datacube import DatacubeExtension

PAGE_FILE = "index.html"

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       background: #f4f5f7; color: #1d2330; }
header { background: #1d3557; color: #fff; padding: 1.2rem 2rem; }
header h1 { margin: 0 0 .3rem 0; font-size: 1.5rem; }
header p { margin: 0; opacity: .85; }
main { padding: 1rem 2rem 2rem; max-width: 1200px; }
article { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.12);
          margin: 1rem 0; padding: 1rem 1.4rem; display: grid;
          grid-template-columns: minmax(0, 1fr) 420px; gap: 0 1.5rem; }
article h2 { margin: .2rem 0 .4rem 0; font-size: 1.2rem; grid-column: 1 / -1; }
.meta { grid-column: 1; }
.side { grid-column: 2; }
.side img { width: 100%; border: 1px solid #dde; border-radius: 4px; }
.id { font-family: ui-monospace, monospace; color: #56607a; font-size: .9rem; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; font-size: .9rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #e6e8ee;
         vertical-align: top; }
th { color: #56607a; font-weight: 600; white-space: nowrap; }
pre { background: #0f1724; color: #e6edf7; padding: .7rem 1rem; border-radius: 6px;
      white-space: pre-wrap; font-size: .85rem; }
.note { color: #8a5a00; background: #fff4dc; padding: .3rem .6rem; border-radius: 4px; }
.error { color: #a4161a; }
footer { color: #56607a; font-size: .8rem; padding: 0 2rem 2rem; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _rel(path: str | None, root: Path) -> str | None:
    if not path:
        return None
    if "://" in path:
        return path
    return Path(os.path.relpath(path, root)).as_posix()


def _row(label: str, value_html: str) -> str:
    return f"<tr><th>{_e(label)}</th><td>{value_html}</td></tr>"


def _variables_table(collection: pystac.Collection) -> str:
    variables = DatacubeExtension.ext(collection).variables or {}
    rows = []
    for name, var in variables.items():
        props = var.to_dict()
        if props.get("type") != "data":
            continue
        rows.append(
            "<tr>"
            f"<td><code>{_e(name)}</code></td><td>{_e(props.get('unit', ''))}</td>"
            f"<td>{_e(', '.join(props.get('dimensions', [])))}</td>"
            f"<td>{_e(' x '.join(map(str, props.get('shape', []))))}</td>"
            f"<td>{_e(props.get('description', ''))}</td>"
            "</tr>"
        )
    if not rows:
        return "<p>No data variables.</p>"
    head = "".join(f"<th>{c}</th>" for c in ("variable", "unit", "dimensions", "shape",
                                              "description"))
    head = f"<tr>{head}</tr>"
    return f"<table class='variables'>{head}{''.join(rows)}</table>"


def _temporal(collection: pystac.Collection) -> str:
    start, end = collection.extent.temporal.intervals[0]
    text = " to ".join(
        pystac.utils.datetime_to_str(t) if t else "open" for t in (start, end)
    )
    dims = DatacubeExtension.ext(collection).dimensions
    steps = [d.to_dict().get("step") for d in dims.values()
             if d.to_dict().get("type") == "temporal"]
    if steps and steps[0]:
        text += f" (every {steps[0]})"
    return _e(text)


def _license(collection: pystac.Collection) -> str:
    links = [link for link in collection.links if link.rel == pystac.RelType.LICENSE]
    anchors = ", ".join(
        f"<a href='{_e(link.href)}'>{_e(link.title or link.href)}</a>" for link in links
    )
    return _e(collection.license) + (f" ({anchors})" if anchors else "")


def _provenance(collection: pystac.Collection, root: Path) -> str:
    asset = collection.assets.get("provenance")
    if asset is None:
        return "not recorded"
    fields = asset.extra_fields
    software = ", ".join(f"{k} {v}" for k, v in (fields.get("processing:software") or {}).items())
    recipe = next((link for link in collection.links if link.rel == "via"), None)
    parts = [
        f"Baked {_e(fields.get('processing:datetime', ''))}",
        _e(fields.get("processing:lineage", "")),
        f"Software: {_e(software)}" if software else "",
        f"<a href='{_e(_rel(asset.get_absolute_href(), root))}'>provenance.json</a>",
    ]
    if recipe is not None:
        parts.append(f"<a href='{_e(_rel(recipe.get_absolute_href(), root))}'>recipe.yaml</a>")
    return "<br>".join(p for p in parts if p)


def _snippet(collection_id: str) -> str:
    code = (
        "import recipes_core\n"
        f'ds = recipes_core.open_dataset("catalog.json", "{collection_id}")\n'
        "\n"
        "# or with pystac and xarray only:\n"
        "import pystac, xarray as xr\n"
        f'collection = pystac.Catalog.from_file("catalog.json").get_child("{collection_id}")\n'
        "asset = collection.assets[\"zarr\"]\n"
        "ds = xr.open_dataset(asset.get_absolute_href(),\n"
        '                     **asset.extra_fields["xarray:open_kwargs"])'
    )
    return f"<pre><code>{_e(code)}</code></pre>"


def _article(collection: pystac.Collection, root: Path) -> str:
    bbox = collection.extent.spatial.bboxes[0]
    version = collection.extra_fields.get("version")
    thumbnail = next(
        (a for a in collection.assets.values() if a.roles and "thumbnail" in a.roles), None
    )
    side = ""
    if thumbnail is not None:
        src = _rel(thumbnail.get_absolute_href(), root)
        side = (
            f"<img src='{_e(src)}' alt='{_e(thumbnail.title or 'thumbnail')}' "
            "onload=\"this.dataset.loaded=this.naturalWidth\" "
            "onerror=\"this.dataset.loaded='error'\">"
        )
    notes = "".join(
        f"<p class='note'>{_e(n)}</p>" for n in collection.extra_fields.get("arco:notes", [])
    )
    providers = ", ".join(
        f"<a href='{_e(p.url)}'>{_e(p.name)}</a>" if p.url else _e(p.name)
        for p in collection.providers or []
    )
    rows = [
        _row("Spatial extent", _e("west {:g}, south {:g}, east {:g}, north {:g}".format(*bbox))),
        _row("Time", _temporal(collection)),
        _row("Licence", _license(collection)),
        _row("Providers", providers or "not given"),
        _row("Keywords", _e(", ".join(collection.keywords or [])) or "none"),
        _row("Provenance", _provenance(collection, root)),
    ]
    predecessor = next(
        (link for link in collection.links if link.rel == "predecessor-version"), None
    )
    if predecessor is not None:
        href = _rel(predecessor.get_absolute_href(), root)
        rows.append(_row("Earlier version", f"<a href='{_e(href)}'>{_e(href)}</a> "
                                            "(each version links its predecessor)"))
    return (
        f"<article id='{_e(collection.id)}'>"
        f"<h2>{_e(collection.title or collection.id)}</h2>"
        "<div class='meta'>"
        f"<p class='id'>{_e(collection.id)}"
        + (f" &middot; version {_e(version)}" if version else "")
        + f"</p><p>{_e(collection.description)}</p>{notes}"
        f"<table>{''.join(rows)}</table>"
        f"<h3>Variables</h3>{_variables_table(collection)}"
        f"<h3>Open it</h3>{_snippet(collection.id)}"
        "</div>"
        f"<div class='side'>{side}</div>"
        "</article>"
    )


def _children(catalog: pystac.Catalog) -> Iterable[pystac.Collection | str]:
    """Each child Collection, or an error text for a child that cannot be read."""
    for link in catalog.get_child_links():
        try:
            link.resolve_stac_object(root=catalog)
        except Exception as error:
            yield f"{link.get_absolute_href()}: {type(error).__name__}: {error}"
            continue
        if isinstance(link.target, pystac.Collection):
            yield link.target


def render_page(catalog: pystac.Catalog, root: Path) -> str:
    articles = []
    for child in _children(catalog):
        if isinstance(child, str):
            articles.append(
                f"<article><p class='error'>Unreadable entry: {_e(child)}</p></article>"
            )
        else:
            articles.append(_article(child, root))
    count = sum(1 for a in articles if "class='error'" not in a)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(catalog.title or catalog.id)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{_e(catalog.title or catalog.id)}</h1>"
        f"<p>{_e(catalog.description)} {count} dataset{'s' if count != 1 else ''}; "
        "the STAC catalogue is <a style='color:#fff' href='catalog.json'>catalog.json</a>."
        "</p></header>"
        f"<main>{''.join(articles) or '<p>No datasets yet.</p>'}</main>"
        f"<footer>Generated by arco-recipes at {_e(generated)} from catalog.json.</footer>"
        "</body></html>\n"
    )


def write_page(root: str | os.PathLike[str]) -> Path:
    """Regenerate ``<root>/index.html`` from ``<root>/catalog.json``."""
    root = Path(root).resolve()
    catalog = pystac.Catalog.from_file(str(root / "catalog.json"))
    path = root / PAGE_FILE
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_page(catalog, root), encoding="utf-8")
    os.replace(tmp, path)
    return path
