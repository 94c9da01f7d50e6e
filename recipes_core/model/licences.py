"""Recipe licences: SPDX identifiers and expressions, checked against the SPDX licence list.

The list ships inside the ``license-expression`` package (no network). STAC's ``other`` and
``proprietary`` stay allowed for data under a licence with no SPDX identifier, and so do
SPDX's own ``LicenseRef-...`` identifiers for such a licence.
"""

from __future__ import annotations

import difflib
import functools

from license_expression import ExpressionError, Licensing, get_spdx_licensing

STAC_LICENSES = ("other", "proprietary")
_EXAMPLES = "e.g. CC-BY-4.0, CC0-1.0, MIT, or an expression such as 'MIT OR Apache-2.0'"


@functools.cache
def _licensing() -> Licensing:
    return get_spdx_licensing()


@functools.cache
def _spdx_ids() -> dict[str, str]:
    """Lower-case SPDX licence id -> its spelling, for suggestions (no exceptions, no refs)."""
    return {
        symbol.key.lower(): symbol.key
        for symbol in _licensing().known_symbols.values()
        if not symbol.is_exception and not symbol.key.startswith("LicenseRef-")
    }


def closest_spdx_id(name: str) -> str | None:
    found = difflib.get_close_matches(name.lower(), _spdx_ids(), n=1, cutoff=0.6)
    return _spdx_ids()[found[0]] if found else None


def check_license(value: str) -> str:
    """Return ``value`` if it is an SPDX licence expression (or STAC's other/proprietary)."""
    if value in STAC_LICENSES:
        return value
    licensing = _licensing()
    try:
        expression = licensing.parse(value, validate=False, strict=True)
    except ExpressionError as err:
        raise ValueError(
            f"{value!r} is not a valid SPDX licence expression ({err}); write an SPDX "
            f"identifier or expression ({_EXAMPLES})"
        ) from None
    unknown = [
        key for key in licensing.unknown_license_keys(expression)
        if not key.startswith("LicenseRef-")  # SPDX's form for a licence with no id
    ]
    if unknown:
        close = closest_spdx_id(unknown[0])
        hint = f" Did you mean '{close}'?" if close else ""
        raise ValueError(
            f"{unknown[0]!r} is not an SPDX licence identifier.{hint} Use an id from the SPDX "
            f"licence list ({_EXAMPLES}), or 'other' for a licence that has none"
        )
    return value
