"""Image URLs: real PNG bytes that differ per image; expiry and signature → 403."""

from __future__ import annotations

import struct
import zlib
from urllib.parse import parse_qs, urlsplit

from jimeng_api.simulator.png import PNG_SIGNATURE, image_png


def _urls(client, gen_count=2):
    record = client.wait(client.submit(gen_count=gen_count))
    return [i["image"]["large_images"][0]["image_url"] for i in record["item_list"]], [
        i["common_attr"]["cover_url"] for i in record["item_list"]
    ]


def test_valid_url_serves_distinct_pngs(client) -> None:
    urls, covers = _urls(client, 3)
    bodies = []
    for url in urls + covers:
        response = client.http.get(url, timeout=5)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "image/png"
        assert response.content.startswith(PNG_SIGNATURE)
        bodies.append(response.content)
    assert len(set(bodies)) == len(bodies)


def test_png_is_well_formed() -> None:
    data = image_png("123/0", 32)
    assert data[:8] == PNG_SIGNATURE
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        payload = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload)
        chunks.append((kind, payload))
        pos += 12 + length
    assert [k for k, _ in chunks] == [b"IHDR", b"tEXt", b"IDAT", b"IEND"]
    assert struct.unpack(">II", chunks[0][1][:8]) == (32, 32)
    raw = zlib.decompress(chunks[2][1])
    assert len(raw) == 32 * (1 + 32 * 3)


def test_expired_url_is_403(client) -> None:
    client.configure(image_url_ttl=60)
    urls, _ = _urls(client, 1)
    expires = int(parse_qs(urlsplit(urls[0]).query)["x-expires"][0])
    assert expires > 0
    client.sim("clock", {"advance": 61})
    assert client.http.get(urls[0], timeout=5).status_code == 403
    # A fresh poll returns fresh URLs that work again.
    fresh, _ = _urls(client, 1)
    assert client.http.get(fresh[0], timeout=5).status_code == 200


def test_tampered_signature_or_expiry_is_403(client) -> None:
    urls, _ = _urls(client, 1)
    assert (
        client.http.get(
            urls[0].replace("x-signature=", "x-signature=A"), timeout=5
        ).status_code
        == 403
    )
    later = urls[0].replace("x-expires=", "x-expires=9")
    assert client.http.get(later, timeout=5).status_code == 403
    unsigned = urls[0].split("?")[0]
    assert client.http.get(unsigned, timeout=5).status_code == 403


def test_public_base_url_knob(client) -> None:
    client.configure(public_base_url="http://sim.example:9000/")
    urls, covers = _urls(client, 1)
    assert urls[0].startswith("http://sim.example:9000/img/")
    assert covers[0].startswith("http://sim.example:9000/img/")
