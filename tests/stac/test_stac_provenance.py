"""provenance.json is strict W3C PROV-JSON: the ``prov`` package reads it back record by record."""

from __future__ import annotations

import json

import pytest

from recipes_core.stac.provenance import attributes, qname
from tests.stac.conftest import ERSST_ID

prov_model = pytest.importorskip("prov.model")
PROV_NS = "http://www.w3.org/ns/prov#"


def _strict(value) -> bool:
    """A PROV-JSON attribute value: a scalar, a typed literal, or a list of them."""
    if isinstance(value, list):
        return all(_strict(v) for v in value)
    if isinstance(value, dict):
        return set(value) <= {"$", "type", "lang"} and "$" in value
    return isinstance(value, str | int | float | bool)


def texts(record, name: str) -> set[str]:
    return {str(v) for v in record.get_attribute(name)}


def one(record, name: str) -> str:
    (value,) = texts(record, name)
    return value


def test_provenance_is_strict_prov_json_read_back_by_the_prov_package(ersst_target):
    version_dir = ersst_target / ERSST_ID / "v1"
    content = (version_dir / "provenance.json").read_text()
    raw = json.loads(content)
    for section in ("entity", "activity", "agent"):
        for record in raw[section].values():
            assert all(_strict(v) for v in record.values()), record
            assert record["prov:type"]["type"] == "prov:QUALIFIED_NAME"
    used_prefixes = {key.split(":")[0] for section in ("entity", "activity", "agent")
                     for record in raw[section].values() for key in record}
    assert used_prefixes <= set(raw["prefix"])

    doc = prov_model.ProvDocument.deserialize(content=content, format="json")
    a = {n.prefix: n for n in doc.get_registered_namespaces()}["arco"]

    def of(kind):
        return {str(r.identifier): r for r in doc.get_records(kind)}

    entities = of(prov_model.ProvEntity)
    sources = json.loads((version_dir / "sources.json").read_text())
    assert set(entities) == {"arco:recipe", "arco:store"} | {
        f"arco:source/{i}" for i in range(len(sources))}
    for i, source in enumerate(sources):
        record = entities[f"arco:source/{i}"]
        assert record.get_attribute(a["sha256"]) == {source["sha256"]}
        assert record.get_attribute(a["size"]) == {source["size"]}
        assert texts(record, "prov:type") == {"arco:SourceFile"}
    store = entities["arco:store"]
    assert store.get_attribute(a["version"]) == {1}
    assert not store.get_attribute(a["pruned"])  # null is left out, not written as null

    (bake,) = of(prov_model.ProvActivity).values()
    state = json.loads((version_dir / "bake.json").read_text())
    assert bake.identifier == a["bake"]
    assert bake.get_startTime() is not None and bake.get_endTime() is not None
    for name, count in state["counters"].items():  # flattened, one attribute per counter
        assert bake.get_attribute(a[f"counters_{name}"]) == {count}

    agents = of(prov_model.ProvAgent)
    kinds = set().union(*(texts(r, "prov:type") for r in agents.values()))
    assert kinds >= {"prov:SoftwareAgent", "prov:Person", "prov:Organization"}
    assert "arco:software/arco-recipes" in agents

    used = {one(r, "prov:entity") for r in doc.get_records(prov_model.ProvUsage)}
    assert used == {"arco:recipe"} | {f"arco:source/{i}" for i in range(len(sources))}
    generated = [(one(r, "prov:entity"), one(r, "prov:activity"))
                 for r in doc.get_records(prov_model.ProvGeneration)]
    assert generated == [("arco:store", "arco:bake")]
    associated = {one(r, "prov:agent"): r for r in doc.get_records(prov_model.ProvAssociation)}
    software = {k for k, r in agents.items() if "prov:SoftwareAgent" in texts(r, "prov:type")}
    assert set(associated) == software
    assert texts(associated["arco:software/arco-recipes"], "prov:plan") == {"arco:recipe"}
    # Nothing is a revision in a first bake.
    assert not [r for r in doc.get_records(prov_model.ProvDerivation)
                if "prov:Revision" in texts(r, "prov:type")]


def test_attributes_flatten_nested_values_and_leave_out_nulls():
    assert attributes({"a:x": None, "a:c": {"n": 1, "m": None, "d": {"k": True}},
                       "a:l": [1, None, "s"], "a:t": qname("a:T")}) == {
        "a:c_n": 1, "a:c_d_k": True, "a:l": [1, "s"],
        "a:t": {"$": "a:T", "type": "prov:QUALIFIED_NAME"}}


