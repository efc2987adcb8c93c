"""A 5×7 bitmap font (digits, A–Z, common punctuation) for the fake images.

Each glyph is 7 rows of 5 bits, as 14 hex digits (bit 4 = leftmost pixel).
Lower case is drawn as upper case; anything else (CJK too) as a hollow box.
"""

from __future__ import annotations

GLYPH_WIDTH, GLYPH_HEIGHT = 5, 7
TOFU = "\u25a1"

_HEX: dict[str, str] = {
    "0": "0e11131519110e",
    "1": "040c040404040e",
    "2": "0e11010204081f",
    "3": "1f02040201110e",
    "4": "02060a121f0202",
    "5": "1f101e0101110e",
    "6": "0608101e11110e",
    "7": "1f010204080808",
    "8": "0e11110e11110e",
    "9": "0e11110f01020c",
    "A": "0e11111f111111",
    "B": "1e11111e11111e",
    "C": "0e11101010110e",
    "D": "1c12111111121c",
    "E": "1f10101e10101f",
    "F": "1f10101e101010",
    "G": "0e11101711110f",
    "H": "1111111f111111",
    "I": "0e04040404040e",
    "J": "0702020202120c",
    "K": "11121418141211",
    "L": "1010101010101f",
    "M": "111b1515111111",
    "N": "11111915131111",
    "O": "0e11111111110e",
    "P": "1e11111e101010",
    "Q": "0e11111115120d",
    "R": "1e11111e141211",
    "S": "0f10100e01011e",
    "T": "1f040404040404",
    "U": "1111111111110e",
    "V": "11111111110a04",
    "W": "1111111515150a",
    "X": "11110a040a1111",
    "Y": "11110a04040404",
    "Z": "1f01020408101f",
    " ": "00000000000000",
    ".": "00000000000c0c",
    ",": "000000000c0408",
    "-": "0000001f000000",
    "/": "00010204081000",
    "#": "0a0a1f0a1f0a0a",
    ":": "000c0c000c0c00",
    ";": "000c0c000c0408",
    "!": "04040404040004",
    "?": "0e110102040004",
    "'": "04040800000000",
    '"': "0a0a0000000000",
    "(": "02040808080402",
    ")": "08040202020408",
    "[": "0e08080808080e",
    "]": "0e02020202020e",
    "+": "0004041f040400",
    "=": "00001f001f0000",
    "_": "0000000000001f",
    "*": "0004150e150400",
    "&": "0c12140815120d",
    "%": "18190204081303",
    "@": "0e11010d15150e",
    "<": "02040810080402",
    ">": "08040201020408",
    TOFU: "1f11111111111f",
}
GLYPHS: dict[str, tuple[int, ...]] = {
    ch: tuple(int(code[i : i + 2], 16) for i in range(0, 14, 2))
    for ch, code in _HEX.items()
}


def glyph(ch: str) -> tuple[int, ...]:
    """The 7 row bitmasks of *ch* (upper-cased; unknown characters → a box)."""
    return GLYPHS.get(ch.upper()) or GLYPHS[TOFU]


def wrap(text: str, columns: int, max_lines: int) -> list[str]:
    """Greedy word wrap to *columns*; long words (and CJK runs) are cut."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > columns:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:columns])
            word = word[columns:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= columns:
            current += " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(columns - 2, 0)] + ".."
    return lines
