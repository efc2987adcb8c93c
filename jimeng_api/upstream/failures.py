"""What a failed call means: ``ret`` codes mapped to our errors through one
table (with per-endpoint overrides) and the hints their messages carry (protocol
doc §2), and the errors of the transport itself: a transient failure, a submit
that may have reached Jimeng, an account proxy that cannot be reached."""

from __future__ import annotations

from ..errors import (
    APIError,
    ContentFilteredError,
    InsufficientQuotaError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    SessionExpiredError,
    UpstreamError,
    UpstreamTimeoutError,
)
from .endpoints import CREDIT_RECEIVE


class ParallelLimitError(RateLimitError):
    """ret 1310: the account runs as many tasks as it may; not accepted, not
    charged. The job waits for one of the account's tasks to end."""

    code = "exceed_model_parallel_max"
    retryable = True


class AlreadyClaimedError(RateLimitError):
    """ret 1014 on credit_receive: today's credits were claimed already."""

    code = "already_claimed"
    retryable = False


#: ``ret`` codes that mean something more specific than UpstreamError
ERRORS_BY_RET: dict[int, tuple[type[APIError], str | None]] = {
    1015: (SessionExpiredError, None),
    1006: (InsufficientQuotaError, None),
    5000: (InsufficientQuotaError, None),
    4001: (ContentFilteredError, None),  # content, never a reason to claim credits
    2038: (ContentFilteredError, None),
    1310: (ParallelLimitError, None),
    2061: (NotFoundError, "model_retired"),
    1010: (RateLimitError, None),
    1018: (PermissionDeniedError, "account_punished"),
    1019: (PermissionDeniedError, None),
    4013: (PermissionDeniedError, None),
    -4: (PermissionDeniedError, None),
    -6: (PermissionDeniedError, None),
    3018: (UpstreamError, "client_outdated"),
    1014: (UpstreamError, "system_busy"),
    1000: (UpstreamError, "upstream_rejected_request"),
    1001: (UpstreamError, "upstream_rejected_request"),
    1002: (UpstreamError, "upstream_rejected_request"),
}
#: per-endpoint meanings that differ from the table above
ERRORS_BY_ENDPOINT: dict[tuple[str, int], tuple[type[APIError], str | None]] = {
    (CREDIT_RECEIVE, 1014): (AlreadyClaimedError, None),
}
HINTS = {
    3018: " Jimeng refused this client version: update JIMENG_APP_VERSION and "
    "JIMENG_DA_VERSION to the current web client's values.",
    1014: " Jimeng said 'system busy' (or refused the signature); not retried.",
    1010: " Too many generations are running on this account.",
    1310: " The account runs as many tasks as Jimeng allows at once.",
    2061: " The model is retired on Jimeng.",
    4013: " Jimeng's risk control refused the request.",
}


class ProxyUnreachableError(UpstreamError):
    """The account's proxy could not be reached, refused the tunnel or asked
    for credentials it did not get: nothing reached Jimeng. The account is
    unreachable (cool it down, use another), not expired."""

    code = "proxy_unreachable"


class TransientError(UpstreamError):
    """A transport-level failure that a safe call may retry."""

    def __init__(
        self,
        message: str,
        *,
        never_sent: bool = False,
        timed_out: bool = False,
        answered: bool = False,
        proxy: bool = False,
    ) -> None:
        super().__init__(message)
        self.never_sent = never_sent  # provably never reached the server
        self.timed_out = timed_out
        self.answered = answered  # the server replied (5xx page, garbage body)
        self.proxy = proxy  # the account's proxy failed (never sent, too)

    def final(self) -> UpstreamError:
        """Return the error to report once retrying has given up."""
        if self.proxy:
            return ProxyUnreachableError(self.message)
        error_class = UpstreamTimeoutError if self.timed_out else UpstreamError
        return error_class(self.message)


class AmbiguousSubmitError(UpstreamError):
    """The generate call failed after it may have reached Jimeng: the caller
    must look the submission up by its ``submit_id`` before deciding anything."""

    retryable = False  # a client retry could pay for the same images twice

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered
