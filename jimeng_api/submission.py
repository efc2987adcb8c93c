"""Submit a job once: pick an account, record the ``submit_id``, send, and
reconcile by ``submit_id`` whenever the answer is not a clear yes or no.

No path pays twice:
- the ``submit_id`` (uuid4) is written to the job *before* the call is sent;
- a call that provably never reached Jimeng (connect error) is repeated;
- after an error page (5xx, not JSON) the submission is looked up and sent
  again with the same ``submit_id`` only when Jimeng shows no such task;
- after a timeout, a reset or an answer without a record id, it is looked up
  for a grace period and adopted if found; never sent again;
- a job found in ``submitting`` after a crash is reconciled the same way.
Account-level refusals (no credits, expired session, risk control) fail over to
the next account; ret 1310 (parallel limit: not accepted, not charged) leaves
the job waiting for a slot, within its deadline.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from .accounts import Accounts
from .errors import (
    APIError,
    InsufficientQuotaError,
    InvalidRequestError,
    PermissionDeniedError,
    RateLimitError,
    SessionExpiredError,
    UpstreamError,
    UpstreamTimeoutError,
)
from .jobs import Jobs
from .reference_stash import forget as forget_references
from .reference_stash import load as load_reference
from .sealing import Sealer
from .upstream import (
    AmbiguousSubmitError,
    Draft,
    JimengClient,
    ParallelLimitError,
    ProxyUnreachableError,
    account_id,
)
from .upstream.drafts import BlendDraft, BlendImage
from .upstream.imagex import ImageUploader
from .upstream.precheck import refused_error
from .upstream.video import NoVideoCreditsError
from .upstream.video_drafts import VideoDraft, load_draft, with_frames

log = logging.getLogger(__name__)

#: account-level failures: the next account may succeed, most useful first
ACCOUNT_ERRORS: tuple[type[APIError], ...] = (
    RateLimitError,
    InsufficientQuotaError,
    PermissionDeniedError,
    SessionExpiredError,
    ProxyUnreachableError,  # the account's route is down, not its session
)
BUSY = (
    "Every account is running as many generations as it may; the task waited "
    "for a free slot until its deadline."
)
WAIT_RETRY = 3.0  # seconds between two tries of a waiting job


class Submitter:
    """Runs the submit step of a job."""

    def __init__(
        self,
        jobs: Jobs,
        accounts: Accounts,
        client: JimengClient,
        sealer: Sealer,
        tokens_for: Callable[[dict[str, Any]], list[str]],
        config: Any,
    ) -> None:
        self.jobs = jobs
        self.accounts = accounts
        self.client = client
        self.sealer = sealer
        self.tokens_for = tokens_for  # the accounts a job may use, unordered
        self.grace = max(3 * config["UPSTREAM_READ_TIMEOUT"], 10.0)
        # a submit holds its job's lease for as long as it can possibly take
        # (every resend and the lookups after them), so no poller takes over a
        # job that is still being sent
        read = config["UPSTREAM_CONNECT_TIMEOUT"] + config["UPSTREAM_READ_TIMEOUT"]
        self.lease_ttl = config["LEASE_TTL"] + (self.grace + read) * (
            config["UPSTREAM_RETRIES"] + 2
        )
        self.resends = config["UPSTREAM_RETRIES"]
        self.limit = config["MAX_TOKENS_PER_REQUEST"]
        self.on_retired: Callable[[str], None] = lambda model_key: None
        self.config = config
        self._uploader: ImageUploader | None = None
        jobs.on_finish.append(self._forget_references)

    @contextmanager
    def exclusive(self, job_id: str) -> Iterator[bool]:
        """Hold the job's lease for one submit (or recovery); yield whether it
        was had. Each holder is unique: a poller of the same process does not
        count as the request that is submitting."""
        lease, holder = "job:" + job_id, f"submit:{uuid.uuid4().hex}"
        held = self.jobs.store.acquire_lease(lease, holder, self.lease_ttl)
        try:
            yield held
        finally:
            if held:
                self.jobs.store.release_lease(lease, holder)

    def submit(self, job: dict[str, Any]) -> dict[str, Any]:
        """Submit *job* with the first account that takes it; return the job
        (``running``, ``waiting`` or finished as failed)."""
        errors: list[APIError] = []
        for token in self.accounts.order(self.tokens_for(job))[: self.limit]:
            if not self.accounts.take_slot(token, job["id"]):
                errors.append(RateLimitError(BUSY, retryable=True))
                continue
            try:
                return self._submit_on(job, token)
            except ParallelLimitError as exc:
                self.accounts.at_parallel_limit(token)
                self.accounts.free_slot(token, job["id"])
                errors.append(exc)
            except ACCOUNT_ERRORS as exc:
                self.accounts.free_slot(token, job["id"])
                self.accounts.skipped(token, exc)
                errors.append(exc)
            except APIError as exc:
                self.accounts.free_slot(token, job["id"])
                if exc.code == "model_not_available":  # another site may have it
                    errors.append(exc)
                    continue
                if exc.code == "model_retired":
                    self.on_retired(job["spec"]["draft"]["model_key"])
                return self._failed(job, exc)
        return self._not_accepted(job, errors)

    def _submit_on(self, job: dict[str, Any], token: str) -> dict[str, Any]:
        self.client.check_model(token, job["spec"]["draft"]["model_key"])
        draft = self._draft(job, token)  # reference uploads: before submitting
        submit_id = str(uuid.uuid4())
        proxy = self.client.proxy_url(token)  # its CDN downloads go through it too
        job = (
            self.jobs.update(
                job["id"],
                phase="submitting",
                account=account_id(token),
                token=self.sealer.seal([token]),
                proxy=self.sealer.seal([proxy]) if proxy else None,  # kept when done
                submit_id=submit_id,
            )
            or job
        )
        try:
            history_id = self._send(token, draft, submit_id, job["deadline"])
        except AmbiguousSubmitError as exc:
            history_id = self._reconcile(token, draft, submit_id, job, exc)
        return self.running(job, history_id)

    # --- reference images (image to image) ---

    @property
    def uploader(self) -> ImageUploader:
        if self._uploader is None:
            c = self.config
            self._uploader = ImageUploader(
                self.client,
                imagex_url=c["JIMENG_IMAGEX_URL"],
                region=c["JIMENG_IMAGEX_REGION"],
                safety_check=bool(c["JIMENG_IMAGE_CHECK"])
                and c["JIMENG_REGION"] == "cn",
            )
        return self._uploader

    def _draft(self, job: dict[str, Any], token: str) -> Draft | VideoDraft:
        """The job's draft; with references, a blend draft naming the images
        uploaded for *token*'s account just now (uploads are per account, and
        cost nothing: a failure here leaves nothing to reconcile)."""
        spec = job["spec"]
        entries = spec.get("references")
        if not entries:
            return load_draft(spec["draft"])
        images = []
        for entry in entries:
            data = load_reference(self.jobs.store, entry)
            if data is None:
                raise InvalidRequestError(
                    "The reference images of this task are no longer stored; "
                    "send the request again.",
                    param=entry.get("param"),
                    code="reference_expired",
                )
            images.append(data)
        uploaded = self.uploader.upload_all(token, images)
        refused = self.uploader.check(token, [u.uri for u in uploaded])
        if refused is not None:
            error = refused_error(refused)
            error.param = entries[refused].get("param")
            raise error
        if spec["draft"].get("kind") == "video":  # the first (and last) frame
            return with_frames(spec["draft"], [u.uri for u in uploaded], entries)
        blend = tuple(
            BlendImage(u.uri, float(e.get("strength", 0.5)))
            for u, e in zip(uploaded, entries, strict=True)
        )
        return BlendDraft(
            **spec["draft"],
            images=blend,
            blend_min_version=self.config["JIMENG_BLEND_MIN_VERSION"],
        )

    def _forget_references(self, job: dict[str, Any]) -> None:
        """Drop a finished job's stashed reference bytes (a group's parts share
        them: the group drops them when its last part ends)."""
        entries = (job.get("spec") or {}).get("references")
        if entries and not job.get("parent"):
            forget_references(self.jobs.store, entries)

    def _send(self, token: str, draft: Draft, submit_id: str, deadline: float) -> str:
        """Send; on "no credits", claim the daily grant once and send again
        (the first call was refused outright, so nothing was paid)."""
        until = time.monotonic() + max(deadline - time.time(), 0)
        try:
            return self.client.submit(token, draft, submit_id, deadline=until)
        except NoVideoCreditsError:
            raise  # the daily grant is gift credits: they do not pay for video
        except InsufficientQuotaError:
            if not self.accounts.claim_daily_grant(token):
                raise
            return self.client.submit(token, draft, submit_id, deadline=until)

    def _reconcile(
        self,
        token: str,
        draft: Draft,
        submit_id: str,
        job: dict[str, Any],
        exc: AmbiguousSubmitError,
    ) -> str:
        """Find the submission; send it again only after an error page that
        Jimeng shows no task for."""
        for attempt in range(self.resends + 1):
            # an error page came back at once: one look is enough to tell; after
            # a timeout, a reset or an answer without a record id, Jimeng may
            # still be creating the task, so it is looked for a while
            page = exc.answered and "record id" not in exc.message
            grace = 0.0 if page else self.grace
            found = self.find(token, submit_id, grace, job["deadline"])
            if found:
                return found
            if not page or attempt == self.resends:
                raise UpstreamTimeoutError(
                    "Jimeng did not confirm the submission and shows no task for "
                    "it; it was not sent again, to avoid paying twice "
                    f"({exc.message})",
                    code="submit_unconfirmed",
                    retryable=False,
                ) from exc
            log.info("submit %s was not accepted, sending it again", submit_id)
            try:
                return self._send(token, draft, submit_id, job["deadline"])
            except AmbiguousSubmitError as again:
                exc = again
        raise AssertionError("unreachable")

    def find(
        self, token: str, submit_id: str, grace: float, deadline: float
    ) -> str | None:
        """Look the submission up by ``submit_id``, for up to *grace* seconds
        and never past the job's *deadline* (Unix seconds)."""
        until = time.monotonic() + max(min(grace, deadline - time.time()), 0.0)
        while True:
            try:
                found = self.client.find_submissions(token, [submit_id], deadline=until)
            except (UpstreamError, RateLimitError):
                found = {}
            if found or time.monotonic() >= until:
                return found.get(submit_id)
            time.sleep(min(1.0, max(until - time.monotonic(), 0.0)))

    def recover(self, job: dict[str, Any]) -> dict[str, Any]:
        """Continue a job whose worker died while submitting it."""
        tokens = self.sealer.unseal(job.get("token"))
        if not tokens:
            return self._failed(job, UpstreamError("The task's account is gone."))
        found = self.find(tokens[0], job["submit_id"], self.grace, job["deadline"])
        if found:
            log.info("adopted submission %s after a restart", job["submit_id"])
            return self.running(job, found)
        self.accounts.free_slot(tokens[0], job["id"])
        return self._failed(
            job,
            UpstreamTimeoutError(
                "The server restarted while submitting this task and Jimeng shows "
                "no task for it; it was not sent again, to avoid paying twice.",
                code="submit_unconfirmed",
            ),
        )

    def running(self, job: dict[str, Any], history_id: str) -> dict[str, Any]:
        return (
            self.jobs.update(
                job["id"],
                phase="running",
                status="in_progress",
                history_id=history_id,
                accepted_at=time.time(),
            )
            or job
        )

    def _not_accepted(
        self, job: dict[str, Any], errors: list[APIError]
    ) -> dict[str, Any]:
        """No account took the job: wait for a slot, or fail with the best reason."""
        if not errors:
            return self._failed(job, UpstreamError("No account can take the task."))
        waiting = all(_waits(exc) for exc in errors)
        if waiting and time.time() + WAIT_RETRY < job["deadline"]:
            return (
                self.jobs.update(
                    job["id"], phase="waiting", retry_at=time.time() + WAIT_RETRY
                )
                or job
            )
        best = min(errors, key=_rank)
        if waiting:
            best = RateLimitError(BUSY, retryable=True, headers={"Retry-After": "30"})
        return self._failed(job, best)

    def _failed(self, job: dict[str, Any], exc: APIError) -> dict[str, Any]:
        if job.get("phase") in ("submitting", "running"):
            exc.retryable = False  # it may have been paid for
        return self.jobs.fail(job["id"], exc) or job


def _waits(exc: APIError) -> bool:
    """A refusal that passes by itself (a slot frees up): wait, don't fail."""
    return isinstance(exc, ParallelLimitError) or (
        type(exc) is RateLimitError and exc.retryable is True
    )


def _rank(exc: APIError) -> int:
    for index, error_class in enumerate(ACCOUNT_ERRORS):
        if type(exc) is error_class:
            return index
    return len(ACCOUNT_ERRORS)


def draft_spec(draft: Draft) -> dict[str, Any]:
    return asdict(draft)
