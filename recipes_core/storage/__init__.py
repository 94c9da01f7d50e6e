"""Storage: the source-access policy, staging of sources into a local cache, and retries.

This is the only package that touches the network or source files.
"""

from recipes_core.storage.cache import StagingCache
from recipes_core.storage.paths import safe_join
from recipes_core.storage.pins import Pins
from recipes_core.storage.policy import AccessPolicy, check_url, redact_url
from recipes_core.storage.stage import StagedSource, Stager

__all__ = [
    "AccessPolicy",
    "Pins",
    "StagedSource",
    "Stager",
    "StagingCache",
    "check_url",
    "redact_url",
    "safe_join",
]
