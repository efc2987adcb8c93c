"""SafeFetcher: the one way this server fetches a URL it did not build itself.

CDN images and videos Jimeng returns, reference images users send, webhooks: each
goes through the same steps (see ``urlcheck`` for the parsing and address
rules, ``fetchconn`` for the connection, ``fetchlimits`` for the deadline):

1. parse the URL strictly and, where the purpose needs one, check the host
   against ``IMAGE_FETCH_ALLOWED_HOSTS`` (plus the host of ``JIMENG_BASE_URL``);
2. resolve the name **once** and connect to exactly the address that was checked
   (the Host header and TLS SNI/certificate check use the original name), so a
   DNS answer cannot change between the check and the connection;
3. no redirects for POST; for GET at most ``MAX_REDIRECTS``, each hop checked anew;
4. one **total** deadline for DNS + connect + headers + body (a gevent.Timeout
   under gevent; otherwise a watchdog that shuts the socket down);
5. a size cap enforced while reading (and a cap on all images of one response);
6. the Content-Type must match ``accept``, and an image must start like one.

Errors are OpenAI-shaped: ``UpstreamError`` subclasses for URLs Jimeng gave us,
``InvalidRequestError`` (with ``param``) for URLs a user gave us. Messages name
only ``scheme://host[:port]``, never a path, a query or credentials.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import gevent
import gevent.pool

from .errors import (
    APIError,
    InvalidRequestError,
    UpstreamError,
    UpstreamTimeoutError,
)
from .fetchconn import FetchFailed, Resolved, exchange, tls_context
from .fetchlimits import Budget, Deadline, DeadlineExceeded, sniff_image
from .urlcheck import PrivateAllowlist, Target, URLRejected, host_matches, parse_url
from .urlcheck import normalise_entries as _normalise_entries

MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Fetched:
    """A fetched body."""

    content: bytes
    content_type: str
    url: str


@dataclass(frozen=True)
class Purpose:
    """What a URL is for: whether its host must be allowlisted, who supplied it."""

    allowlisted: bool
    user_supplied: bool
    noun: str


PURPOSES = {
    "image": Purpose(allowlisted=True, user_supplied=False, noun="an image"),
    "video": Purpose(allowlisted=True, user_supplied=False, noun="a video"),
    "reference": Purpose(allowlisted=False, user_supplied=True, noun="an image"),
    "webhook": Purpose(allowlisted=False, user_supplied=True, noun="a webhook"),
}


def in_parallel(work: Callable[[Any], Any], items: Sequence[Any], limit: int) -> list:
    """Run *work* on every item concurrently (greenlets), results in order; the
    first failure is raised (an ``APIError`` as it is, anything else as a 500)
    and the rest are stopped."""
    pool = gevent.pool.Pool(max(1, min(limit, len(items))))
    jobs = [pool.spawn(work, item) for item in items]
    try:
        for job in jobs:
            job.join()
            if not job.successful():
                error = job.exception
                raise error if isinstance(error, APIError) else APIError()
        return [job.value for job in jobs]
    finally:
        pool.kill(block=False)


class SafeFetcher:
    """See the module docstring; one instance per app (it is stateless)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        base_host = urlsplit(config["JIMENG_BASE_URL"]).hostname or ""
        self.allowed_hosts = _normalise_entries(
            [*config["IMAGE_FETCH_ALLOWED_HOSTS"], base_host]
        )
        self.private = PrivateAllowlist(config.get("FETCH_ALLOW_PRIVATE_HOSTS", ()))
        self.trusted_private = PrivateAllowlist([base_host])  # the operator's origin
        self.timeout = float(config["IMAGE_FETCH_TIMEOUT"])
        self.max_bytes = int(config["IMAGE_FETCH_MAX_BYTES"])
        self.response_max_bytes = int(config.get("IMAGE_RESPONSE_MAX_BYTES", 2**26))
        self.tls = tls_context()

    # --- public API ---

    def fetch(
        self,
        url: str,
        *,
        purpose: str = "image",
        max_bytes: int | None = None,
        accept: Sequence[str] = ("image/",),
        param: str | None = None,
        budget: Budget | None = None,
        proxy: str | None = None,
    ) -> Fetched:
        """GET *url* safely; see the module docstring. *param* names the request
        field of a user-supplied URL in errors; *proxy* (an account's proxy URL)
        carries the connection to the checked address."""
        kind = PURPOSES[purpose]
        limit = max_bytes or self.max_bytes
        try:
            deadline = Deadline(self.timeout)
            with deadline.running():
                fetched = self._get(url, kind, limit, accept, deadline, budget, proxy)
        except FetchFailed as failure:
            raise self._error(failure, kind, param) from None
        except DeadlineExceeded:
            failure = FetchFailed("timeout", f"took longer than {self.timeout:g} s")
            raise self._error(failure, kind, param) from None
        if accept and any(a.startswith("image/") for a in accept):
            if not sniff_image(fetched.content):
                failure = FetchFailed("not_image", "the body is not an image")
                raise self._error(failure, kind, param)
        return fetched

    def fetch_all(
        self,
        urls: Sequence[str],
        *,
        total_max_bytes: int | None = None,
        purpose: str = "image",
        concurrency: int = 8,
        proxy: str | None = None,
    ) -> list[Fetched]:
        """Fetch *urls* concurrently, in order, within one total size budget."""
        budget = Budget(total_max_bytes or self.response_max_bytes)
        return in_parallel(
            lambda u: self.fetch(u, purpose=purpose, budget=budget, proxy=proxy),
            urls,
            concurrency,
        )

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        purpose: str = "webhook",
        timeout: float | None = None,
        allow_private: bool = False,
    ) -> int:
        """POST *body* to *url* (no redirects) and return the HTTP status; the
        answer is read up to 64 KiB and dropped."""
        kind = PURPOSES[purpose]
        deadline = Deadline(timeout or self.timeout)
        try:
            with deadline.running():
                target = self.check(url, kind, allow_private=allow_private)
                status, _ = exchange(
                    "POST", target, deadline, self.tls, body=body, headers=dict(headers)
                )
        except FetchFailed as failure:
            raise self._error(failure, kind, None) from None
        except DeadlineExceeded:
            failure = FetchFailed("timeout", f"took longer than {deadline.seconds:g} s")
            raise self._error(failure, kind, None) from None
        return status

    def validate(
        self, url: str, *, purpose: str, param: str, allow_private: bool = False
    ) -> str:
        """Check a user-supplied URL now (parse, allowlist, resolve, address) and
        return its normalised form; raise ``InvalidRequestError`` naming *param*."""
        kind = PURPOSES[purpose]
        try:
            with Deadline(self.timeout).running():
                return self.check(url, kind, allow_private=allow_private).url
        except FetchFailed as failure:
            raise self._error(failure, kind, param) from None
        except DeadlineExceeded:
            failure = FetchFailed("timeout", "its host name did not resolve in time")
            raise self._error(failure, kind, param) from None

    # --- steps ---

    def check(
        self, url: str, kind: Purpose, *, allow_private: bool = False
    ) -> Resolved:
        """Parse *url* and check its host and addresses; return the target with
        ``resolved`` (the address to connect to) set."""
        try:
            target = parse_url(url)
        except URLRejected as exc:
            raise FetchFailed("refused", f"the URL is not accepted: {exc}") from None
        if kind.allowlisted and not host_matches(target.host, self.allowed_hosts):
            raise FetchFailed(
                "host_not_allowed",
                f"the host of {target.origin} is not in IMAGE_FETCH_ALLOWED_HOSTS",
            )
        address = self._resolve(target, kind, allow_private)
        return Resolved(target.scheme, target.host, target.port, target.path, address)

    def _resolve(self, target: Target, kind: Purpose, allow_private: bool) -> str:
        """Resolve once; return the first address the policy allows."""
        try:
            infos = socket.getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):
            raise FetchFailed("failed", f"{target.origin} does not resolve") from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
            if allow_private or self.private.allows(target.host, address):
                return str(address)
            if kind.allowlisted and self.trusted_private.allows(target.host, address):
                return str(address)
        raise FetchFailed(
            "refused",
            f"{target.origin} resolves to a private or reserved address "
            "(allow it with FETCH_ALLOW_PRIVATE_HOSTS)",
        )

    def _get(
        self,
        url: str,
        kind: Purpose,
        limit: int,
        accept: Sequence[str],
        deadline: Deadline,
        budget: Budget | None,
        proxy: str | None = None,
    ) -> Fetched:
        """GET, following at most MAX_REDIRECTS redirects (each checked anew)."""
        for _ in range(MAX_REDIRECTS + 1):
            target = self.check(url, kind)
            status, response = exchange(
                "GET",
                target,
                deadline,
                self.tls,
                limit=limit,
                accept=accept,
                budget=budget,
                proxy=proxy,
            )
            if status in (301, 302, 303, 307, 308) and response.location:
                url = urljoin(target.url, response.location)
                continue
            if status != 200:
                raise FetchFailed("failed", f"{target.origin} answered HTTP {status}")
            return Fetched(response.content, response.content_type, target.url)
        raise FetchFailed("failed", f"more than {MAX_REDIRECTS} redirects")

    @staticmethod
    def _error(failure: FetchFailed, kind: Purpose, param: str | None) -> APIError:
        """Turn a failure into the API error for this purpose."""
        message = f"Fetching {kind.noun} failed: {failure.message}."
        code = {
            "refused": "url_not_allowed",
            "host_not_allowed": "image_host_not_allowed",
            "timeout": "fetch_timeout",
            "too_large": "fetch_too_large",
            "not_image": "not_an_image",
        }.get(failure.kind, "fetch_failed")
        if kind.user_supplied:
            return InvalidRequestError(message, param=param, code=code)
        if failure.kind == "timeout":
            return UpstreamTimeoutError(message, code=code)
        return UpstreamError(message, code=code)
