"""Property-based fuzzing: no input, however odd, gets a 500 or a non-OpenAI error.

``make fuzz`` runs the same properties with many more examples.
"""

from __future__ import annotations

import json
import os
import re
import tempfile

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import TestingConfig
from jimeng_api import create_app

settings.register_profile(
    "default", max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
settings.register_profile("long", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

APP = create_app(
    TestingConfig,
    overrides={
        "GENERATION_TIMEOUT": 1,
        "STORE_SECRET": "fuzz-store-secret",
        "DATA_DIR": tempfile.mkdtemp(prefix="jimeng-fuzz-"),
    },
)
APP.config["TESTING"] = False  # exercise the real 500 path, should anything escape
CLIENT = APP.test_client()
POST_ROUTES = sorted(
    {r.rule for r in APP.url_map.iter_rules() if "POST" in r.methods}
    - {"/static/<path:filename>"}
)
#: routes whose input is mostly the Bearer: a well-formed request may succeed
BODILESS = {"/token/points", "/token/receive", "/token/check"}
FIELDS = [
    "prompt", "model", "n", "size", "width", "height", "ratio", "resolution",
    "negative_prompt", "negativePrompt", "sample_strength", "seed",
    "response_format", "messages", "stream", "stream_options", "token", "user",
]  # fmt: skip

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant", "robot", 5])},
        optional={"content": json_values},
    ),
    max_size=3,
)
bodies = st.fixed_dictionaries(
    {}, optional={name: json_values for name in FIELDS} | {"messages": messages}
)
header_text = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=80
)
authorizations = (
    st.none()
    | header_text
    | header_text.map(lambda t: "Bearer " + t)
    | header_text.map(lambda t: "bearer " + t)
    | st.lists(st.from_regex(r"[a-z0-9 ,]{0,12}", fullmatch=True), max_size=20).map(
        lambda parts: "Bearer " + ",".join(parts)
    )
)


def post(path: str, data: bytes, auth: str | None, content_type: str):
    headers = {"Content-Type": content_type}
    if auth is not None:
        headers["Authorization"] = auth
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        # every upstream call says "session expired": the flow ends in a 4xx
        envelope = {"ret": "1015", "errmsg": "login error", "data": None}
        mock.post(re.compile(r"https://jimeng\.test/.*"), json=envelope)
        return CLIENT.post(path, data=data, headers=headers)


def assert_openai_4xx(response, path: str = "") -> None:
    if path in BODILESS and response.status_code == 200:
        return
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]


@given(path=st.sampled_from(POST_ROUTES), body=bodies, auth=authorizations)
def test_any_json_body_gets_a_4xx_in_the_openai_shape(path, body, auth):
    data = json.dumps(body).encode()
    assert_openai_4xx(post(path, data, auth, "application/json"), path)


@given(
    path=st.sampled_from(POST_ROUTES),
    data=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", ""]
    ),
)
def test_any_bytes_get_a_4xx(path, data, content_type):
    assert_openai_4xx(post(path, data, "Bearer s", content_type), path)


@pytest.mark.parametrize("path", POST_ROUTES)
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"null",
        b'"text"',
        b"[]",
        b'{"prompt": Infinity}',
        b'{"prompt": NaN}',
        b'{"n": 1e999}',
        b'{"width": -1024, "height": -1}',
        b'{"n": 123456789012345678901234567890}',
        b"[" * 100000,
        b'{"a":' * 20000 + b"1" + b"}" * 20000,
        b"\xc3\x28\xa0\xa1",
        b'{"prompt": "\\ud800"}',
    ],
)
def test_known_nasty_bodies(path, data):
    assert_openai_4xx(post(path, data, "Bearer s", "application/json"), path)


@pytest.mark.parametrize("path", POST_ROUTES)
def test_ten_megabyte_body_is_413(path):
    response = post(path, b'{"prompt":"' + b"x" * 10_000_000 + b'"}', "Bearer s",
                    "application/json")  # fmt: skip
    assert response.status_code == 413


@pytest.mark.parametrize(
    "auth",
    [
        "Bearer " + ",".join(f"s{i}" for i in range(10_000)),
        "Bearer ,,,,,",
        "Bearer  a , b ,",
        "BEARER abc",
        "Bearer ñandú",
        "Bearer a b c",
        "Token abc",
    ],
)
def test_odd_authorization_headers(auth):
    response = post(
        "/v1/images/generations", b'{"prompt":"x"}', auth, "application/json"
    )
    assert_openai_4xx(response)
