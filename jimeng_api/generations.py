"""Start a generation: record the job, submit it once, hand it to the poller.

The endpoints call this and nothing below it; a repeat with the same
``Idempotency-Key`` gets the job it named, with nothing submitted again.
"""

from __future__ import annotations

from typing import Any

from .accounts import Accounts
from .errors import ServiceUnavailableError
from .jobs import Caller, Jobs
from .poller import Poller
from .roster import Roster
from .sealing import Sealer
from .store import Store
from .submission import Submitter

EMPTY_POOL = (
    "The session pool is empty: add session ids to JIMENG_SESSION_IDS or "
    "JIMENG_SESSION_FILE."
)


class Generations:
    """The service behind every generation endpoint."""

    def __init__(
        self,
        store: Store,
        jobs: Jobs,
        accounts: Accounts,
        submitter: Submitter,
        poller: Poller,
        sealer: Sealer,
        roster: Roster | None,
        config: Any,
    ) -> None:
        self.store, self.jobs, self.accounts = store, jobs, accounts
        self.submitter, self.poller = submitter, poller
        self.sealer, self.roster = sealer, roster
        self.lease_ttl = config["LEASE_TTL"]

    def start(
        self,
        caller: Caller,
        kind: str,
        spec: dict[str, Any],
        *,
        idempotency: tuple[str, str] | None = None,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """Return the caller's job for this request, submitted if it is new."""
        if caller.tokens is None and not self.pool_tokens():
            raise ServiceUnavailableError(EMPTY_POOL)
        sealed = self.sealer.seal(caller.tokens) if caller.tokens else None
        job, new = self.jobs.create(
            caller,
            kind,
            spec,
            sealed=sealed,
            idempotency=idempotency,
            callback_url=callback_url,
        )
        self.poller.start()
        if not new:
            return job
        lease = "job:" + job["id"]
        self.store.acquire_lease(lease, self.poller.holder, self.lease_ttl)
        try:
            job = self.submitter.submit(job)
        finally:
            self.store.release_lease(lease, self.poller.holder)
        self.poller.hand_over(job)
        return job

    def tokens_for(self, job: dict[str, Any]) -> list[str]:
        """The accounts a job may be submitted with."""
        if job.get("candidates"):
            return self.sealer.unseal(job["candidates"])
        return self.pool_tokens()

    def pool_tokens(self) -> list[str]:
        return self.roster.tokens() if self.roster else []
