"""Image URLs: real PNGs at the requested aspect ratio with the prompt drawn on
them, differing per image; expiry and signature → 403."""

from __future__ import annotations

import hashlib
import struct
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest

from simulator.font import TOFU, glyph, wrap
from simulator.png import PNG_SIGNATURE, image_dimensions, image_png, render_image


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


# -- the requested shape, the prompt and the index drawn (issue 17 point 8) -------
def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def _pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    chunks = dict(_chunks(data))
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + width * 3
    rows = [raw[y * stride : (y + 1) * stride] for y in range(height)]
    assert all(row[0] == 0 for row in rows)  # filter type None
    return width, height, [row[1:] for row in rows]


def _first(client, prompt: str, width: int, height: int, gen_count: int = 2):
    hid = client.submit(prompt, width=width, height=height, gen_count=gen_count)
    return client.wait(hid)["item_list"]


@pytest.mark.parametrize(
    ("width", "height", "served"),
    [
        (2560, 1440, (256, 144)),
        (1440, 2560, (144, 256)),
        (2048, 2048, (256, 256)),
        (3024, 1296, (256, 110)),
        (768, 1024, (192, 256)),
    ],
)
def test_images_have_the_requested_aspect_ratio(client, width, height, served):
    item = _first(client, "a cat", width, height, 1)[0]
    large = item["image"]["large_images"][0]
    assert (large["width"], large["height"]) == served
    image = client.http.get(large["image_url"], timeout=5).content
    assert image_dimensions(image) == (*served, "png")
    cover = client.http.get(item["common_attr"]["cover_url"], timeout=5).content
    cw, ch, _ = image_dimensions(cover)
    assert max(cw, ch) == 128 and abs(cw / ch - served[0] / served[1]) < 0.05


def test_image_size_knob_is_the_long_side(client) -> None:
    client.configure(image_size=100)
    large = _first(client, "x", 2560, 1440, 1)[0]["image"]["large_images"][0]
    assert (large["width"], large["height"]) == (100, 56)
    data = client.http.get(large["image_url"], timeout=5).content
    assert image_dimensions(data)[:2] == (100, 56)


def test_prompt_and_index_drawn_and_embedded(client) -> None:
    items = _first(client, "a red fox in the snow", 2048, 2048, 2)
    images = []
    for item in items:
        url = item["image"]["large_images"][0]["image_url"]
        data = client.http.get(url, timeout=5).content
        chunks = _chunks(data)
        assert [k for k, _ in chunks] == [b"IHDR", b"tEXt", b"iTXt", b"IDAT", b"IEND"]
        itxt = dict(chunks)[b"iTXt"]
        assert itxt.startswith(b"Description\x00") and itxt.endswith(
            b"a red fox in the snow"
        )
        width, height, rows = _pixels(data)
        white = sum(row.count(b"\xff\xff\xff") for row in rows)
        assert white > 200  # the words, in white on a dark panel
        images.append(rows)
    assert images[0] != images[1]  # "#1/2" vs "#2/2" (and their colours)


def _light(key: str) -> bytes:
    digest = hashlib.sha256(key.encode()).digest()
    return bytes(64 + b % 192 for b in digest[:3])


def test_label_pixels_are_the_fonts_glyph() -> None:
    # One line on a 64×32 image: scale 1, margin 2, a 10 px line centred.
    _, _, rows = _pixels(render_image("k", 64, 32, "1", ""))
    ink, top = _light("k"), (32 - 10) // 2 + 2
    drawn = tuple(
        sum(
            1 << (4 - c)
            for c in range(5)
            if rows[top + r][(2 + c) * 3 : (3 + c) * 3] == ink
        )
        for r in range(7)
    )
    assert drawn == glyph("1")


def test_font_and_wrapping() -> None:
    assert glyph("a") == glyph("A") != glyph("B")
    assert glyph("中") == glyph(TOFU) == glyph("\x07")
    assert wrap("a red fox in the snow", 9, 5) == ["a red fox", "in the", "snow"]
    assert wrap("a red fox in the snow", 9, 2) == ["a red fox", "in the.."]
    assert wrap("两个小马在一起跑步", 4, 5) == ["两个小马", "在一起跑", "步"]
    assert wrap("", 9, 3) == []


def test_cjk_prompt_still_gives_a_valid_png(client) -> None:
    item = _first(client, "两个小马在一起跑步", 1024, 1024, 1)[0]
    data = client.http.get(item["image"]["large_images"][0]["image_url"], timeout=5)
    assert data.content.startswith(PNG_SIGNATURE)
    itxt = dict(_chunks(data.content))[b"iTXt"]
    assert itxt.endswith("两个小马在一起跑步".encode())


def test_url_of_a_forgotten_task_still_serves_a_png(client) -> None:
    urls, _ = _urls(client, 1)
    client.sim("reset", {})
    response = client.http.get(urls[0], timeout=5)
    assert response.status_code == 200
    assert image_dimensions(response.content)[:2] == (256, 256)
