"""The provenance record of a bake, in W3C PROV-JSON (https://www.w3.org/submissions/prov-json/).

One document per bake, ``<version_dir>/provenance.json``::

    entities    the recipe (its hash), every source (URL, size, sha256, ETag/Last-Modified),
                and the output store (plan hash, Zarr format)
    activity    the bake: start and end, runner, plan hash, options (secrets redacted)
    agents      the software that ran (this package, Apache Beam, xarray, zarr, with versions),
                the recipe's maintainers and the data's providers
    relations   used, wasGeneratedBy, wasDerivedFrom, wasAssociatedWith (with the recipe as the
                plan), wasAttributedTo

Everything comes from what the bake recorded (``bake.json``, ``sources.json``), never from a
second look at the sources, so the record describes exactly the bytes that were read.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipes_core.plan.plan import Plan, recipe_hash
from recipes_core.stac.assets import Processing
from recipes_core.storage import redact_url
from recipes_core.storage.cache import sha256_file

PROV = "http://www.w3.org/ns/prov#"
XSD = "http://www.w3.org/2001/XMLSchema#"
SOFTWARE = ("arco-recipes", "apache-beam", "xarray", "zarr", "numpy", "pystac")
# Option names whose values are secrets whatever they look like.
SECRET_WORDS = ("token", "secret", "password", "passwd", "credential", "key", "auth")
# A query value in an option that is not a URL (an image reference such as reg/img:1?token=x).
_QUERY_VALUE = re.compile(r"([?&][^=&\s#?]+=)[^&\s#]+")


def _redact_value(value: str) -> str:
    return redact_url(value) if "://" in value else _QUERY_VALUE.sub(r"\1***", value)


def software_versions() -> dict[str, str]:
    versions = {}
    for name in SOFTWARE:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def redact_options(args: Sequence[str]) -> list[str]:
    """Pipeline options safe to publish: URLs lose credentials and query values, and the values
    of options named like secrets (``--aws_secret_key=...``, ``--token X``) become ``***``."""
    out: list[str] = []
    secret_next = False
    for arg in args:
        if secret_next:
            out.append("***")
            secret_next = False
            continue
        if arg.startswith("--"):
            name, sep, value = arg.partition("=")
            secret = any(word in name.lower() for word in SECRET_WORDS)
            if sep:
                out.append(f"{name}=***" if secret else f"{name}={_redact_value(value)}")
            else:
                out.append(arg)
                secret_next = secret
            continue
        out.append(_redact_value(arg))
    return out


def runner_of(args: Sequence[str]) -> str:
    for i, arg in enumerate(args):
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
        if arg == "--runner" and i + 1 < len(args):
            return args[i + 1]
    return "DirectRunner"


def read_sources(version_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    try:
        with open(Path(version_dir) / "sources.json", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return []


@dataclass(frozen=True)
class BakeFacts:
    """What a provenance record is made of: the plan, the bake's state and its files."""

    plan: Plan
    version: int
    version_dir: Path
    store: Path
    state: dict[str, Any]
    pipeline_args: tuple[str, ...]
    recipe_copy: Path


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-") or "x"


def qname(name: str) -> dict[str, str]:
    """A qualified name as PROV-JSON wants it: a typed literal, never a bare string."""
    return {"$": name, "type": "prov:QUALIFIED_NAME"}


def type_name(record: dict[str, Any]) -> str | None:
    """The ``prov:type`` of a record as text, whether typed (``{"$": ...}``) or not."""
    value = record.get("prov:type")
    return value.get("$") if isinstance(value, dict) else value


Scalar = str | int | float | bool


def attributes(fields: dict[str, Any]) -> dict[str, Any]:
    """Strict PROV-JSON attributes: nulls left out, nested mappings flattened into
    ``<name>_<key>`` attributes, and lists kept only when all their items are scalars."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, dict) and set(value) != {"$", "type"}:
            out.update(attributes({f"{name}_{k}": v for k, v in value.items()}))
        elif isinstance(value, list | tuple):
            out[name] = [v if isinstance(v, Scalar) else json.dumps(v) for v in value
                         if v is not None]
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class Predecessor:
    """The earlier version a bake revises (``revises`` in its state), as PROV needs it."""

    version: int
    sources: list[dict[str, Any]]
    store_name: str


def predecessor_of(facts: BakeFacts) -> Predecessor | None:
    previous = facts.state.get("revises")
    if not isinstance(previous, int):
        return None
    version_dir = facts.version_dir.parent / f"v{previous}"
    store_name = facts.store.name
    return Predecessor(previous, read_sources(version_dir), store_name)


def _revisions(facts: BakeFacts, sources: list[dict[str, Any]], entity: dict[str, Any],
               ) -> dict[str, Any]:
    """``prov:wasRevisionOf`` (a ``wasDerivedFrom`` typed ``prov:Revision`` in PROV-JSON) from
    each changed source and the store to their counterparts in the predecessor version."""
    previous = predecessor_of(facts)
    if previous is None:
        return {}
    old_by_key = {tuple(s.get("key") or ()): (i, s) for i, s in enumerate(previous.sources)}
    revisions: dict[str, Any] = {}
    for i, source in enumerate(sources):
        found = old_by_key.get(tuple(source.get("key") or ()))
        if found is None or found[1].get("sha256") == source.get("sha256"):
            continue
        j, old = found
        old_id = f"prev:source/{j}"
        entity[old_id] = attributes({
            "prov:type": qname("arco:SourceFile"),
            "prov:location": redact_url(str(old.get("url", ""))),
            "arco:sha256": old.get("sha256"),
            "arco:size": old.get("size"),
            "arco:fetched_at": old.get("fetched_at"),
            "arco:etag": old.get("etag") or None,
            "arco:last_modified": old.get("last_modified") or None,
        })
        revisions[f"_:revision/source/{i}"] = {
            "prov:generatedEntity": f"arco:source/{i}", "prov:usedEntity": old_id,
            "prov:type": qname("prov:Revision")}
    entity["prev:store"] = {"prov:type": qname("arco:ZarrStore"),
                            "prov:location": f"../v{previous.version}/{previous.store_name}",
                            "arco:version": previous.version}
    revisions["_:revision/store"] = {"prov:generatedEntity": "arco:store",
                                     "prov:usedEntity": "prev:store",
                                     "prov:activity": "arco:bake",
                                     "prov:type": qname("prov:Revision")}
    return revisions


def provenance_document(facts: BakeFacts) -> dict[str, Any]:
    """The PROV-JSON document of one bake, strict enough for the ``prov`` package to read."""
    plan, state = facts.plan, facts.state
    recipe = plan.recipe
    started, ended = state.get("started"), state.get("ended")
    sources = read_sources(facts.version_dir)
    versions = software_versions()

    entity: dict[str, Any] = {
        "arco:recipe": attributes({
            "prov:type": qname("arco:Recipe"),
            "prov:label": recipe.title,
            "prov:location": facts.recipe_copy.name,
            "arco:id": recipe.id,
            "arco:recipe_hash": recipe_hash(recipe),
            "arco:sha256": sha256_file(facts.recipe_copy)[0],
        }),
        "arco:store": attributes({
            "prov:type": qname("arco:ZarrStore"),
            "prov:location": facts.store.name,
            "arco:plan_hash": plan.hash,
            "arco:version": facts.version,
            "arco:zarr_format": recipe.target.zarr_format,
            "arco:pruned": plan.pruned,
        }),
    }
    used: dict[str, Any] = {"_:used-recipe": {"prov:activity": "arco:bake",
                                              "prov:entity": "arco:recipe"}}
    derived: dict[str, Any] = {}
    attributed: dict[str, Any] = {}
    for i, source in enumerate(sources):
        sid = f"arco:source/{i}"
        entity[sid] = attributes({
            "prov:type": qname("arco:SourceFile"),
            "prov:location": redact_url(str(source.get("url", ""))),
            "arco:key": list(source.get("key") or ()),
            "arco:size": source.get("size"),
            "arco:sha256": source.get("sha256"),
            "arco:fetched_at": source.get("fetched_at"),
            "arco:etag": source.get("etag") or None,
            "arco:last_modified": source.get("last_modified") or None,
        })
        used[f"_:used-source/{i}"] = {"prov:activity": "arco:bake", "prov:entity": sid}
        derived[f"_:derived/{i}"] = {"prov:generatedEntity": "arco:store", "prov:usedEntity": sid,
                                     "prov:activity": "arco:bake"}
    derived.update(_revisions(facts, sources, entity))

    agent: dict[str, Any] = {}
    associated: dict[str, Any] = {}
    for name, version in versions.items():
        aid = f"arco:software/{name}"
        agent[aid] = {"prov:type": qname("prov:SoftwareAgent"), "prov:label": name,
                      "arco:version": version}
        association = {"prov:activity": "arco:bake", "prov:agent": aid}
        if name == "arco-recipes":
            association["prov:plan"] = "arco:recipe"  # PROV's "plan": what the agent followed
        associated[f"_:assoc/{name}"] = association
    for maintainer in recipe.maintainers:
        aid = f"arco:maintainer/{_slug(maintainer.github or maintainer.name)}"
        agent[aid] = attributes({"prov:type": qname("prov:Person"),
                                 "prov:label": maintainer.name,
                                 "arco:github": maintainer.github or None})
        attributed[f"_:attr/recipe/{aid}"] = {"prov:entity": "arco:recipe", "prov:agent": aid}
        attributed[f"_:attr/store/{aid}"] = {"prov:entity": "arco:store", "prov:agent": aid}
    for provider in recipe.providers:
        aid = f"arco:provider/{_slug(provider.name)}"
        agent[aid] = attributes({"prov:type": qname("prov:Organization"),
                                 "prov:label": provider.name,
                                 "arco:roles": list(provider.roles),
                                 "prov:location": str(provider.url) if provider.url else None})
        if "producer" in provider.roles or not provider.roles:
            for i in range(len(sources)):
                attributed[f"_:attr/source/{i}/{aid}"] = {"prov:entity": f"arco:source/{i}",
                                                          "prov:agent": aid}

    args = list(facts.pipeline_args)
    activity = {
        "arco:bake": attributes({
            "prov:type": qname("arco:Bake"),
            "prov:startTime": started,
            "prov:endTime": ended,
            "arco:runner": runner_of(args),
            "arco:engine": state.get("engine"),
            "arco:profile": state.get("profile"),
            "arco:plan_hash": plan.hash,
            "arco:options": redact_options(args),
            # Flattened (arco:counters_chunks_written, ...): PROV-JSON has no nested values.
            "arco:counters": state.get("counters") or {},
            "arco:reused_version": state.get("reused_version", False),
            "arco:revises": state.get("revises"),
        })
    }
    generated = attributes({"prov:entity": "arco:store", "prov:activity": "arco:bake",
                            "prov:time": ended})
    prefix = {
        # One namespace per bake, so identifiers stay unique when records are merged.
        "arco": f"urn:arco:{recipe.id}:v{facts.version}:",
        "prov": PROV,
        "xsd": XSD,
    }
    if "prev:store" in entity:
        prefix["prev"] = f"urn:arco:{recipe.id}:v{facts.state['revises']}:"
    return {
        "prefix": prefix,
        "entity": entity,
        "activity": activity,
        "agent": agent,
        "used": used,
        "wasGeneratedBy": {"_:generated-store": generated},
        "wasDerivedFrom": derived,
        "wasAssociatedWith": associated,
        "wasAttributedTo": attributed,
    }


def write_provenance(facts: BakeFacts) -> tuple[Path, dict[str, Any]]:
    document = provenance_document(facts)
    path = facts.version_dir / "provenance.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path, document


def processing_summary(document: dict[str, Any], level: str | None) -> Processing:
    """The STAC processing fields that summarise a provenance document."""
    bake = document["activity"]["arco:bake"]
    software = {
        a["prov:label"]: a["arco:version"]
        for a in document["agent"].values()
        if type_name(a) == "prov:SoftwareAgent"
    }
    sources = [e for id_, e in document["entity"].items()
               if id_.startswith("arco:") and type_name(e) == "arco:SourceFile"]
    total = sum(int(e.get("arco:size") or 0) for e in sources)
    recipe = document["entity"]["arco:recipe"]
    lineage = (
        f"Baked by arco-recipes {software.get('arco-recipes', '')} on {bake['arco:runner']} from "
        f"{len(sources)} source file{'s' if len(sources) != 1 else ''} ({total:,} bytes, each "
        f"checked by sha256) with recipe {recipe['arco:id']} (recipe hash "
        f"{recipe['arco:recipe_hash'][:12]}, plan hash {bake['arco:plan_hash'][:12]}); "
        "see provenance.json."
    )
    return Processing(software=software, datetime=bake["prov:endTime"], lineage=lineage,
                      level=level)
