"""Small builders shared by the tests."""

from __future__ import annotations

from dataclasses import replace

from jimeng_api.upstream import Draft

DRAFT = Draft(
    model_key="high_aes_general_v30l:general_v3.0_18b",
    prompt="a cat",
    negative_prompt="",
    width=1024,
    height=1024,
    image_ratio=1,
    resolution_type="1k",
    sample_strength=0.5,
    seed=42,
    n=None,
    draft_version="3.0.2",
    min_version="3.0.2",
)


def draft(**changes) -> Draft:
    """Return the standard test draft with *changes* applied."""
    return replace(DRAFT, **changes)
