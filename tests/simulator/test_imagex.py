"""Upload flow (§5.5): get_upload_token, ApplyImageUpload, upload, Commit; SigV4."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from simulator import imagex
from simulator.png import image_png
from simulator.testing import draft_v2, generate_body

AK, SK, TOKEN = "AKTPEXAMPLEKEYID", "EXAMPLESECRETKEY/+=", "STS2EXAMPLESESSIONTOKEN"
APPLY_Q = (
    "Action=ApplyImageUpload&Version=2018-08-01&ServiceId=tb4s082cfz"
    "&FileSize=12345&s=k3j9x0q2ab"
)
COMMIT_Q = "Action=CommitImageUpload&Version=2018-08-01&ServiceId=tb4s082cfz"
COMMIT_BODY = b'{"SessionKey":"EXAMPLE_SESSION_KEY"}'


def test_sigv4_vector_1_get() -> None:
    headers = {"x-amz-date": "20250101T000000Z", "x-amz-security-token": TOKEN}
    assert imagex.canonical_query(APPLY_Q) == (
        "Action=ApplyImageUpload&FileSize=12345&ServiceId=tb4s082cfz"
        "&Version=2018-08-01&s=k3j9x0q2ab"
    )
    creq = imagex.canonical_request(
        "GET",
        APPLY_Q,
        headers,
        ["x-amz-date", "x-amz-security-token"],
        imagex.EMPTY_SHA256,
    )
    assert hashlib.sha256(creq.encode()).hexdigest() == (
        "31e11575045292df63b5fe5a9f773ba1ff5aafee6cbad84dffadca9a969becea"
    )
    auth = imagex.sign("GET", APPLY_Q, headers, AK, SK)
    assert auth == (
        "AWS4-HMAC-SHA256 Credential=AKTPEXAMPLEKEYID/20250101/cn-north-1/imagex/"
        "aws4_request, SignedHeaders=x-amz-date;x-amz-security-token, "
        "Signature=164dd590725242a16cef186c057e98c7264d881894f7870e46b68762893a6468"
    )
    assert (
        imagex.verify("GET", APPLY_Q, {**headers, "Authorization": auth}, b"", SK)
        is None
    )


def test_sigv4_vector_2_post() -> None:
    sha = hashlib.sha256(COMMIT_BODY).hexdigest()
    assert sha == "e3e523f3c30980dec662f197595bf274f89fcb95a500dc48b4640f3ec9a51a73"
    headers = {
        "x-amz-date": "20250101T000001Z",
        "x-amz-security-token": TOKEN,
        "x-amz-content-sha256": sha,
    }
    auth = imagex.sign("POST", COMMIT_Q, headers, AK, SK, payload=COMMIT_BODY)
    assert auth == (
        "AWS4-HMAC-SHA256 Credential=AKTPEXAMPLEKEYID/20250101/cn-north-1/imagex/"
        "aws4_request, SignedHeaders=x-amz-content-sha256;x-amz-date;"
        "x-amz-security-token, "
        "Signature=2c0481e3ff8fe9934657f6bf8e8e8909efcdb052b5029141997820c66f7ee09e"
    )
    signed = {**headers, "Authorization": auth}
    assert imagex.verify("POST", COMMIT_Q, signed, COMMIT_BODY, SK) is None
    assert imagex.verify("POST", COMMIT_Q, signed, b"{}", SK) is not None
    assert imagex.verify("POST", COMMIT_Q, signed, COMMIT_BODY, "other") is not None


def test_crc32_vectors() -> None:
    assert imagex.crc32_hex(b"hello world") == "0d4a1185"
    assert imagex.crc32_hex(bytes([0, 1, 2])) == "0854897f"
    for header in ("0854897f", "854897f", "0854897F", " 854897F "):
        assert imagex.crc32_matches(header, bytes([0, 1, 2]))
    assert not imagex.crc32_matches("0d4a1185", bytes([0, 1, 2]))
    assert not imagex.crc32_matches("zz", b"")


def _amz_now() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


class Uploader:
    """The four calls of §5.5, signed with the token the simulator hands out."""

    def __init__(self, client) -> None:
        self.client = client
        token = client.call("/mweb/v1/get_upload_token", {"scene": 2})
        assert token["ret"] == "0", token
        self.token = token["data"]

    def signed(self, method, query, body=None):
        headers = {
            "x-amz-date": _amz_now(),
            "x-amz-security-token": self.token["session_token"],
        }
        if body is not None:
            headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
        headers["Authorization"] = imagex.sign(
            method,
            query,
            headers,
            self.token["access_key_id"],
            self.token["secret_access_key"],
            payload=body,
        )
        return headers

    def apply(self, size, headers=None):
        query = (
            f"Action=ApplyImageUpload&Version=2018-08-01&ServiceId="
            f"{self.token['service_id']}&FileSize={size}&s=k3j9x0q2ab"
        )
        return self.client.http.get(
            f"{self.client.base_url}/?{query}",
            headers=headers or self.signed("GET", query),
            timeout=5,
        )

    def commit(self, session_key):
        query = (
            f"Action=CommitImageUpload&Version=2018-08-01&ServiceId="
            f"{self.token['service_id']}"
        )
        body = json.dumps({"SessionKey": session_key}, separators=(",", ":")).encode()
        return self.client.http.post(
            f"{self.client.base_url}/?{query}",
            data=body,
            headers={
                **self.signed("POST", query, body),
                "content-type": "application/json",
            },
            timeout=5,
        )

    def upload(self, data, crc_header="Content-CRC32", crc=None):
        address = self.apply(len(data)).json()["Result"]["UploadAddress"]
        info = address["StoreInfos"][0]
        response = self.client.http.post(
            f"http://{address['UploadHosts'][0]}/upload/v1/{info['StoreUri']}",
            data=data,
            timeout=5,
            headers={
                "Authorization": info["Auth"],
                crc_header: crc or imagex.crc32_hex(data),
                "Content-Type": "application/octet-stream",
            },
        )
        return address, info, response


def test_upload_token_shape(client) -> None:
    token = Uploader(client).token
    assert token["access_key_id"].startswith("AKTP")
    assert token["session_token"].startswith("STS2")
    assert token["service_id"] == "tb4s082cfz" and token["secret_access_key"]


def test_full_upload_flow_and_blend(client) -> None:
    up = Uploader(client)
    png = image_png("reference", 40)
    # [ZZ] style: unpadded CRC under the header name Content-Crc32
    crc = imagex.crc32_hex(png).lstrip("0").upper()
    address, info, response = up.upload(png, crc_header="Content-Crc32", crc=crc)
    assert response.status_code == 200
    assert response.json()["code"] == 2000
    result = up.commit(address["SessionKey"]).json()["Result"]
    assert result["Results"] == [{"Uri": info["StoreUri"], "UriStatus": 2000}]
    plugin = result["PluginResult"][0]
    assert (plugin["ImageWidth"], plugin["ImageHeight"]) == (40, 40)
    assert plugin["ImageFormat"] == "png" and plugin["ImageSize"] == len(png)
    assert client.stats()["uploads"] == 1

    draft = _blend_draft(info["StoreUri"])
    assert client.generate(draft=draft)["ret"] == "0"
    assert client.generate(draft=_blend_draft("tos-cn-i-x/unknown"))["ret"] == "1000"


def _blend_draft(uri: str) -> dict:
    draft = draft_v2("##make it blue", model="high_aes_general_v40")
    comp = draft["component_list"][0]
    comp["generate_type"] = "blend"
    generate = comp["abilities"].pop("generate")
    generate["ability_list"] = [
        {
            "type": "",
            "id": "a",
            "name": "byte_edit",
            "image_uri_list": [uri],
            "image_list": [
                {
                    "type": "image",
                    "id": "i",
                    "source_from": "upload",
                    "image_uri": uri,
                    "uri": uri,
                }
            ],
            "strength": 0.5,
        }
    ]
    comp["abilities"]["blend"] = generate
    generate_body(draft)  # still builds
    return draft


def test_bad_crc_refused(client) -> None:
    _, _, response = Uploader(client).upload(b"abc", crc="00000000")
    assert response.status_code == 400 and response.json()["code"] != 2000


def test_commit_before_upload_fails(client) -> None:
    up = Uploader(client)
    address = up.apply(10).json()["Result"]["UploadAddress"]
    result = up.commit(address["SessionKey"]).json()["Result"]
    assert result["Results"][0]["UriStatus"] == 2001


@pytest.mark.parametrize("tamper", ["signature", "token", "date"])
def test_bad_sigv4_refused_and_recorded(client, tamper) -> None:
    up = Uploader(client)
    query = (
        "Action=ApplyImageUpload&Version=2018-08-01&ServiceId=tb4s082cfz"
        "&FileSize=10&s=abc"
    )
    headers = up.signed("GET", query)
    if tamper == "signature":
        headers["Authorization"] = headers["Authorization"][:-4] + "0000"
    elif tamper == "token":
        headers["x-amz-security-token"] = "STS2other"
    else:
        headers["x-amz-date"] = "20250101T000000Z"
    response = client.http.get(
        f"{client.base_url}/?{query}", headers=headers, timeout=5
    )
    assert response.status_code == 401
    assert response.json()["ResponseMetadata"]["Error"]["Code"]
    assert client.stats()["violations"][-1]["endpoint"] == "imagex_apply"
