"""The safety pre-check of uploaded reference images (protocol doc §5.6).

On the CN site, Jimeng checks an uploaded image (``algo_proxy``): a refusal
there (ret 2003, "risk not pass") is a content error; anything else it says is
ignored, as the web client does.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import requests

from ..errors import ContentFilteredError
from .client import JimengClient
from .endpoints import ALGO_PROXY

log = logging.getLogger(__name__)

#: the §5.6 pre-check: which answers mean "this image is refused"
RISK_RET = "2003"
RISK_MESSAGES = ("risk not pass", "detected risk")
BABI_PARAM = json.dumps(
    {
        "scenario": "image_video_generation",
        "feature_key": "aigc_to_image",
        "feature_entrance": "to-generate",
        "feature_entrance_detail": "to-generate-algo_proxy",
    },
    separators=(",", ":"),
)


def is_refused(client: JimengClient, token: str, uri: str) -> bool:
    """Whether the site's safety pre-check refuses the uploaded image *uri*
    (False when it cannot be reached or says anything else)."""
    body = json.dumps(
        {
            "scene": "image_face_ip",
            "options": {"ip_check": True},
            "req_key": "benchmark_test_user_upload_image_input",
            "file_list": [{"file_uri": uri}],
            "req_params": {},
        },
        separators=(",", ":"),
    ).encode()
    try:
        response = _algo_proxy(client, token, body)
    except requests.RequestException as exc:
        log.info("image safety check not reached (%s); ignored", type(exc).__name__)
        return False
    try:
        answer = response.json()
    except ValueError:
        return False
    if not isinstance(answer, dict):
        return False
    ret = str(answer.get("ret"))
    message = str(answer.get("errmsg") or "").lower()
    if ret == RISK_RET or any(m in message for m in RISK_MESSAGES):
        return True
    if ret != "0":
        log.info("image safety check answered ret %s; ignored", ret[:20])
    return False


def _algo_proxy(client: JimengClient, token: str, body: bytes) -> requests.Response:
    """The pre-check call: an mweb call (signed, the account's cookie) with
    the extra ``babi_param`` query the web client sends."""
    session = client.sessions.get(token)
    extra = "&babi_param=" + quote(BABI_PARAM)
    return client.send_signed(ALGO_PROXY, session, body, {}, query=extra)


def refused_error(index: int) -> ContentFilteredError:
    return ContentFilteredError(
        f"Jimeng's safety check refused reference image {index + 1}; nothing was "
        "generated or charged."
    )
