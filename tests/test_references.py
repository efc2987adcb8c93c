"""Reference images from requests: every source (data: URI, base64, URL, chat
image parts), the checks that refuse bad input with a 400/413 before anything is
submitted, the re-encoding, and the sizes and formats they lead to."""

from __future__ import annotations

import base64
import http.server
import io
import json
import socket
import threading
import time

import pytest
import requests
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from jimeng_api import references, sizes
from jimeng_api.catalog import get_model
from jimeng_api.errors import InvalidRequestError, PayloadTooLargeError
from jimeng_api.upstream.drafts import generate_body

AUTH = {"Authorization": "Bearer references-session-1"}


def image_bytes(width=48, height=36, fmt="PNG", mode="RGB", **save) -> bytes:
    color = (200, 40, 40, 128) if mode == "RGBA" else (200, 40, 40)
    out = io.BytesIO()
    Image.new(mode, (width, height), color).save(out, fmt, **save)
    return out.getvalue()


def data_uri(data: bytes, media="image/png") -> str:
    return f"data:{media};base64," + base64.b64encode(data).decode()


PNG = image_bytes()


# --- a small web server for URL references ------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/cat.png":
            self._send(200, PNG, "image/png")
        elif self.path == "/octet":
            self._send(200, PNG, "application/octet-stream")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://10.0.0.1/cat.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            for byte in PNG:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
        else:
            self._send(404, b"no", "text/plain")

    def _send(self, status, body, media):
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def web():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# --- bad input: a 400 (or 413) naming the reference, nothing submitted ---------------


def refused(client, upstream, body, path="/v1/images/generations", **kwargs):
    response = client.post(path, json=body, **kwargs)
    assert 400 <= response.status_code < 500, response.json
    assert upstream.calls(upstream.GENERATE) == []
    assert upstream.calls("/mweb/v1/get_upload_token") == []
    return response


def edit(model="jimeng-4.0", **fields):
    return {"prompt": "a fox", "model": model, **fields}


@pytest.mark.parametrize(
    ("image", "code"),
    [
        (data_uri(b"this is not an image"), "not_an_image"),
        (data_uri(PNG[: len(PNG) // 2]), "not_an_image"),  # truncated
        (
            data_uri(b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
            "not_an_image",
        ),
        (base64.b64encode(b'<?xml version="1.0"?><svg/>').decode(), "not_an_image"),
        (data_uri(PNG, "text/plain"), "not_an_image"),
        ("file:///etc/passwd", "url_not_allowed"),
        ("gopher://example.com/1", "url_not_allowed"),
        ("http://127.0.0.1/cat.png", "url_not_allowed"),
        ("http://[::ffff:127.0.0.1]/cat.png", "url_not_allowed"),
        ("not base64 at all!", "invalid_request"),
    ],
)
def test_bad_references_are_400_naming_the_reference(client, upstream, image, code):
    response = refused(client, upstream, edit(image=[data_uri(PNG), image]))
    error = response.json["error"]
    assert response.status_code == 400
    assert error["param"] == "image[1]" and error["code"] == code


def test_a_host_resolving_to_a_private_address_is_refused(
    client, upstream, monkeypatch
):
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "internal.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    response = refused(
        client, upstream, edit(image="http://internal.example.com/a.png")
    )
    assert response.json["error"]["code"] == "url_not_allowed"
    assert "private" in response.json["error"]["message"]
    assert response.json["error"]["param"] == "image"


def test_a_redirect_to_a_private_address_is_refused(make_app, web):
    app = make_app(FETCH_ALLOW_PRIVATE_HOSTS=("127.0.0.1",))
    response = app.test_client().post(
        "/v1/images/generations", json=edit(image=web + "/redirect"), headers=AUTH
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "url_not_allowed"
    assert "10.0.0.1" in response.json["error"]["message"]


def test_a_slow_drip_server_is_cut_at_the_total_deadline(make_app, web):
    app = make_app(FETCH_ALLOW_PRIVATE_HOSTS=("127.0.0.1",), IMAGE_FETCH_TIMEOUT=0.5)
    started = time.monotonic()
    response = app.test_client().post(
        "/v1/images/generations", json=edit(image=web + "/drip"), headers=AUTH
    )
    assert time.monotonic() - started < 3
    assert response.status_code == 400
    assert response.json["error"]["code"] == "fetch_timeout"


def test_eleven_references_are_refused_naming_the_limit(client, upstream):
    response = refused(client, upstream, edit(image=[data_uri(PNG)] * 11))
    assert response.json["error"]["param"] == "image"
    assert response.json["error"]["code"] == "too_many_images"
    assert "At most 10" in response.json["error"]["message"]


def test_a_model_without_image_to_image_names_the_ones_with_it(client, upstream):
    response = refused(client, upstream, edit(model="jimeng-2.1", image=data_uri(PNG)))
    error = response.json["error"]
    assert error["param"] == "model" and error["code"] == "model_not_supported"
    assert "jimeng-4.0" in error["message"] and "jimeng-3.0" in error["message"]


def test_jimeng_3_takes_one_reference(client, upstream):
    response = refused(
        client, upstream, edit(model="jimeng-3.0", image=[data_uri(PNG)] * 2)
    )
    assert response.json["error"]["param"] == "image"
    assert "at most 1" in response.json["error"]["message"]


def test_an_unknown_model_is_404_as_everywhere(client, upstream):
    response = client.post(
        "/v1/images/edits", json=edit(model="dall-e-9", image=PNG.hex())
    )
    assert response.status_code == 404
    assert response.json["error"]["code"] == "model_not_found"


def test_a_mask_is_refused(client, upstream):
    files = {"image": (io.BytesIO(PNG), "a.png"), "mask": (io.BytesIO(PNG), "m.png")}
    response = client.post(
        "/v1/images/edits",
        data={"prompt": "x", **files},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert response.json["error"]["param"] == "mask"
    assert response.json["error"]["code"] == "mask_not_supported"


def test_an_edit_without_images_is_refused(client, upstream):
    response = refused(client, upstream, {"prompt": "x"}, path="/v1/images/edits")
    assert response.json["error"]["param"] == "image"


def test_a_50_megabyte_file_is_413(make_app):
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (50 * 1024 * 1024)
    # encoded in memory: the test client's temporary file would stay open
    boundary, body = encode_multipart(
        {"prompt": "x", "image": FileStorage(io.BytesIO(big), "big.png")}
    )
    limits = ((1024 * 1024, "request_too_large"), (64 * 1024**2, "image_too_large"))
    for limit, code in limits:
        app = make_app(MAX_CONTENT_LENGTH=limit)
        response = app.test_client().post(
            "/v1/images/edits",
            data=body,
            content_type=f"multipart/form-data; boundary={boundary}",
            headers=AUTH,
        )
        assert response.status_code == 413
        assert response.json["error"]["code"] == code


def test_a_non_image_file_is_refused(client, upstream):
    response = client.post(
        "/v1/images/edits",
        data={
            "prompt": "x",
            "model": "jimeng-4.0",
            "image[]": [(io.BytesIO(PNG), "a.png"), (io.BytesIO(b"MZ\0\0"), "b.exe")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert response.json["error"]["param"] == "image[1]"
    assert upstream.calls(upstream.GENERATE) == []


def test_a_chat_image_part_that_is_not_an_image_is_400_not_dropped(client, upstream):
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "a red fox"},
                {"type": "image_url", "image_url": {"url": data_uri(b"garbage")}},
            ],
        }
    ]
    response = client.post("/v1/chat/completions", json={"messages": messages})
    assert response.status_code == 400
    assert response.json["error"]["param"] == "messages[0].content[1]"
    assert upstream.calls(upstream.GENERATE) == []


# --- decoding and re-encoding ---------------------------------------------------------


def prepare(data: bytes, max_side=2048, limit=20 * 1024 * 1024):
    return references.prepare(data, "image", max_side, limit)


def test_large_images_are_scaled_down_and_reencoded_as_jpeg():
    data, mime, width, height = prepare(image_bytes(5000, 2500, "WEBP"))
    assert (mime, width, height) == ("image/jpeg", 2048, 1024)
    assert Image.open(io.BytesIO(data)).format == "JPEG"


def test_transparency_stays_png_and_opaque_alpha_becomes_jpeg():
    assert prepare(image_bytes(20, 20, mode="RGBA"))[1] == "image/png"
    opaque = io.BytesIO()
    Image.new("RGBA", (20, 20), (1, 2, 3, 255)).save(opaque, "PNG")
    assert prepare(opaque.getvalue())[1] == "image/jpeg"


def test_exif_orientation_is_applied_and_metadata_dropped():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif[0x010F] = "SecretCam"
    data, _, width, height = prepare(image_bytes(60, 20, "JPEG", exif=exif.tobytes()))
    assert (width, height) == (20, 60)
    assert not Image.open(io.BytesIO(data)).getexif()


def test_the_first_frame_of_an_animated_gif_is_used():
    frames = [Image.new("RGB", (30, 30), c) for c in ((255, 0, 0), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    data, mime, *_ = prepare(out.getvalue())
    assert mime == "image/jpeg"
    assert Image.open(io.BytesIO(data)).convert("RGB").getpixel((15, 15))[0] > 200


def test_too_many_pixels_are_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(references, "MAX_INPUT_PIXELS", 100)
    with pytest.raises(InvalidRequestError, match="pixels"):
        prepare(image_bytes(11, 10))


def test_sources_from_json_read_every_shape_and_strength():
    sources = references.sources_from_json(
        [
            "https://x.test/a.png",
            {"url": "data:,"},
            {"b64_json": "AAAA", "strength": 0.8},
        ]
    )
    assert [s.param for s in sources] == ["image[0]", "image[1]", "image[2]"]
    assert sources[2].strength == 0.8
    with pytest.raises(InvalidRequestError) as caught:
        references.sources_from_json({"url": "x", "strength": 2})
    assert caught.value.param == "image.strength"
    with pytest.raises(PayloadTooLargeError):
        references._base64("A" * 4000, "image", 1024)


def test_quality_picks_the_tier_and_a_reference_the_ratio(app):
    from jimeng_api.specs import image_spec

    def spec(**kwargs):
        return image_spec(app.config, model_name="jimeng-4.0", prompt="p", **kwargs)

    assert spec(quality="low")["draft"]["resolution_type"] == "1k"
    assert spec(quality="high")["draft"]["resolution_type"] == "4k"
    assert (
        spec(quality="high", size_params={"size": "1024x1024"})["size"] == "1024x1024"
    )
    legacy = image_spec(app.config, model_name="jimeng-3.0", prompt="p", quality="high")
    assert legacy["draft"]["resolution_type"] == "2k"  # 3.x renders up to 2k
    wide = [{"width": 1600, "height": 900, "strength": 0.5, "param": "image"}]
    made = spec(references=wide, size_params={"size": "auto"})
    assert (made["draft"]["image_ratio"], made["size"]) == (3, "2560x1440")
    assert made["quality"] == "medium" and made["references"] == wide
    assert sizes.nearest_ratio(1000, 1000) == "1:1"
    with pytest.raises(InvalidRequestError):
        references.require_image_to_image(get_model("jimeng-1.4"), 1)


# --- good input, end to end on the simulator ------------------------------------


@pytest.fixture
def sim_client(fresh_sim, make_app):
    app = make_app(
        JIMENG_BASE_URL=fresh_sim.base_url,
        JIMENG_IMAGEX_URL=fresh_sim.base_url,
        FETCH_ALLOW_PRIVATE_HOSTS=("127.0.0.1",),
    )
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    return client


def sim_tasks(sim) -> list[dict]:
    stats = requests.get(sim.base_url + "/__sim/stats", timeout=10).json()
    return list(stats["tasks"].values())


def test_json_references_of_every_kind_make_one_blend(sim_client, fresh_sim, web):
    body = edit(
        n=1,
        image=[
            data_uri(image_bytes(64, 36)),  # 16:9: the size follows it
            base64.b64encode(image_bytes(fmt="JPEG")).decode(),
            {"url": web + "/octet", "strength": 0.9},
        ],
        response_format="b64_json",
        output_format="webp",
    )
    response = sim_client.post("/v1/images/generations", json=body)
    assert response.status_code == 200, response.json
    assert response.json["size"] == "2560x1440"
    assert response.json["output_format"] == "webp"
    image = base64.b64decode(response.json["data"][0]["b64_json"])
    assert Image.open(io.BytesIO(image)).format == "WEBP"
    (task,) = sim_tasks(fresh_sim)
    assert task["prompt"] == "######a fox" and task["model"] == "high_aes_general_v40"
    stats = fresh_sim.stats()
    assert stats["calls"]["imagex_commit"] == 3 and stats["violations"] == []


def test_the_blend_min_version_is_a_setting(fresh_sim, make_app, monkeypatch):
    app = make_app(
        JIMENG_BASE_URL=fresh_sim.base_url,
        JIMENG_IMAGEX_URL=fresh_sim.base_url,
        JIMENG_BLEND_MIN_VERSION="3.3.1",
    )
    client = app.extensions["jimeng"]["client"]
    sent, submit = [], client.submit
    monkeypatch.setattr(
        client, "submit", lambda *a, **k: sent.append(a[1]) or submit(*a, **k)
    )
    images = [data_uri(image_bytes(64, 36)), data_uri(image_bytes(32, 32))]
    response = app.test_client().post(
        "/v1/images/generations", json=edit(n=1, image=images), headers=AUTH
    )
    assert response.status_code == 200, response.json
    (draft,) = sent
    envelope = json.loads(
        json.loads(generate_body(draft, "s", 513695))["draft_content"]
    )
    assert envelope["min_version"] == "3.3.1"


def test_chat_image_parts_make_an_image_to_image_request(sim_client, fresh_sim):
    messages = [
        {"role": "user", "content": "old prompt"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "the same cat, in snow"},
                {
                    "type": "image_url",
                    "image_url": {"url": data_uri(PNG), "detail": "auto"},
                },
            ],
        },
    ]
    response = sim_client.post(
        "/v1/chat/completions",
        json={"model": "jimeng-4.5", "messages": messages, "n": 1},
    )
    assert response.status_code == 200, response.json
    assert "![image_0](" in response.json["choices"][0]["message"]["content"]
    (task,) = sim_tasks(fresh_sim)
    assert task["prompt"] == "##the same cat, in snow"
    assert fresh_sim.stats()["calls"]["imagex_upload"] == 1


def test_stashed_references_are_dropped_when_the_job_ends(sim_client, fresh_sim):
    response = sim_client.post(
        "/v1/images/edits",
        json=edit(n=1, image=data_uri(PNG)),
        headers={"Prefer": "respond-async"},
    )
    assert response.status_code == 202
    app = sim_client.application
    store = app.extensions["jimeng"]["store"]
    job = app.extensions["jimeng"]["jobs"].get(response.json["id"])
    (entry,) = job["spec"]["references"]
    assert set(entry) >= {"key", "sha256", "width", "height", "strength", "param"}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job = app.extensions["jimeng"]["jobs"].get(response.json["id"])
        if job["status"] == "completed":
            break
        time.sleep(0.05)
    assert job["status"] == "completed"
    assert store.get_key(entry["key"]) is None
    assert len(json.dumps(job["spec"])) < 4000  # the spec holds no image bytes


def test_a_multipart_retry_with_the_same_idempotency_key_is_the_same_task(
    sim_client, fresh_sim
):
    def send(data: bytes):
        form = {"prompt": "once", "model": "jimeng-4.0", "n": "1"}
        return sim_client.post(
            "/v1/images/edits",
            data={**form, "image[]": [(io.BytesIO(data), "a.png")]},
            content_type="multipart/form-data",  # a new boundary each time
            headers={"Idempotency-Key": "edit-once", "Prefer": "respond-async"},
        )

    first, again = send(PNG), send(PNG)
    assert first.status_code == again.status_code == 202, first.json
    assert first.json["id"] == again.json["id"]
    other = send(image_bytes(10, 10))
    assert other.status_code == 422  # the key named another request
