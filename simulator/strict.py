"""Strict-mode checks: Sign and headers (§1.6–1.7), then risk control (2026 §2).

Each check returns the reason of a violation, or ``None``.
"""

from __future__ import annotations

import time

from werkzeug.wrappers import Request

from .wire import compute_sign

SIGN_HEADERS = ("Appid", "Appvr", "Pf", "Device-Time", "Sign", "Sign-Ver")
SIGN_QUERY = ("aid", "device_platform", "region")
RISK_ERRMSG = "生成失败，疑似存在异常行为，请重新尝试"
RISK_STARLING_KEY = "web_risk_control_message_reject_generation"


def sign_violation(
    request: Request, family: str, skew_limit: float, *, web_id: bool = True
) -> str | None:
    """Headers, Sign, Device-Time freshness and (mweb/passport) the query;
    *web_id*: whether the site's client sends ``webId`` (Dreamina's does not)."""
    headers, args = request.headers, request.args
    for name in SIGN_HEADERS:
        if not headers.get(name):
            return f"missing header {name}"
    if headers["Sign-Ver"] != "1":
        return f"Sign-Ver {headers['Sign-Ver']!r} != '1'"
    device_time = headers["Device-Time"]
    if not device_time.isdigit():
        return f"Device-Time {device_time!r} is not integer seconds"
    skew = abs(int(device_time) - time.time())
    if skew > skew_limit:
        return f"Device-Time off by {skew:.0f} s"
    expected = compute_sign(request.path, headers["Pf"], headers["Appvr"], device_time)
    if headers["Sign"] != expected:
        return f"Sign mismatch (expected {expected})"
    if family == "commerce":
        return None  # the browser sends commerce calls without a query (§1.7)
    for name in SIGN_QUERY:
        if not args.get(name):
            return f"missing query param {name}"
    if web_id and not (args.get("webId") or args.get("web_id")):
        return "missing query param webId/web_id"
    if args["aid"] != headers["Appid"]:
        return f"query aid {args['aid']!r} != Appid header {headers['Appid']!r}"
    return None


def commerce_query_violation(request: Request, family: str) -> str | None:
    """Credit calls must go without the default query string (2026 §2)."""
    if family == "commerce" and request.query_string:
        return "commerce call with a query string"
    return None


def risk_violation(request: Request, family: str, site_origin: str) -> str | None:
    """``webId`` == ``_tea_web_id``; Origin/Referer, when sent, are the site's."""
    if family != "commerce":
        web_id = request.args.get("webId") or request.args.get("web_id")
        cookie = request.cookies.get("_tea_web_id")
        if web_id and cookie and web_id != cookie:
            return f"webId {web_id!r} != _tea_web_id cookie {cookie!r}"
    site = site_origin.rstrip("/")
    origin = request.headers.get("Origin")
    if origin is not None and origin.rstrip("/") != site:
        return f"Origin {origin!r} is not {site!r}"
    referer = request.headers.get("Referer")
    if referer is not None and referer != site and not referer.startswith(site + "/"):
        return f"Referer {referer!r} is not on {site!r}"
    return None
