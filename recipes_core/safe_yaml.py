"""Read untrusted recipe YAML safely, and remember which line every value came from.

Recipes arrive in pull requests from strangers, so loading one must never run code, never
explode in memory and never hang. This module therefore:

* builds on PyYAML's ``SafeLoader`` only, and composes the node graph itself so that every
  node keeps its source position (``Mark``);
* refuses anything a recipe never needs, with an :class:`~recipes_core.errors.UnsafeRecipeError`
  that names the file and line: non-standard tags (``!!python/...``, ``!custom``), duplicate or
  non-text keys, merge keys, several documents, oversized, over-deep or alias-bombed documents;
* checks the size of the document *after* alias expansion on the node graph, by memoisation,
  before any Python value is built, so a one-kilobyte "billion laughs" is refused at once;
* constructs plain values only (dict, list, str, int, float, bool, None). YAML timestamps stay
  strings, because the recipe model, not YAML 1.1's loose rules, decides what a date is;
* returns a :class:`SourceMap` from field paths to lines, which :func:`format_validation_error`
  uses to turn a pydantic ``ValidationError`` into one plain-English line per problem.
"""

from __future__ import annotations

import codecs
import collections.abc
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import pydantic
import yaml
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent, StreamEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from recipes_core.errors import RecipeError, RecipeValidationError, UnsafeRecipeError

__all__ = [
    "FieldPath",
    "Limits",
    "SourceMap",
    "format_validation_error",
    "load_yaml",
    "load_yaml_file",
]

#: A path into loaded data: mapping keys are ``str``, list indexes are ``int``.
FieldPath = tuple[str | int, ...]

_YAML_PREFIX = "tag:yaml.org,2002:"
_STR = _YAML_PREFIX + "str"
_INT = _YAML_PREFIX + "int"
_FLOAT = _YAML_PREFIX + "float"
_BOOL = _YAML_PREFIX + "bool"
_NULL = _YAML_PREFIX + "null"
_TIMESTAMP = _YAML_PREFIX + "timestamp"
_VALUE = _YAML_PREFIX + "value"  # YAML 1.1 resolves a bare "=" to this; we read it as text
_MERGE = _YAML_PREFIX + "merge"
_SEQ = _YAML_PREFIX + "seq"
_MAP = _YAML_PREFIX + "map"

# Tags each node kind may carry. Everything else is refused: python/* tags run code, and the
# remaining standard ones (binary, set, omap, pairs) build values that are not plain data.
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP, _VALUE})
_ALLOWED_TAGS: dict[type[Node], frozenset[str]] = {
    ScalarNode: _SCALAR_TAGS,
    SequenceNode: frozenset({_SEQ}),
    MappingNode: frozenset({_MAP}),
}
_PLAIN_TAGS = _SCALAR_TAGS | {_SEQ, _MAP}
# Key tags that construct to ``str``: text, dates (kept as text) and the YAML 1.1 "=".
_TEXT_KEY_TAGS = frozenset({_STR, _TIMESTAMP, _VALUE})


@dataclass(frozen=True)
class Limits:
    """Upper bounds that keep a hostile recipe from exhausting memory or time."""

    max_bytes: int = 256 * 1024  # document size, checked before parsing
    max_depth: int = 32  # nesting depth of mappings/sequences, after alias expansion
    max_nodes: int = 20_000  # total nodes after alias expansion (stops "billion laughs")
    max_aliases: int = 100  # alias (*ref) uses


class SourceMap:
    """Maps a field path (tuple of str keys / int indexes) to ``(line, column)``, 1-based.

    A mapping entry is located at its key (where the user wrote ``name:``), a list item at the
    start of the item and the empty path at the start of the document. Values reached through
    an alias are located where the anchored text is.
    """

    __slots__ = ("_filename", "_positions")

    def __init__(
        self,
        filename: str = "<recipe>",
        positions: collections.abc.Mapping[FieldPath, tuple[int, int]] | None = None,
    ) -> None:
        self._filename = filename
        self._positions: dict[FieldPath, tuple[int, int]] = dict(positions or {})

    @property
    def filename(self) -> str:
        """The file name given to :func:`load_yaml`, used by :meth:`describe`."""
        return self._filename

    def locate(self, path: collections.abc.Sequence[str | int]) -> tuple[int, int] | None:
        """The position of ``path``, else of its nearest known ancestor; None if nothing."""
        key = _as_path(path)
        while True:
            found = self._positions.get(key)
            if found is not None:
                return found
            if not key:
                return None
            key = key[:-1]

    def describe(self, path: collections.abc.Sequence[str | int]) -> str:
        """A human-readable place such as ``"recipe.yaml, line 12"``."""
        found = self.locate(path)
        return f"{self._filename}, line {found[0]}" if found else self._filename

    def __contains__(self, path: object) -> bool:
        """Whether ``path`` itself (not an ancestor) exists in the loaded data."""
        if not isinstance(path, collections.abc.Sequence):
            return False
        return _as_path(path) in self._positions

    def __len__(self) -> int:
        return len(self._positions)

    def __repr__(self) -> str:
        return f"SourceMap({self._filename!r}, {len(self._positions)} paths)"


def _as_path(path: collections.abc.Sequence[str | int]) -> FieldPath:
    # A bare string is a Sequence too; treat it as a one-element path, not as characters.
    if isinstance(path, str):
        return (path,)
    return tuple(path)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_yaml(
    text: str | bytes, *, filename: str = "<recipe>", limits: Limits = Limits()
) -> tuple[Any, SourceMap]:
    """Parse one YAML document of plain data and return it with its :class:`SourceMap`.

    Raises :class:`RecipeError` for unreadable YAML and :class:`UnsafeRecipeError` for YAML
    that a recipe must not contain (see the module docstring).
    """
    source = _decode(text, filename, limits)
    loader, root = _compose(source, filename, limits)
    try:
        _GraphCheck(filename, limits, uses_aliases=loader.aliases_used > 0).check(root)
        builder = _Builder(loader, filename)
        data = builder.build(root)
    finally:
        loader.dispose()
    return data, SourceMap(filename, builder.positions)


def load_yaml_file(
    path: str | os.PathLike[str], *, limits: Limits = Limits()
) -> tuple[Any, SourceMap]:
    """Read and parse a recipe file; error messages name it as given in ``path``."""
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as handle:
            # One byte over the limit is enough to know the file is too big; never read more.
            data = handle.read(limits.max_bytes + 1)
    except FileNotFoundError:
        raise RecipeError(
            f"there is no recipe file at {filename}.",
            where=filename,
            fix="Check the path and the current directory.",
        ) from None
    except IsADirectoryError:
        raise RecipeError(
            f"{filename} is a directory, not a recipe file.",
            where=filename,
            fix="Name the recipe's YAML file itself.",
        ) from None
    except OSError as exc:
        raise RecipeError(
            f"could not read the recipe file: {exc.strerror or exc}.", where=filename
        ) from exc
    return load_yaml(data, filename=filename, limits=limits)


def _decode(text: str | bytes, filename: str, limits: Limits) -> str:
    """Check the size before any parsing, then return the text as ``str``."""
    if isinstance(text, bytes | bytearray):
        size = len(text)
    else:
        # surrogatepass: count lone surrogates instead of failing; the reader refuses them later.
        size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise UnsafeRecipeError(
            f"the recipe is larger than the limit of {limits.max_bytes} bytes.",
            where=filename,
            fix="Recipes are short declarations; shorten it, for example by describing many "
            "source files with a pattern instead of listing them.",
        )
    if isinstance(text, str):
        return text
    data = bytes(text)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"  # also strips a UTF-8 byte-order mark
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RecipeError(
            f"the file is not valid {encoding.upper().removesuffix('-SIG')} text "
            f"(byte {exc.start} cannot be decoded).",
            where=f"{filename}, line {line}",
            fix="Save the recipe as UTF-8.",
        ) from None


class _RecipeLoader(yaml.SafeLoader):
    """A SafeLoader that counts alias uses and nesting depth while it composes.

    Both checks must happen during composition: PyYAML's composer is recursive, so without a
    depth bound a deeply nested flow sequence would end in RecursionError rather than a message.
    """

    def __init__(self, source: str, filename: str, limits: Limits) -> None:
        super().__init__(source)
        self._filename = filename
        self._limits = limits
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > self._limits.max_aliases:
                raise _unsafe_at(
                    self._filename,
                    self.peek_event().start_mark,
                    f"the recipe uses more than {self._limits.max_aliases} aliases (*name).",
                    "Write the repeated values out, or repeat them less.",
                )
            return super().compose_node(parent, index)
        if self.check_event(SequenceStartEvent, MappingStartEvent):
            self._depth += 1
            try:
                if self._depth > self._limits.max_depth:
                    raise _depth_error(self._filename, self.peek_event().start_mark, self._limits)
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)

    @property
    def aliases_used(self) -> int:
        return self._aliases


def _construct_text(loader: yaml.SafeLoader, node: ScalarNode) -> str:
    return str(loader.construct_scalar(node))


# Dates and times stay text: the recipe model parses them, with its own rules and messages.
_RecipeLoader.add_constructor(_TIMESTAMP, _construct_text)
_RecipeLoader.add_constructor(_VALUE, _construct_text)


def _compose(source: str, filename: str, limits: Limits) -> tuple[_RecipeLoader, Node]:
    """Compose exactly one document into a node graph (aliases shared, nothing built yet)."""
    try:
        # The reader checks for unprintable characters as soon as it is created, so creating
        # the loader belongs under the same error handling as parsing.
        loader = _RecipeLoader(source, filename, limits)
        loader.get_event()  # STREAM-START
        if loader.check_event(StreamEndEvent):
            raise _empty(filename)
        root = loader.compose_document()
        if not loader.check_event(StreamEndEvent):
            raise _unsafe_at(
                filename,
                loader.peek_event().start_mark,
                "the file holds more than one YAML document; a recipe is exactly one.",
                "Remove the second '---' and what follows it, or move it to its own file.",
            )
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, filename) from exc
    except yaml.reader.ReaderError as exc:
        line = source[: exc.position].count("\n") + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise RecipeError(
            f"could not read the YAML: the character U+{ord(char):04X} is not allowed in YAML "
            "text.",
            where=f"{filename}, line {line}",
            fix="Remove the control character (often pasted in by accident).",
        ) from exc
    except yaml.YAMLError as exc:  # any other PyYAML complaint still becomes a RecipeError
        raise RecipeError(f"could not parse the YAML: {exc}.", where=filename) from exc
    if root is None or (
        isinstance(root, ScalarNode) and root.tag == _NULL and root.value == "" and not root.style
    ):
        raise _empty(filename)
    return loader, root


def _empty(filename: str) -> UnsafeRecipeError:
    # Refused like the other shapes a recipe may not have (UnsafeRecipeError is a RecipeError).
    return UnsafeRecipeError(
        "the recipe file is empty.",
        where=filename,
        fix="Write the recipe as a YAML mapping, starting with its title.",
    )


# Plain-word replacements for the PyYAML problems people hit most often.
_SYNTAX_HINTS: tuple[tuple[str, str], ...] = (
    ("'\\t'", "YAML indents with spaces, never tabs; replace the tabs with spaces."),
    (
        "mapping values are not allowed here",
        "Check the indentation, or quote a value that contains ': '.",
    ),
    ("could not find expected ':'", "Check that each key is followed by ': '."),
    ("found undefined alias", "Define the anchor (&name) before using the alias (*name)."),
    ("found duplicate anchor", "Give each anchor (&name) a different name."),
)


def _syntax_error(exc: yaml.MarkedYAMLError, filename: str) -> RecipeError:
    mark = exc.problem_mark or exc.context_mark
    problem = (exc.problem or exc.context or "invalid YAML").strip().rstrip(".")
    where = (
        filename if mark is None else f"{filename}, line {mark.line + 1}, column {mark.column + 1}"
    )
    fix = next(
        (hint for needle, hint in _SYNTAX_HINTS if needle in problem),
        "Check the indentation, colons and quotes near that line.",
    )
    return RecipeError(f"could not parse the YAML: {problem}.", where=where, fix=fix)


def _unsafe_at(filename: str, mark: yaml.Mark | None, message: str, fix: str) -> UnsafeRecipeError:
    # The "what to do" sentence is part of the message so the one-line form reads naturally.
    where = filename if mark is None else f"{filename}, line {mark.line + 1}"
    return UnsafeRecipeError(f"{message} {fix}", where=where)


def _depth_error(filename: str, mark: yaml.Mark | None, limits: Limits) -> UnsafeRecipeError:
    return _unsafe_at(
        filename,
        mark,
        f"the recipe nests mappings and lists more than {limits.max_depth} levels deep.",
        "Flatten the structure.",
    )


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML_PREFIX) if tag.startswith(_YAML_PREFIX) else tag


class _GraphCheck:
    """Checks the composed node graph before anything is constructed.

    Aliases make the graph a DAG (or, with ``&a [*a]``, a cycle), so each distinct node is
    inspected once and its expanded size and height are memoised: the cost is linear in the
    text even when the expansion would be astronomically large.
    """

    def __init__(self, filename: str, limits: Limits, *, uses_aliases: bool) -> None:
        self._filename = filename
        self._limits = limits
        self._uses_aliases = uses_aliases
        self._memo: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
        self._active: set[int] = set()  # nodes on the current path, to detect cycles

    def check(self, root: Node) -> None:
        self._visit(root, 1)

    def _visit(self, node: Node, depth: int) -> tuple[int, int]:
        """Return (nodes after expansion, collection height); ``depth`` counts this level."""
        key = id(node)
        if key in self._active:
            raise _unsafe_at(
                self._filename,
                node.start_mark,
                "an alias (*name) refers to the mapping or list that contains it, which would "
                "make the recipe infinitely large.",
                "Remove the alias.",
            )
        memo = self._memo.get(key)
        if memo is not None:
            # Reused through an alias: the shared subtree may now sit deeper than it did first.
            if depth - 1 + memo[1] > self._limits.max_depth:
                raise _depth_error(self._filename, node.start_mark, self._limits)
            return memo
        self._check_tag(node)
        if isinstance(node, ScalarNode):
            result = (1, 0)
        else:
            if depth > self._limits.max_depth:
                raise _depth_error(self._filename, node.start_mark, self._limits)
            if isinstance(node, MappingNode):
                self._check_keys(node)
                children = [child for pair in node.value for child in pair]
            else:
                children = list(node.value)
            self._active.add(key)
            size, height = 1, 0
            for child in children:
                child_size, child_height = self._visit(child, depth + 1)
                size += child_size
                height = max(height, child_height)
                if size > self._limits.max_nodes:
                    raise self._too_many_nodes(node)
            self._active.discard(key)
            result = (size, height + 1)
        self._memo[key] = result
        return result

    def _too_many_nodes(self, node: Node) -> UnsafeRecipeError:
        limit = self._limits.max_nodes
        if self._uses_aliases:
            return _unsafe_at(
                self._filename,
                node.start_mark,
                f"the recipe holds more than {limit} values once its aliases (*name) are expanded.",
                "Write the values out instead of nesting aliases, or shorten it.",
            )
        return _unsafe_at(
            self._filename,
            node.start_mark,
            f"the recipe holds more than {limit} values.",
            "Shorten it, for example by describing many source files with a pattern instead "
            "of listing them.",
        )

    def _check_tag(self, node: Node) -> None:
        if node.tag in _ALLOWED_TAGS[type(node)]:
            return
        shown = _show_tag(node.tag)
        standard = node.tag.startswith(_YAML_PREFIX) and not node.tag.startswith(
            _YAML_PREFIX + "python/"
        )
        if node.tag in _PLAIN_TAGS:  # e.g. "!!seq" written on a mapping
            message = f"the tag '{shown}' cannot be used on this kind of value."
        elif standard:
            message = (
                f"the tag '{shown}' is not supported: recipes hold plain text, numbers, "
                "true/false, lists and mappings."
            )
        else:
            message = f"the tag '{shown}' is not allowed: recipes are data, never code."
        raise _unsafe_at(self._filename, node.start_mark, message, "Remove the tag.")

    def _check_keys(self, node: MappingNode) -> None:
        seen: dict[str, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                raise _unsafe_at(
                    self._filename,
                    key_node.start_mark,
                    "merge keys '<<' are not supported.",
                    "Write the keys out in full.",
                )
            if not isinstance(key_node, ScalarNode):
                kind = "a list" if isinstance(key_node, SequenceNode) else "a mapping"
                raise _unsafe_at(
                    self._filename,
                    key_node.start_mark,
                    f"a mapping key is {kind}; recipe keys must be text.",
                    "Use a plain name as the key.",
                )
            self._check_tag(key_node)
            if key_node.tag not in _TEXT_KEY_TAGS:
                shown = key_node.value if key_node.value else "(empty)"
                what = {
                    _INT: "a number",
                    _FLOAT: "a number",
                    _BOOL: "true/false",
                    _NULL: "null",
                }.get(key_node.tag, "something other than text")
                raise _unsafe_at(
                    self._filename,
                    key_node.start_mark,
                    f"the key {shown} is read as {what}, but recipe keys must be text.",
                    f'Put the key in quotes, for example "{key_node.value}":',
                )
            name = key_node.value
            first = seen.get(name)
            if first is not None:
                raise _unsafe_at(
                    self._filename,
                    key_node.start_mark,
                    f"the key '{name}' appears twice in the same mapping (first on line "
                    f"{first.start_mark.line + 1}, again on line {key_node.start_mark.line + 1}).",
                    "Keep only one of them.",
                )
            seen[name] = key_node


_SCALAR_WORDS = {_INT: "a whole number", _FLOAT: "a number", _BOOL: "true/false", _NULL: "null"}


def _position(node: Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


@dataclass
class _Builder:
    """Builds plain Python values from a checked node graph, recording each path's position.

    Aliased content is built afresh for every use (the graph check bounded the total), so no
    two places in the result share a mutable object and each path gets its own entry.
    """

    loader: _RecipeLoader
    filename: str
    positions: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)

    def build(self, root: Node) -> Any:
        self.positions[()] = _position(root)
        return self._build(root, ())

    def _build(self, node: Node, path: FieldPath) -> Any:
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if isinstance(node, SequenceNode):
            items: list[Any] = []
            for index, child in enumerate(node.value):
                child_path = (*path, index)
                self.positions[child_path] = _position(child)
                items.append(self._build(child, child_path))
            return items
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)  # the graph check guaranteed a text scalar
            child_path = (*path, key)
            self.positions[child_path] = _position(key_node)  # where the user wrote "key:"
            mapping[key] = self._build(value_node, child_path)
        return mapping

    def _scalar(self, node: ScalarNode) -> Any:
        constructor = self.loader.yaml_constructors[node.tag]
        try:
            return constructor(self.loader, node)
        except (ValueError, KeyError, TypeError, OverflowError, yaml.YAMLError):
            # Only reachable with an explicit tag (``!!int abc``) or an absurdly long number.
            line, column = _position(node)
            shown = node.value if len(node.value) <= 60 else node.value[:57] + "..."
            what = _SCALAR_WORDS.get(node.tag, _show_tag(node.tag))
            raise RecipeError(
                f"could not read {shown!r} as {what}.",
                where=f"{self.filename}, line {line}, column {column}",
                fix="Correct the value, or put it in quotes to keep it as text.",
            ) from None


# --------------------------------------------------------------------------------------------
# Validation errors
# --------------------------------------------------------------------------------------------

_MAX_SHOWN = 60

# What a "<name>_type" / "<name>_parsing" error expects, in words.
_EXPECTED: dict[str, str] = {
    "string": "text",
    "str": "text",
    "bytes": "text",
    "int": "a whole number",
    "float": "a number",
    "decimal": "a number",
    "complex": "a number",
    "bool": "true or false",
    "dict": "a mapping",
    "model": "a mapping",
    "model_attributes": "a mapping",
    "dataclass": "a mapping",
    "list": "a list",
    "tuple": "a list",
    "set": "a list",
    "frozen_set": "a list",
    "iterable": "a list",
    "date": "a date (YYYY-MM-DD)",
    "datetime": "a date and time (YYYY-MM-DDTHH:MM:SS)",
    "time": "a time (HH:MM:SS)",
    "timedelta": "a duration",
    "url": "a URL",
    "uuid": "a UUID",
    "none": "null",
    "enum": "one of the allowed values",
}

# Parsing errors, phrased as "<value> is not a valid <noun> (expected <format>)".
_PARSING: dict[str, tuple[str, str]] = {
    "int_parsing": ("whole number", "digits such as 42"),
    "int_parsing_size": ("whole number", "a smaller number"),
    "float_parsing": ("number", "a number such as 1.5"),
    "decimal_parsing": ("number", "a number such as 1.5"),
    "bool_parsing": ("true/false value", "true or false"),
    "date_parsing": ("date", "YYYY-MM-DD"),
    "date_from_datetime_parsing": ("date", "YYYY-MM-DD"),
    "datetime_parsing": ("date and time", "YYYY-MM-DDTHH:MM:SS"),
    "datetime_from_date_parsing": ("date and time", "YYYY-MM-DDTHH:MM:SS"),
    "time_parsing": ("time", "HH:MM:SS"),
    "timedelta_parsing": ("duration", "an ISO 8601 duration such as P1D or PT6H"),
    "uuid_parsing": ("UUID", "for example 123e4567-e89b-12d3-a456-426614174000"),
}

_BOUNDS: dict[str, tuple[str, str]] = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
    "multiple_of": ("multiple_of", "a multiple of"),
}


@dataclass
class _Problem:
    """One pydantic error, with its loc mapped onto the YAML's own paths."""

    error: Any  # pydantic_core.ErrorDetails
    raw: tuple[Any, ...]  # pydantic's loc, which may name union members and validators
    path: FieldPath  # only the parts that exist in the YAML (plus a missing field's name)
    branch_at: int | None  # index in ``raw`` of the first part that is not in the YAML
    text: str | None = None  # set when union branches are merged into one message


def format_validation_error(
    exc: pydantic.ValidationError,
    source_map: SourceMap,
    *,
    filename: str,
    model: type[pydantic.BaseModel] | None = None,
) -> RecipeValidationError:
    """Turn a pydantic ``ValidationError`` into a :class:`RecipeValidationError`.

    Each problem reads like ``"recipe.yaml, line 12, field source.dims.time.start: 'x' is not a
    valid date (expected YYYY-MM-DD)."``. Pass the validated ``model`` to get "Did you mean"
    suggestions for unknown fields.
    """
    problems = _prune_union_branches(
        [_map_loc(error, source_map) for error in exc.errors(include_url=False)]
    )
    # A misspelt field is reported twice by pydantic: unknown "renam" and missing "rename".
    # When the suggestion names the missing field, the "Did you mean" line says it all.
    covered: set[FieldPath] = set()
    for problem in problems:
        if problem.error.get("type") == "extra_forbidden" and problem.raw:
            close, _ = _suggest(str(problem.raw[-1]), problem.raw[:-1], model)
            if close is not None:
                covered.add((*problem.path[:-1], close))
    lines: list[str] = []
    for problem in problems:
        if problem.error.get("type") == "missing" and problem.path in covered:
            continue
        text = problem.text or _describe(problem, model)
        place = filename
        found = source_map.locate(problem.path)
        if found is not None:
            place += f", line {found[0]}"
        if problem.path:
            place += f", field {_format_path(problem.path)}"
        line = f"{place}: {text}"
        if line not in lines:  # identical messages (e.g. from two union branches) once only
            lines.append(line)
    count = len(lines)
    noun = "problem" if count == 1 else "problems"
    return RecipeValidationError(
        f"{filename} is not a valid recipe ({count} {noun})",
        where=filename,
        problems=tuple(lines),
    )


def _format_path(path: FieldPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _looks_internal(part: str) -> bool:
    # Names pydantic invents for validators and union members, e.g. "function-after[f(), int]".
    return any(char in part for char in "[](),")


def _map_loc(error: Any, source_map: SourceMap) -> _Problem:
    """Keep the loc parts that are keys or indexes of the YAML, so path and line mean something.

    Pydantic adds union member names ("int", "HttpSource"), discriminator tags and validator
    names to ``loc``; those are not in the document. A missing field's own name is not in the
    document either, but it is what the user must add, so it is kept.
    """
    raw = tuple(error.get("loc", ()))
    kept: list[str | int] = []
    branch_at: int | None = None
    no_map = len(source_map) == 0  # the data did not come from load_yaml: keep what we can
    for index, part in enumerate(raw):
        if not isinstance(part, str | int) or isinstance(part, bool):
            continue
        candidate = (*kept, part)
        last = index == len(raw) - 1
        if (
            candidate in source_map
            or (last and error.get("type") == "missing")
            or (no_map and not (isinstance(part, str) and _looks_internal(part)))
        ):
            kept.append(part)
        elif branch_at is None:
            branch_at = index
    return _Problem(error=error, raw=raw, path=tuple(kept), branch_at=branch_at)


def _is_type_error(problem: _Problem) -> bool:
    kind = str(problem.error.get("type", ""))
    return kind.endswith(("_type", "_parsing")) or kind in {"int_from_float", "none_required"}


def _prune_union_branches(problems: list[_Problem]) -> list[_Problem]:
    """Report one branch of a failed union instead of every member's complaint.

    Errors that share a loc prefix and then differ in a part absent from the YAML are the
    branches of one union. The branch that got furthest into the value is the most specific;
    when every branch just rejected the value's type, their expectations merge into one line.
    """
    groups: dict[tuple[Any, ...], dict[Any, list[_Problem]]] = {}
    for problem in problems:
        if problem.branch_at is not None:
            prefix = problem.raw[: problem.branch_at]
            member = problem.raw[problem.branch_at]
            groups.setdefault(prefix, {}).setdefault(member, []).append(problem)
    dropped: set[int] = set()
    for branches in groups.values():
        if len(branches) < 2:
            continue
        members = list(branches.values())
        if all(
            len(branch) == 1
            and _is_type_error(branch[0])
            and len(branch[0].raw) == (branch[0].branch_at or 0) + 1
            for branch in members
        ):
            keep = members[0][0]
            keep.text = _merged_type_text([branch[0] for branch in members])
            dropped.update(id(p) for branch in members for p in branch if p is not keep)
            continue
        best = max(members, key=_branch_score)
        dropped.update(id(p) for branch in members if branch is not best for p in branch)
    return [problem for problem in problems if id(problem) not in dropped]


def _branch_score(branch: list[_Problem]) -> tuple[bool, int, int, int, int]:
    # Best first: a branch that accepted the value's kind (it did not just say "expected a
    # list"), then one whose fields all matched (no missing or unknown fields: the user picked
    # this shape), then the one that got deepest, with the fewest and most specific errors.
    rejected_kind = all(_is_type_error(p) and len(p.raw) == (p.branch_at or 0) + 1 for p in branch)
    shape_errors = sum(1 for p in branch if p.error.get("type") in ("missing", "extra_forbidden"))
    deepest = max(len(p.raw) for p in branch)
    specific = sum(1 for p in branch if not _is_type_error(p))
    return (not rejected_kind, -shape_errors, deepest, -len(branch), specific)


def _expected_of(kind: str) -> str:
    if kind in _PARSING:
        noun, _ = _PARSING[kind]
        return "a " + noun if noun[0] not in "aeiouAEIOU" else "an " + noun
    base = kind.removesuffix("_type").removesuffix("_parsing")
    if kind == "int_from_float":
        base = "int"
    return _EXPECTED.get(base, base.replace("_", " "))


def _merged_type_text(problems: list[_Problem]) -> str:
    expected: list[str] = []
    for problem in problems:
        phrase = _expected_of(str(problem.error.get("type", "")))
        if phrase not in expected:
            expected.append(phrase)
    given = problems[0].error.get("input")
    joined = expected[0] if len(expected) == 1 else ", ".join(expected[:-1]) + " or " + expected[-1]
    return f"expected {joined}, got {_shown(given)} ({_kind(given)})."


def _shown(value: Any) -> str:
    """The value as a user would recognise it, cut to 60 characters."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, collections.abc.Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return "invalid value."
    return text if text.endswith((".", "!", "?")) else text + "."


def _describe(problem: _Problem, model: type[pydantic.BaseModel] | None) -> str:
    """One plain-English sentence for one pydantic error."""
    error = problem.error
    kind = str(error.get("type", ""))
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
    msg = str(error.get("msg", ""))
    name = problem.raw[-1] if problem.raw else None

    if kind == "missing":
        if isinstance(name, str):
            return f"missing required field '{name}'."
        return "a required item is missing."
    if kind == "extra_forbidden":
        return _unknown_field_text(str(name), problem.raw[:-1], model)
    if kind in _PARSING:
        noun, expected = _PARSING[kind]
        return f"{_shown(value)} is not a valid {noun} (expected {expected})."
    if kind == "date_from_datetime_inexact":
        return f"{_shown(value)} has a time of day; expected a plain date (YYYY-MM-DD)."
    if kind == "int_from_float":
        return f"expected a whole number, got {_shown(value)}."
    if kind.endswith("_type") or kind == "none_required":
        return f"expected {_expected_of(kind)}, got {_shown(value)} ({_kind(value)})."
    if kind in ("literal_error", "enum"):
        return f"{_shown(value)} is not allowed; expected {ctx.get('expected', 'another value')}."
    if kind in ("value_error", "assertion_error"):
        # pydantic prefixes the validator's own message; the message itself is what matters.
        text = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return _sentence(text)
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {ctx.get(key)}, got {_shown(value)}."
    if kind in ("string_too_short", "string_too_long"):
        bound = ctx.get("min_length" if kind == "string_too_short" else "max_length")
        words = "at least" if kind == "string_too_short" else "at most"
        unit = "character" if bound == 1 else "characters"
        return f"must be {words} {bound} {unit} long, got {_shown(value)}."
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length" if kind == "too_short" else "max_length")
        words = "at least" if kind == "too_short" else "at most"
        unit = "item" if bound == 1 else "items"
        actual = ctx.get("actual_length")
        got = f", got {actual}" if actual is not None else ""
        return f"must have {words} {bound} {unit}{got}."
    if kind == "string_pattern_mismatch":
        return f"{_shown(value)} does not match the pattern {ctx.get('pattern')!r}."
    if kind == "union_tag_invalid":
        return (
            f"{_shown(ctx.get('tag'))} is not a known {ctx.get('discriminator')}; expected "
            f"{ctx.get('expected_tags')}."
        )
    if kind == "union_tag_not_found":
        return (
            "cannot tell what kind of entry this is: the field "
            f"{ctx.get('discriminator')} is missing."
        )
    if kind == "url_parsing":
        return f"{_shown(value)} is not a valid URL ({ctx.get('error', 'unreadable')})."
    return _sentence(f"{msg} (got {_shown(value)})")


def _unknown_field_text(
    name: str, parent_loc: tuple[Any, ...], model: type[pydantic.BaseModel] | None
) -> str:
    text = f"unknown field '{name}'."
    close, known = _suggest(name, parent_loc, model)
    if close is not None:
        return f"{text} Did you mean '{close}'?"
    if known and len(known) <= 15:
        return f"{text} Known fields here: {', '.join(known)}."
    return text


def _suggest(
    name: str, parent_loc: tuple[Any, ...], model: type[pydantic.BaseModel] | None
) -> tuple[str | None, list[str]]:
    """The closest known field name to ``name`` (or None), and all known names there."""
    if model is None:
        return None, []
    known = sorted({key for cls in _models_at(model, parent_loc) for key in _field_keys(cls)})
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return (close[0] if close else None), known


def _field_keys(cls: type[pydantic.BaseModel]) -> set[str]:
    keys: set[str] = set()
    for name, info in cls.model_fields.items():
        keys.add(info.alias or name)
        if isinstance(info.validation_alias, str):
            keys.add(info.validation_alias)
        if cls.model_config.get("populate_by_name") or cls.model_config.get("validate_by_name"):
            keys.add(name)
    return keys


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _flatten_type(tp: Any) -> list[Any]:
    """Unwrap Annotated, Optional and unions into their member types."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _flatten_type(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [member for arg in typing.get_args(tp) for member in _flatten_type(arg)]
    return [tp]


def _step_type(tp: Any, part: Any) -> list[Any]:
    """The types found one loc part below ``tp`` (a field, a list item, a dict value)."""
    if _is_model(tp):
        if isinstance(part, str):
            for name, info in tp.model_fields.items():
                if part == name or part == info.alias or part == info.validation_alias:
                    return _flatten_type(info.annotation)
        return []
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if not isinstance(origin, type):
        return []
    if isinstance(part, int) and issubclass(origin, tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            return _flatten_type(args[0])
        return _flatten_type(args[part]) if 0 <= part < len(args) else []
    if (
        isinstance(part, int)
        and issubclass(origin, collections.abc.Collection)
        and not issubclass(origin, collections.abc.Mapping | str | bytes)
        and args
    ):
        return _flatten_type(args[0])
    if isinstance(part, str) and issubclass(origin, collections.abc.Mapping) and len(args) == 2:
        return _flatten_type(args[1])
    return []


def _names_member(tp: Any, part: Any) -> bool:
    """Whether ``part`` is how pydantic names this union member (class name or tag value)."""
    if not _is_model(tp) or not isinstance(part, str):
        return False
    if tp.__name__ == part:
        return True
    for info in tp.model_fields.values():
        for member in _flatten_type(info.annotation):
            if typing.get_origin(member) is typing.Literal and part in typing.get_args(member):
                return True
    return False


def _models_at(model: type[pydantic.BaseModel], loc: tuple[Any, ...]) -> list[Any]:
    """The model classes that can sit at ``loc`` (pydantic's raw loc, tags included)."""
    current: list[Any] = [model]
    for part in loc:
        following = [found for tp in current for found in _step_type(tp, part)]
        if following:
            current = following
            continue
        # Not a field: a union member's or tag's name narrows the choice; otherwise (a
        # validator's name) it is skipped.
        named = [tp for tp in current if _names_member(tp, part)]
        if named:
            current = named
    return [tp for tp in current if _is_model(tp)]
