"""The only package that speaks Jimeng: transport, identities, records, drafts.

It imports neither Flask nor the layers above it (an import-linter contract in
``make test`` keeps it so).
"""

from .client import JimengClient
from .drafts import Draft
from .failures import (
    AlreadyClaimedError,
    AmbiguousSubmitError,
    ParallelLimitError,
    ProxyUnreachableError,
)
from .records import Record
from .tokens import account_id, describe, region_of, session_id
from .transport import sign

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
