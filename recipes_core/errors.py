"""One error tree for everything a user can get wrong.

Every error that reaches a user derives from :class:`ArcoError`, so the CLI can print it as a
short paragraph (never a bare traceback) and callers can catch one class. Each error says *what*
is wrong, *where* (file and line, field path, source URL or chunk key) and, when we know it, *how
to fix it*. Errors are plain picklable values because Beam ships them between workers.
"""

from __future__ import annotations


class ArcoError(Exception):
    """Base class of every error this package raises on purpose.

    ``where`` names the place (a recipe file and line, a source URL, a chunk key); ``fix`` says
    what the user can do about it. Both are optional, and both are part of ``str(error)``.
    """

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.message = message
        self.where = where
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            text += f" Fix: {self.fix}"
        return text

    def __reduce__(self):  # keyword-only arguments need an explicit reduce to pickle
        return (_rebuild, (type(self), self.message, self.where, self.fix))


def _rebuild(cls: type[ArcoError], message: str, where: str | None, fix: str | None) -> ArcoError:
    return cls(message, where=where, fix=fix)


class RecipeError(ArcoError):
    """The recipe file itself is wrong: unreadable YAML, unknown fields, bad values."""


class RecipeValidationError(RecipeError):
    """A recipe failed validation; ``problems`` holds one message per problem, with its line."""

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        fix: str | None = None,
        problems: tuple[str, ...] = (),
    ) -> None:
        self.problems = tuple(problems)
        super().__init__(message, where=where, fix=fix)

    def _render(self) -> str:
        head = super()._render()
        if not self.problems:
            return head
        return head + "\n" + "\n".join(f"  - {p}" for p in self.problems)

    def __reduce__(self):
        return (_rebuild_validation, (self.message, self.where, self.fix, self.problems))


def _rebuild_validation(
    message: str, where: str | None, fix: str | None, problems: tuple[str, ...]
) -> RecipeValidationError:
    return RecipeValidationError(message, where=where, fix=fix, problems=problems)


class UnsafeRecipeError(RecipeError):
    """A recipe asks for something a bakery never does: local files, private hosts, code."""


class PlanError(ArcoError):
    """The recipe is valid but cannot be compiled into a plan (for instance misaligned chunks)."""


class AlignmentError(PlanError):
    """Target chunks, shards or file boundaries do not line up."""


class SourceError(ArcoError):
    """A source could not be fetched or opened. ``where`` is its URL."""


class SourceMissingError(SourceError):
    """A source does not exist (HTTP 404, a missing file)."""


class ChecksumError(SourceError):
    """A source's bytes do not match its expected size or sha256."""


class SchemaError(ArcoError):
    """Sources disagree with each other (grid, dtype, coordinates); ``where`` names the file."""


class TargetError(ArcoError):
    """The target store is unusable or inconsistent with the plan."""


class VerificationError(TargetError):
    """A baked store does not match its sources."""


class RunnerError(ArcoError):
    """A runner profile is invalid or an engine failed."""
