"""Number and table formatting for the reports."""

from __future__ import annotations

from typing import Any


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value and abs(value) < 0.1 and digits == 2:
            digits = 3  # 0.051 s must not read as 0.05
        return f"{value:.{digits}f}"
    return str(value)


def fmt_spread(s: dict[str, Any] | None, digits: int = 2) -> str:
    """``mean (min–max)`` over runs, or the one value."""
    if not s or not s.get("n"):
        return "–"
    if s["n"] == 1 or s["min"] == s["max"]:
        return fmt(float(s["mean"]), digits)
    return f"{s['mean']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out
