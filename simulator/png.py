"""Tiny PNG encoder (zlib + struct) and the renderer of the fake generated images."""

from __future__ import annotations

import hashlib
import struct
import zlib
from functools import lru_cache

from .font import GLYPH_HEIGHT, GLYPH_WIDTH, glyph, wrap

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_png(
    width: int,
    height: int,
    rows: list[bytes],
    text: str = "",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> bytes:
    """Encode 8-bit RGB *rows* (``width * 3`` bytes each) as a PNG file."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    parts = [PNG_SIGNATURE, _chunk(b"IHDR", header)]
    if text:
        latin = text.encode("latin-1", "replace")
        parts.append(_chunk(b"tEXt", b"Comment\x00" + latin))
    parts += [_chunk(kind, payload) for kind, payload in extra or []]
    parts += [_chunk(b"IDAT", zlib.compress(raw, 6)), _chunk(b"IEND", b"")]
    return b"".join(parts)


def _itxt(keyword: str, text: str) -> bytes:
    """An uncompressed iTXt payload (UTF-8 text, unlike tEXt's Latin-1)."""
    return keyword.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode("utf-8")


def _palette(key: str) -> tuple[bytes, bytes, bytes]:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    light = bytes(64 + b % 192 for b in digest[:3])
    dark = bytes(c // 2 for c in light)
    panel = bytes(c // 4 for c in light)
    return light, dark, panel


def _draw_text(
    buf: bytearray, width: int, x: int, y: int, text: str, scale: int, ink: bytes
) -> None:
    block = ink * scale
    for n, ch in enumerate(text):
        left = x + n * (GLYPH_WIDTH + 1) * scale
        for row, bits in enumerate(glyph(ch)):
            for col in range(GLYPH_WIDTH):
                if bits & (1 << (GLYPH_WIDTH - 1 - col)):
                    px = left + col * scale
                    for dy in range(scale):
                        at = ((y + row * scale + dy) * width + px) * 3
                        buf[at : at + 3 * scale] = block


@lru_cache(maxsize=512)
def render_image(
    key: str, width: int, height: int, label: str = "", prompt: str = ""
) -> bytes:
    """A striped width×height PNG (colours from *key*) with *label* and the
    first words of *prompt* drawn on a dark panel; the full prompt is in iTXt."""
    light, dark, panel = _palette(key)
    stripe = max(4, max(width, height) // 32)
    base = b"".join(
        light if (x // stripe) % 2 == 0 else dark for x in range(width + 2 * stripe)
    )
    buf = bytearray()
    for y in range(height):
        shift = (y % (2 * stripe)) * 3
        buf += base[shift : shift + width * 3]
    scale = max(1, min(width, height * 2) // 128)
    advance, line_height = (GLYPH_WIDTH + 1) * scale, (GLYPH_HEIGHT + 3) * scale
    margin = max(2, scale * 2)
    columns = max(1, (width - 2 * margin) // advance)
    rows = max(0, (height - 2 * margin) // line_height)
    lines = ([label[:columns]] if label else []) + wrap(
        prompt, columns, max(0, rows - (1 if label else 0))
    )
    lines = lines[:rows]
    if lines:
        top = max(0, (height - len(lines) * line_height) // 2)
        bottom = min(height, top + len(lines) * line_height + scale)
        for y in range(top, bottom):
            buf[y * width * 3 : (y + 1) * width * 3] = panel * width
        for n, line in enumerate(lines):
            ink = b"\xff\xff\xff" if n or not label else light
            y = top + n * line_height + scale * 2
            _draw_text(buf, width, margin, y, line, scale, ink)
    stride = width * 3
    rows_data = [bytes(buf[y * stride : (y + 1) * stride]) for y in range(height)]
    extra = [(b"iTXt", _itxt("Description", prompt))] if prompt else []
    return encode_png(width, height, rows_data, f"jimeng-sim {key}", extra)


def image_png(key: str, size: int = 64) -> bytes:
    """A square striped PNG whose colours (and embedded text) derive from *key*."""
    return render_image(key, size, size)


def image_dimensions(data: bytes) -> tuple[int, int, str]:
    """Return (width, height, format) of a PNG or JPEG, or (0, 0, "") if unknown."""
    if data.startswith(PNG_SIGNATURE) and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height, "png"
    if data.startswith(b"\xff\xd8"):
        return _jpeg_dimensions(data)
    return 0, 0, ""


def _jpeg_dimensions(data: bytes) -> tuple[int, int, str]:
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            return 0, 0, "jpeg"
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height, "jpeg"
        pos += 2 + length
    return 0, 0, "jpeg"
