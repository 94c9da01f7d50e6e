"""Verify a baked store against its sources (DESIGN §4, step 7; `arco verify`).

The oracle is xarray itself: the sources are opened lazily, transformed, and combined with
``xr.combine_by_coords``, exactly as a user would without this tool. The store must hold every
chunk, and its values, coordinates, dtypes and attributes must equal the oracle, in full or on a
random sample of chunks.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
import zarr

from recipes_core.opener import key_mapping, open_kwargs
from recipes_core.ops import apply_transforms
from recipes_core.plan.chunks import ChunkGrid
from recipes_core.plan.plan import Plan
from recipes_core.storage import AccessPolicy, Stager, redact_url


@dataclass
class VerifyReport:
    store: str
    checked_chunks: int = 0
    total_chunks: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        head = (
            f"{'OK' if self.ok else 'FAILED'}: {self.store}: compared {self.checked_chunks} "
            f"of {self.total_chunks} chunks with the sources"
        )
        return head + "".join(f"\n  - {p}" for p in self.problems[:50])


@contextlib.contextmanager
def oracle_dataset(plan: Plan, cache_dir: str, policy: AccessPolicy) -> Iterator[xr.Dataset]:
    """The sources opened lazily (dask), transformed and combined by xarray."""
    stager = Stager(cache_dir, policy)
    source = plan.recipe.source
    opened: list[xr.Dataset] = []
    try:
        parts = []
        for key, url in plan.sources():
            # Only the path is needed: hashing a local source here (sha256 of every byte) is
            # the bake's job and its record's, not the oracle's (15 % of opening them).
            staged = stager.stage(url, hash_local=False)
            kwargs = open_kwargs(source.format, source.open) | {"chunks": {}}
            ds = xr.open_dataset(staged.path, **kwargs)
            opened.append(ds)
            parts.append(
                apply_transforms(
                    ds, plan.recipe.transforms, key=key_mapping(plan, key), where=redact_url(url)
                )
            )
        yield xr.combine_by_coords(
            parts,
            data_vars="minimal",
            coords="minimal",
            compat="override",
            join="exact",
            combine_attrs="override",
        )
    finally:
        for ds in opened:
            ds.close()


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def verify_store(
    store: str,
    plan: Plan,
    *,
    sample: int | None = None,
    cache_dir: str,
    policy: AccessPolicy | None = None,
    seed: int = 0,
) -> VerifyReport:
    """Compare a store with its sources; ``sample`` chunks per variable, or all of them."""
    if sample is not None and sample < 1:  # 0 would compare nothing and pass any store
        raise ValueError(f"sample must be at least 1 chunk, got {sample}")
    report = VerifyReport(store=store)
    try:
        actual = xr.open_zarr(store, consolidated=None, chunks=None)
        group = zarr.open_group(store, mode="r")
    except Exception as err:
        report.problems.append(f"cannot open the store: {type(err).__name__}: {err}")
        return report
    with oracle_dataset(plan, cache_dir, policy or AccessPolicy()) as expected:
        _compare_metadata(expected, actual, report)
        rng = random.Random(seed)
        for name in sorted(map(str, actual.variables)):
            if name not in expected.variables:
                continue
            array = group[name]
            if not isinstance(array, zarr.Array):
                continue
            unit = tuple(array.shards) if getattr(array, "shards", None) else tuple(array.chunks)
            grid = ChunkGrid(tuple(array.shape), unit) if array.shape else None
            indices = list(grid.indices()) if grid else [()]
            report.total_chunks += len(indices)
            initialised = array.nchunks_initialized
            if initialised < array.nchunks:
                report.problems.append(
                    f"{name}: only {initialised} of {array.nchunks} chunks are present"
                )
            chosen = indices if sample is None else rng.sample(indices, min(sample, len(indices)))
            for index in chosen:
                region = grid.region(index) if grid else ()
                report.checked_chunks += 1
                try:
                    got = np.asarray(actual[name].variable[region].values)
                except Exception as err:
                    report.problems.append(
                        f"{name} chunk {index}: unreadable ({type(err).__name__}: {err})"
                    )
                    continue
                want = np.asarray(expected[name].variable[region].values)
                if not _equal(got, want):
                    report.problems.append(f"{name} chunk {index}: values differ from the sources")
    return report


def attrs_equal(a: dict[str, object], b: dict[str, object]) -> bool:
    """Attribute dicts equal, treating arrays (e.g. valid_range) by value."""
    if a.keys() != b.keys():
        return False
    return all(
        _equal(np.asarray(a[k]), np.asarray(b[k]))
        if isinstance(a[k], np.ndarray | list) or isinstance(b[k], np.ndarray | list)
        else a[k] == b[k]
        for k in a
    )


def _compare_metadata(expected: xr.Dataset, actual: xr.Dataset, report: VerifyReport) -> None:
    missing = sorted(set(map(str, expected.variables)) - set(map(str, actual.variables)))
    if missing:
        report.problems.append(f"variables missing from the store: {', '.join(missing)}")
    if dict(expected.sizes) != dict(actual.sizes):
        report.problems.append(
            f"dimensions differ: store {dict(actual.sizes)}, sources {dict(expected.sizes)}"
        )
        return
    if not attrs_equal(expected.attrs, actual.attrs):
        report.problems.append("global attributes differ from the sources")
    for name in map(str, expected.variables):
        if name not in actual.variables:
            continue
        e, a = expected[name], actual[name]
        if e.dtype != a.dtype:
            report.problems.append(f"{name}: dtype {a.dtype} in the store, {e.dtype} in sources")
        if not attrs_equal(e.attrs, a.attrs):
            report.problems.append(f"{name}: attributes differ from the sources")
        if name in expected.dims and not _equal(np.asarray(e.values), np.asarray(a.values)):
            report.problems.append(f"coordinate {name}: values differ from the sources")
