"""Small JSON and listing helpers that work on local paths and object-store URLs alike.

The bake's bookkeeping (version folders, ``bake.json``, ``sources.json``) lives beside the store,
which may be a local folder or ``gs://`` / ``s3://`` for engines that run elsewhere; fsspec
gives both one interface.
"""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from recipes_core.plan.pattern import url_scheme


def is_remote(path: str) -> bool:
    return bool(url_scheme(path)) and url_scheme(path) != "file"


def join(root: str, *parts: str) -> str:
    return posixpath.join(root, *parts) if is_remote(root) else os.path.join(root, *parts)


def absolute(path: str) -> str:
    return path if is_remote(path) else os.path.abspath(os.path.expanduser(path))


def read_json(path: str) -> Any | None:
    """The parsed document, or None when it does not exist or is not valid JSON."""
    try:
        with fsspec.open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_json(path: str, payload: Any, *, indent: int | None = 2) -> None:
    """Write a JSON document whole: a temporary file renamed into place where the store can."""
    text = json.dumps(payload, indent=indent, sort_keys=True, default=str)
    if is_remote(path):
        with fsspec.open(path, "w", encoding="utf-8") as f:  # object stores write whole objects
            f.write(text)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def list_names(path: str) -> list[str]:
    """Names of the entries of a folder (empty when it does not exist)."""
    fs, root = url_to_fs(path)
    try:
        return [posixpath.basename(p.rstrip("/")) for p in fs.ls(root, detail=False)]
    except FileNotFoundError:
        return []


def exists(path: str) -> bool:
    fs, root = url_to_fs(path)
    return bool(fs.exists(root))


def parent(path: str) -> str:
    return posixpath.dirname(path.rstrip("/")) if is_remote(path) else os.path.dirname(path)


def remove_tree(path: str) -> None:
    """Delete a folder and everything in it; nothing happens when it does not exist."""
    fs, root = url_to_fs(path)
    if fs.exists(root):
        fs.rm(root, recursive=True)
