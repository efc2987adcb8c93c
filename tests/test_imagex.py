"""Reference images upstream: SigV4 and CRC32 against the protocol doc's test
vectors (§5.5), the four upload calls against the strict simulator, the §5.6
safety pre-check, and the blend draft (§5.4) for 1, 2 and 10 references."""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import replace

import pytest
import responses
from PIL import Image

from jimeng_api import errors
from jimeng_api.upstream import drafts, imagex, sigv4
from jimeng_api.upstream.drafts import BlendDraft, BlendImage, generate_body
from simulator.draft import parse_generate
from simulator.settings import SimSettings
from tests.factories import DRAFT

AK, SK, TOKEN = "AKTPEXAMPLEKEYID", "EXAMPLESECRETKEY/+=", "STS2EXAMPLESESSIONTOKEN"
APPLY = {
    "Action": "ApplyImageUpload",
    "Version": "2018-08-01",
    "ServiceId": "tb4s082cfz",
    "FileSize": "12345",
    "s": "k3j9x0q2ab",
}
COMMIT = {
    "Action": "CommitImageUpload",
    "Version": "2018-08-01",
    "ServiceId": "tb4s082cfz",
}
COMMIT_BODY = b'{"SessionKey":"EXAMPLE_SESSION_KEY"}'
KEYS = dict(access_key=AK, secret_key=SK, session_token=TOKEN, region="cn-north-1")


def png(width=40, height=30, color=(10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


# --- the doc's vectors ------------------------------------------------------------


def test_sigv4_vector_1_apply_get():
    headers = sigv4.sigv4_headers("GET", APPLY, date="20250101T000000Z", **KEYS)
    assert sigv4.canonical_query(APPLY) == (
        "Action=ApplyImageUpload&FileSize=12345&ServiceId=tb4s082cfz"
        "&Version=2018-08-01&s=k3j9x0q2ab"
    )
    creq = sigv4.canonical_request("GET", APPLY, headers, None)
    assert hashlib.sha256(creq.encode()).hexdigest() == (
        "31e11575045292df63b5fe5a9f773ba1ff5aafee6cbad84dffadca9a969becea"
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKTPEXAMPLEKEYID/20250101/cn-north-1/imagex/"
        "aws4_request, SignedHeaders=x-amz-date;x-amz-security-token, "
        "Signature=164dd590725242a16cef186c057e98c7264d881894f7870e46b68762893a6468"
    )
    assert "x-amz-content-sha256" not in headers


def test_sigv4_vector_2_commit_post():
    headers = sigv4.sigv4_headers(
        "POST", COMMIT, date="20250101T000001Z", body=COMMIT_BODY, **KEYS
    )
    assert headers["x-amz-content-sha256"] == (
        "e3e523f3c30980dec662f197595bf274f89fcb95a500dc48b4640f3ec9a51a73"
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKTPEXAMPLEKEYID/20250101/cn-north-1/imagex/"
        "aws4_request, SignedHeaders=x-amz-content-sha256;x-amz-date;"
        "x-amz-security-token, "
        "Signature=2c0481e3ff8fe9934657f6bf8e8e8909efcdb052b5029141997820c66f7ee09e"
    )


def test_crc32_vectors_are_lowercase_and_zero_padded():
    assert imagex.crc32_hex(b"hello world") == "0d4a1185"
    assert imagex.crc32_hex(bytes([0, 1, 2])) == "0854897f"


def test_query_values_that_would_need_encoding_are_refused():
    with pytest.raises(ValueError):
        sigv4.canonical_query({"Action": "Apply Image"})


# --- the upload against the strict simulator -----------------------------------------


@pytest.fixture
def sim_app(fresh_sim, make_app):
    return make_app(JIMENG_BASE_URL=fresh_sim.base_url)


def uploader_for(app, base_url, **kwargs):
    client = app.extensions["jimeng"]["client"]
    options = {"imagex_url": base_url, "region": "cn-north-1", "safety_check": False}
    return imagex.ImageUploader(client, **{**options, **kwargs})


def test_upload_token_apply_upload_and_commit_pass_the_strict_simulator(
    fresh_sim, sim_app
):
    uploader = uploader_for(sim_app, fresh_sim.base_url)
    images = [png(), png(64, 64, (1, 2, 3))]
    uploaded = uploader.upload_all("imagex-session-0001", images)
    stats = fresh_sim.stats()
    assert stats["violations"] == [] and stats["rejections"] == []
    assert stats["calls"]["upload_token"] == 1  # one token for every image
    for name in ("imagex_apply", "imagex_upload", "imagex_commit"):
        assert stats["calls"][name] == 2
    assert [u.uri.startswith("tos-cn-i-tb4s082cfz/") for u in uploaded] == [True] * 2
    assert (uploaded[0].width, uploaded[0].height, uploaded[0].format) == (
        40,
        30,
        "png",
    )
    assert stats["uploads"] == 2


def test_a_wrong_signature_is_refused_and_reported(fresh_sim, sim_app, monkeypatch):
    uploader = uploader_for(sim_app, fresh_sim.base_url)
    real = uploader.upload_token

    def wrong_secret(token):
        keys = real(token)
        return replace(keys, secret_access_key="not-the-secret")

    monkeypatch.setattr(uploader, "upload_token", wrong_secret)
    with pytest.raises(errors.UpstreamError) as caught:
        uploader.upload_all("imagex-session-0002", [png()])
    assert caught.value.code == "upload_failed"
    assert "SignatureDoesNotMatch" in caught.value.message
    assert any("SigV4" in v["reason"] for v in fresh_sim.stats()["violations"])


def test_a_wrong_crc32_is_refused(fresh_sim, sim_app, monkeypatch):
    monkeypatch.setattr(imagex, "crc32_hex", lambda data: "00000000")
    uploader = uploader_for(sim_app, fresh_sim.base_url)
    with pytest.raises(errors.UpstreamError, match="HTTP 400"):
        uploader.upload_all("imagex-session-0003", [png()])
    assert fresh_sim.stats()["calls"].get("imagex_commit", 0) == 0


# --- §5.6: the safety pre-check -----------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        ({"ret": "2003", "errmsg": "pre_img_risk"}, True),
        ({"ret": "1", "errmsg": "image risk not pass"}, True),
        ({"ret": "0", "errmsg": "success", "data": {}}, False),
        ({"ret": "1000", "errmsg": "invalid parameter"}, False),  # ignored
    ],
)
def test_the_safety_check_refuses_only_a_risk_verdict(app, answer, refused):
    uploader = uploader_for(app, "https://imagex.test", safety_check=True)
    with responses.RequestsMock() as mock:
        route = mock.post(
            re.compile(r"https://jimeng\.test/mweb/v1/algo_proxy\?.*"), json=answer
        )
        result = uploader.check("check-session", ["tos-cn-i-x/a", "tos-cn-i-x/b"])
        body = json.loads(route.calls[0].request.body)
        url = route.calls[0].request.url
    assert result == (0 if refused else None)
    assert body["file_list"] == [{"file_uri": "tos-cn-i-x/a"}]
    assert "babi_param=" in url and "aid=" in url


def test_the_safety_check_is_skipped_when_off(app):
    uploader = uploader_for(app, "https://imagex.test", safety_check=False)
    with responses.RequestsMock():  # any call would fail: none is made
        assert uploader.check("s", ["tos-cn-i-x/a"]) is None


# --- the blend draft ----------------------------------------------------------------


def blend(count: int, **changes) -> BlendDraft:
    fields = {**DRAFT.__dict__, "model_key": "high_aes_general_v40", **changes}
    images = tuple(
        BlendImage(f"tos-cn-i-tb4s082cfz/{i:032x}", 0.3 + i / 100) for i in range(count)
    )
    return BlendDraft(**fields, images=images)


@pytest.mark.parametrize("count", [1, 2, 10])
def test_the_blend_draft_names_every_reference(count):
    d = blend(count, n=2)
    body = json.loads(generate_body(d, "sub-1", 513695))
    draft = json.loads(body["draft_content"])
    assert draft["min_version"] == "3.2.9"
    component = draft["component_list"][0]
    assert component["generate_type"] == "blend"
    abilities = component["abilities"]
    assert set(abilities) == {"type", "id", "blend", "gen_option"}
    assert abilities["gen_option"]["gen_count"] == 2
    mix = abilities["blend"]
    assert ("min_version" in mix) is (count >= 2)
    core = mix["core_param"]
    assert core["prompt"] == "#" * (2 * count) + "a cat"
    assert core["image_ratio"] == 1 and core["intelligent_ratio"] is False
    assert core["large_image_info"]["width"] == 1024
    uris = [image.uri for image in d.images]
    assert [a["image_uri_list"] for a in mix["ability_list"]] == [[u] for u in uris]
    assert [a["image_list"][0]["image_uri"] for a in mix["ability_list"]] == uris
    assert [a["strength"] for a in mix["ability_list"]] == [
        i.strength for i in d.images
    ]
    assert [p["ability_index"] for p in mix["prompt_placeholder_info_list"]] == list(
        range(count)
    )
    metrics = json.loads(body["metrics_extra"])
    scene = json.loads(metrics["sceneOptions"])[0]
    assert len(scene["abilityList"]) == count
    assert metrics["generateId"] == "sub-1"
    # the simulator's independent parser reads it as a blend of these images
    parsed = parse_generate(body, SimSettings())
    assert parsed.blend_uris == uris and parsed.gen_count == 2


def test_a_plain_draft_is_unchanged_and_a_blend_needs_images():
    body = json.loads(generate_body(DRAFT, "sub-2", 513695))
    assert (
        "generate"
        in json.loads(body["draft_content"])["component_list"][0]["abilities"]
    )
    with pytest.raises(ValueError):
        generate_body(blend(0), "s", 1)
    with pytest.raises(ValueError):
        generate_body(blend(drafts.MAX_BLEND_IMAGES + 1), "s", 1)


def test_a_dreamina_account_uploads_to_its_site_s_imagex(app):
    """A ``us-`` token: the US ImageX, SigV4 region ``us-east-1``, the
    ``space_name`` service, ``device_platform=web``, and no CN safety check."""
    uploader = uploader_for(app, "https://imagex.test", safety_check=True)
    us = app.config["DREAMINA_US_IMAGEX_URL"].rstrip("/")
    grant = {
        "access_key_id": "AKTPUS",
        "secret_access_key": "secret",
        "session_token": "STS2US",
        "space_name": "wopfjsm1ax",
    }
    store = "tos-useast5-i-wopfjsm1ax-tx/abc"
    address = {
        "StoreInfos": [{"StoreUri": store, "Auth": "SpaceKey/x"}],
        "UploadHosts": ["upload.us.test"],
        "SessionKey": "sk",
    }
    committed = {"Results": [{"Uri": store, "UriStatus": 2000}], "PluginResult": []}
    with responses.RequestsMock() as mock:
        mock.post(
            re.compile(r"https://[^/]+/mweb/v1/get_upload_token.*"),
            json={"ret": "0", "errmsg": "success", "data": grant},
        )
        apply = mock.get(
            re.compile(re.escape(us) + r"/\?Action=ApplyImageUpload.*"),
            json={"Result": {"UploadAddress": address}},
        )
        mock.post(
            "https://upload.us.test/upload/v1/" + store,
            json={"code": 2000, "message": "Success", "data": {}},
        )
        mock.post(
            re.compile(re.escape(us) + r"/\?Action=CommitImageUpload.*"),
            json={"Result": committed},
        )
        (uploaded,) = uploader.upload_all("us-dreaminasession01", [png()])
        assert uploader.check("us-dreaminasession01", [uploaded.uri]) is None
        request = apply.calls[0].request
    assert uploaded.uri == store
    assert (
        "ServiceId=wopfjsm1ax" in request.url and "device_platform=web" in request.url
    )
    assert "/us-east-1/imagex/aws4_request" in request.headers["authorization"]
    assert request.headers["Origin"] == app.config["DREAMINA_SITE_ORIGIN"]


def test_an_answer_without_json_is_retried_as_a_whole_upload(
    fresh_sim, sim_app, monkeypatch
):
    """An upload is free: a garbled ImageX answer (seen as a soak fault) must not
    fail the edit."""
    real, garbled = imagex._json, []

    def first_apply_garbled(response):
        if "ApplyImageUpload" in response.url and not garbled:
            garbled.append(response.url)
            return None
        return real(response)

    monkeypatch.setattr(imagex, "_json", first_apply_garbled)
    uploader = uploader_for(sim_app, fresh_sim.base_url)
    (uploaded,) = uploader.upload_all("imagex-session-0009", [png()])
    assert garbled and uploaded.uri.startswith("tos-cn-i-tb4s082cfz/")
    calls = fresh_sim.stats()["calls"]
    assert (calls["imagex_apply"], calls["imagex_commit"]) == (2, 1)
