"""Start a generation: record the job, submit it once, hand it to the poller.

The endpoints call this and nothing below it; a repeat with the same
``Idempotency-Key`` gets the job it named, with nothing submitted again.
"""

from __future__ import annotations

from typing import Any

from .accounts import Accounts
from .errors import GenerationFailedError, ServiceUnavailableError
from .jobs import Caller, Jobs
from .poller import Poller
from .results import Renderer
from .roster import Roster
from .sealing import Sealer
from .specs import split
from .store import FINISHED, Store
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
        renderer: Renderer,
        config: Any,
    ) -> None:
        self.store, self.jobs, self.accounts = store, jobs, accounts
        self.submitter, self.poller = submitter, poller
        self.sealer, self.roster, self.renderer = sealer, roster, renderer
        self.lease_ttl = config["LEASE_TTL"]
        jobs.on_finish.append(self._part_finished)

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
        parts = split(spec)
        if len(parts) > 1:
            return self._start_group(caller, kind, job, parts, sealed)
        return self._submit(job)

    def _submit(self, job: dict[str, Any]) -> dict[str, Any]:
        """Submit under the job's lease: whoever holds it is the only sender."""
        with self.submitter.exclusive(job["id"]) as held:
            if not held:
                return job  # a poller adopted it first and submits it
            job = self.jobs.get(job["id"]) or job
            if job["phase"] == "new":
                job = self.submitter.submit(job)
        self.poller.hand_over(job)
        return job

    # --- more images than one submit makes: a group of parts ----------------

    def _start_group(
        self,
        caller: Caller,
        kind: str,
        group: dict[str, Any],
        parts: list[dict[str, Any]],
        sealed: str | None,
    ) -> dict[str, Any]:
        """Submit each part as a job of its own; the group job collects them."""
        group = (
            self.jobs.update(group["id"], phase="group", status="in_progress") or group
        )
        children = []
        for part in parts:
            child, _ = self.jobs.create(caller, kind, part, sealed=sealed)
            self.jobs.update(child["id"], parent=group["id"])
            children.append(child["id"])
        group = self.jobs.update(group["id"], children=children) or group
        for child_id in children:
            child = self.jobs.get(child_id)
            if child is not None:
                self._submit(child)
        return self.jobs.get(group["id"]) or group

    def _part_finished(self, job: dict[str, Any]) -> None:
        """When the last part of a group ends, finish the group with every image
        the parts delivered (the parts that failed cost nothing)."""
        parent = job.get("parent")
        group = self.jobs.get(parent) if parent else None
        if group is None or group["status"] in FINISHED:
            return
        parts = [self.jobs.get(child) for child in group.get("children") or []]
        if any(p is None or p["status"] not in FINISHED for p in parts):
            return
        if not self.store.set_key("group:" + group["id"], "1", 3600, only_new=True):
            return  # another worker finishes it
        urls = [url for p in parts if p for url in p.get("urls") or []]
        if not urls:
            failed = next((p for p in parts if p and p.get("error")), None)
            error = (failed or {}).get("error") or GenerationFailedError().to_dict()
            self.jobs.finish(group["id"], status="failed", error=error)
            return
        asked = group["spec"]["n"]
        self.jobs.finish(
            group["id"],
            status="completed",
            urls=urls,
            result=self._merge(group, parts, urls),
            partial=f"{len(urls)}/{asked}" if len(urls) < asked else None,
            progress={"images": len(urls), "expected": asked, "stage": "final"},
        )

    def _merge(
        self, group: dict[str, Any], parts: list[Any], urls: list[str]
    ) -> dict[str, Any]:
        if group["kind"] == "images":
            data = [
                d for p in parts if p and p.get("result") for d in p["result"]["data"]
            ]
            first = next((p["result"] for p in parts if p and p.get("result")), {})
            fields = {k: v for k, v in first.items() if k not in ("created", "data")}
            return {"created": int(group["created_at"]), "data": data, **fields}
        return self.renderer.render(group, urls)

    def download_proxy(self, job: dict[str, Any] | None) -> str | None:
        """The proxy that downloads of *job*'s files go through: its account's
        (kept sealed with the job; a group's: its first part's), else
        ``UPSTREAM_PROXY``."""
        job = job or {}
        if job.get("children") and not job.get("proxy"):
            job = self.jobs.get(job["children"][0]) or {}
        sealed = self.sealer.unseal(job.get("proxy"))
        return sealed[0] if sealed else self.submitter.client.proxy_url(None)

    def tokens_for(self, job: dict[str, Any]) -> list[str]:
        """The accounts a job may be submitted with."""
        if job.get("candidates"):
            return self.sealer.unseal(job["candidates"])
        return self.pool_tokens()

    def pool_tokens(self) -> list[str]:
        return self.roster.tokens() if self.roster else []
