"""The log filter: secrets and control characters in messages, args and tracebacks
(issue 16, points 2, 9 and 10). The same filter runs in the real server; see
tests/test_hardening2.py for the planted-token runs through gunicorn."""

from __future__ import annotations

import io
import logging

import pytest
import requests

from serving import redact
from serving.glog import SafeLogger

SESSION = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def logger() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("test.redaction")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    redact.install([log])
    redact.install([log])  # idempotent: one filter per handler
    assert [type(f) for f in handler.filters] == [redact.SecretFilter]
    yield log, stream
    log.handlers.clear()


@pytest.mark.parametrize(
    "text, secret",
    [
        (f"Cookie: _tea_web_id=7; sessionid={SESSION}; sid_tt={SESSION}", SESSION),
        (f"'sessionid_ss={SESSION}\\n; uid_tt=abc'", SESSION),
        (f"Authorization: Bearer {SESSION},{SESSION[::-1]}", SESSION[::-1]),
        (f"{{'authorization': 'Bearer {SESSION}'}}", SESSION),
        (f"GET /v1/models?api_key={SESSION}&n=1 HTTP/1.1", SESSION),
        (f'{{"token": "{SESSION}", "n": 2}}', SESSION),
        (f"proxy http://user:{SESSION}@proxy.example:3128 refused", SESSION),
        (f"https://p9.byteimg.com/a.png?x-signature={SESSION}", SESSION),
        (f"X-Api-Key: {SESSION}", SESSION),
    ],
)
def test_secret_shapes_are_masked(text, secret):
    assert secret not in redact.redact(text)


def test_ordinary_text_is_kept():
    text = "session 1a2b3c4d skipped: expired; monkey=3 consider=4 rid=abc123"
    assert redact.redact(text) == text


def test_registered_and_request_secrets_are_masked_anywhere():
    redact.register_secrets(["team-key-0123456789"])
    token = redact.request_secrets.set(("live-session-value-42",))
    try:
        text = redact.redact("key team-key-0123456789 and live-session-value-42 used")
    finally:
        redact.request_secrets.reset(token)
    assert "team-key-0123456789" not in text and "live-session-value-42" not in text
    assert "…" + redact.secret_id("team-key-0123456789") in text


def test_the_issue_traceback_is_masked(logger):
    """The traceback of issue 16 point 2: requests refuses a Cookie header with a
    newline and puts the whole cookie (the session id three times) in the error."""
    log, stream = logger
    cookie = f"sid_tt={SESSION}\n; sessionid={SESSION}\n; sessionid_ss={SESSION}\n"
    try:
        requests.Request(
            "POST", "http://jimeng.test/x", headers={"Cookie": cookie}
        ).prepare()
    except ValueError:
        log.exception("check failed for %s", {"Cookie": cookie})
    output = stream.getvalue()
    assert "Traceback (most recent call last)" in output
    assert "InvalidHeader" in output
    assert SESSION not in output


def test_control_characters_cannot_forge_lines(logger):
    log, stream = logger
    log.info("GET %s 404", "/x\nFORGED LINE\r\x00\x1b[31m\u2028")
    (line,) = stream.getvalue().splitlines()
    assert line == "INFO GET /x\\x0aFORGED LINE\\x0d\\x00\\x1b[31m\\u2028 404"


def test_gunicorn_logger_keeps_the_filter_across_reopen():
    from gunicorn.config import Config

    cfg = Config()
    cfg.set("errorlog", "-")
    cfg.set("accesslog", "-")
    glog = SafeLogger(cfg)
    for _ in range(2):
        for handler in glog.error_log.handlers + glog.access_log.handlers:
            assert any(isinstance(f, redact.SecretFilter) for f in handler.filters)
        glog.reopen_files()
