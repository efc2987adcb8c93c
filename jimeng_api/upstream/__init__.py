"""The only package that speaks Jimeng: transport, identities, records, drafts.

It imports neither Flask nor the layers above it (an import-linter contract in
``make test`` keeps it so).
"""

from .client import (
    AlreadyClaimedError,
    AmbiguousSubmitError,
    JimengClient,
    ParallelLimitError,
    ProxyUnreachableError,
    sign,
)
from .drafts import Draft
from .records import Record
from .sessions import account_id, describe, region_of, session_id

__all__ = [
    "AlreadyClaimedError",
    "AmbiguousSubmitError",
    "Draft",
    "JimengClient",
    "ParallelLimitError",
    "ProxyUnreachableError",
    "Record",
    "account_id",
    "describe",
    "region_of",
    "session_id",
    "sign",
]
