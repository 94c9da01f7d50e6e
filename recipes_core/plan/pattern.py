"""File patterns: a format string over named dimensions, expanded lazily into keyed sources.

``https://host/sst.mnmean_{time:%Y-%m}.nc`` with ``time`` a monthly date range names one file per
month. A source's key is its position along each pattern dimension; its URL is computed on
demand, so 100,000 sources cost nothing until they are used.
"""

from __future__ import annotations

import itertools
import posixpath
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from recipes_core.plan.strftime import strftime_all

SourceKey = tuple[int, ...]


_STRFTIME = re.compile(r"%[A-Za-z]")
_BIG_NUMBER = re.compile(r"\d{4,}")


def parse_placeholders(pattern: str) -> list[tuple[str, str]]:
    """Return the ``(name, format_spec)`` placeholders of a pattern, refusing anything clever.

    ``str.format`` would let ``{time.__class__}`` or ``{x[0]}`` reach attributes, so only bare
    names are allowed, and no ``!r``/``!s`` conversions.
    """
    found: list[tuple[str, str]] = []
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as err:
        raise ValueError(
            f"the pattern is not a valid format string ({err}); "
            "write placeholders as {name} or {name:%Y%m%d}, and '{{' for a brace"
        ) from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier():
            raise ValueError(
                f"placeholder {{{field}}} is not allowed: use a bare dimension name such as "
                "{time} (no attributes, indexes or positional fields)"
            )
        if conversion:
            raise ValueError(f"placeholder {{{field}!{conversion}}}: conversions are not allowed")
        if spec and "{" in spec:
            raise ValueError(f"placeholder {{{field}:{spec}}}: nested placeholders are not allowed")
        # '{n:>999999999}' would build a gigabyte string per key; strftime specs ('%Y%m%d0000')
        # only copy their digits, so the bound applies to format-mini-language specs alone.
        if spec and not _STRFTIME.search(spec) and _BIG_NUMBER.search(spec):
            raise ValueError(
                f"placeholder {{{field}:{spec}}}: widths and precisions over 999 are not allowed"
            )
        found.append((field, spec or ""))
    return found


@dataclass(frozen=True, eq=False)
class PatternDim:
    """One dimension of a pattern with its keys, in file order."""

    name: str
    role: Literal["concat", "merge"]
    keys: Sequence[Any]  # pd.DatetimeIndex for date ranges, tuples otherwise
    items_per_file: int | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def key(self, i: int) -> Any:
        value = self.keys[i]
        return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value

    def label(self, i: int) -> str:
        """A short human label for the i-th key (dates in ISO form)."""
        value = self.keys[i]
        if isinstance(value, pd.Timestamp):
            return (
                value.isoformat()
                if (value.hour or value.minute or value.second)
                else value.strftime("%Y-%m-%d")
            )
        return str(value)

    def pruned(self, n: int) -> PatternDim:
        if self.role == "merge":
            return self
        return PatternDim(self.name, self.role, self.keys[:n], self.items_per_file)


@dataclass(frozen=True, eq=False)
class FilePattern:
    """A pattern and its dimensions. Sources are numbered in C order over ``dims``."""

    template: str
    dims: tuple[PatternDim, ...]
    base_dir: str | None = None  # folder that relative local paths resolve against

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(d) for d in self.dims)

    def __len__(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.dims else 0

    def key_of(self, index: int) -> SourceKey:
        return tuple(int(i) for i in np.unravel_index(index, self.shape))

    def url(self, key: SourceKey) -> str:
        values = {d.name: d.key(i) for d, i in zip(self.dims, key, strict=True)}
        out: list[str] = []
        for literal, field, spec, _conv in string.Formatter().parse(self.template):
            out.append(literal)
            if field is not None:
                out.append(format(values[field], spec or ""))
        text = "".join(out)
        if self.base_dir and is_relative_path(text):
            text = posixpath.normpath(posixpath.join(self.base_dir, text))
        return text

    def items(self) -> list[tuple[SourceKey, str]]:
        """Every (key, url) in order. Each placeholder is formatted once per key of its dim,
        not once per source, and the pieces are joined by broadcasting object arrays over
        the pattern's shape (one C loop per piece): 100,000 sources expand in ~0.1 s."""
        if not self.dims:
            return []
        position = {d.name: i for i, d in enumerate(self.dims)}
        ndim = len(self.dims)
        joined: np.ndarray = np.array("", dtype=object)
        for literal, field, spec, _conv in string.Formatter().parse(self.template):
            if field is None:
                joined = joined + literal
                continue
            p = position[field]
            dim = self.dims[p]
            if isinstance(dim.keys, pd.DatetimeIndex) and spec and "%" in spec:
                texts = strftime_all(dim.keys, spec)  # the same text as format()
            else:
                texts = [format(dim.key(i), spec or "") for i in range(len(dim))]
            piece = literal + np.array(texts, dtype=object)
            joined = joined + piece.reshape([-1 if i == p else 1 for i in range(ndim)])
        urls = np.broadcast_to(joined, self.shape).ravel().tolist()
        if self.base_dir and is_relative_path(self.template):
            base = self.base_dir
            urls = [posixpath.normpath(posixpath.join(base, url)) for url in urls]
        return list(zip(itertools.product(*(range(len(d)) for d in self.dims)), urls,
                        strict=True))

    def dim(self, name: str) -> PatternDim:
        for d in self.dims:
            if d.name == name:
                return d
        raise KeyError(name)

    def pruned(self, n: int) -> FilePattern:
        return FilePattern(self.template, tuple(d.pruned(n) for d in self.dims), self.base_dir)


def url_scheme(url: str) -> str:
    """The scheme of a URL ('' for a plain path). Windows drive letters are not schemes."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep and head.isalnum() and len(head) > 1 else ""


def is_chained_url(url: str) -> bool:
    """fsspec reads ``a::b`` as a chain of filesystems, wherever the '::' sits."""
    # Brackets hold IPv6 literals, whose '::' is not a chain; blank them out first.
    return "::" in re.sub(r"\[[0-9A-Fa-f:.%a-zA-Z]*\]", "[]", url)


def is_relative_path(url: str) -> bool:
    """A plain relative path, to resolve against the recipe's folder. A chained URL
    (``simplecache::https://...``) or one with a backslash is no path at all: it is left as
    written, so the URL policy refuses it with the text the recipe holds."""
    return (
        not url_scheme(url)
        and not url.startswith("/")
        and "\\" not in url
        and not is_chained_url(url)
    )
