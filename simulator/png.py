"""Tiny PNG encoder (zlib + struct) for the simulator's fake generated images."""

from __future__ import annotations

import hashlib
import struct
import zlib
from functools import lru_cache

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_png(width: int, height: int, rows: list[bytes], text: str = "") -> bytes:
    """Encode 8-bit RGB *rows* (``width * 3`` bytes each) as a PNG file."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    parts = [PNG_SIGNATURE, _chunk(b"IHDR", header)]
    if text:
        parts.append(_chunk(b"tEXt", b"Comment\x00" + text.encode("utf-8")))
    parts += [_chunk(b"IDAT", zlib.compress(raw, 6)), _chunk(b"IEND", b"")]
    return b"".join(parts)


@lru_cache(maxsize=512)
def image_png(key: str, size: int = 64) -> bytes:
    """A striped PNG whose colours (and embedded text) derive from *key*."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    light = bytes(64 + b % 192 for b in digest[:3])
    dark = bytes(c // 2 for c in light)
    rows = []
    for y in range(size):
        row = bytearray()
        for x in range(size):
            row += light if ((x + y) // 8) % 2 == 0 else dark
        rows.append(bytes(row))
    return encode_png(size, size, rows, f"jimeng-sim {key}")


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
