"""Storage: the source-access policy, staging of sources into a local cache, and retries.

This is the only package that touches the network or source files.
"""

from recipes_core.storage.policy import AccessPolicy, check_url, redact_url
from recipes_core.storage.stage import StagedSource, Stager

__all__ = ["AccessPolicy", "StagedSource", "Stager", "check_url", "redact_url"]
