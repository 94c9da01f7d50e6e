"""Join paths under a root without ever leaving it (DESIGN §6, promise 6).

Parts come from recipes (an id, a manifest name) or are built from them, so each is checked as
text *before* it touches the filesystem: a refusal needs no ``stat`` and cannot be raced.
"""

from __future__ import annotations

import os
import posixpath
import re

from recipes_core.errors import UnsafeRecipeError

__all__ = ["check_relative_part", "is_inside", "safe_join"]

# Percent-encoded '.', '/', '\\' and NUL: a later decoding step must not be able to make them.
_ENCODED = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:")
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def check_relative_part(part: str, *, what: str = "path") -> list[str]:
    """The '/'-separated segments of a relative path, or an :class:`UnsafeRecipeError`.

    Refused: empty text, absolute paths, drive letters, backslashes, NUL and other control
    characters, ``.`` and ``..`` segments, empty segments (``a//b``) and percent-encoded dots,
    slashes, backslashes or NULs.
    """
    problem = None
    if not isinstance(part, str) or not part:
        problem = "is empty"
    elif "\x00" in part or any(ord(c) < 0x20 or c == "\x7f" for c in part):
        problem = "contains a NUL or control character"
    elif "\\" in part:
        problem = "contains a backslash"
    elif part.startswith("/") or _DRIVE.match(part):
        problem = "is an absolute path"
    elif _ENCODED.search(part):
        problem = "contains a percent-encoded '.', '/', '\\' or NUL"
    else:
        segments = part.split("/")
        if any(s in ("", ".", "..") for s in segments):
            problem = "has an empty, '.' or '..' segment"
    if problem is not None:
        shown = repr(part.replace("\x00", "\\0")) if isinstance(part, str) else repr(part)
        raise UnsafeRecipeError(
            f"the {what} {shown} {problem}, which could point outside its folder",
            fix=f"use a plain relative {what} made of names separated by '/'.",
        )
    return segments


def is_inside(root: str, path: str) -> bool:
    """Whether ``path`` is ``root`` or lies below it (by text, after normalising both)."""
    root = os.path.abspath(root)
    path = os.path.abspath(path)
    try:
        return os.path.commonpath([root, path]) == root
    except ValueError:  # different drives on Windows
        return False


def safe_join(root: str | os.PathLike[str], *parts: str) -> str:
    """``root/part1/part2...``, refusing any part that could escape ``root``.

    Every part is checked by :func:`check_relative_part`; a local result is checked once more to
    be inside ``root``. ``root`` may be an object-store URL (``gs://bucket/datasets``). Symlinks
    are not followed here (the caller owns ``root``).
    """
    segments: list[str] = []
    for part in parts:
        segments.extend(check_relative_part(part))
    text = os.fspath(root)
    if _REMOTE.match(text) and not text.startswith("file://"):
        return posixpath.join(text, *segments)  # an object-store root: '/' and no abspath
    base = os.path.abspath(text)
    joined = os.path.join(base, *segments)
    if not is_inside(base, joined):  # unreachable after the checks above; kept as a backstop
        raise UnsafeRecipeError(f"the path {joined!r} is outside {base!r}")
    return joined
