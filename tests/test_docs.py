"""The READMEs document every setting and the two commands CI relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import Config

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = sorted(k for k in vars(Config) if k.isupper())


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_every_setting_is_in_the_configuration_table(readme):
    text = (ROOT / readme).read_text(encoding="utf-8")
    missing = [name for name in SETTINGS if f"`{name}`" not in text]
    assert missing == []


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_quick_start_names_make_run_and_make_test(readme):
    text = (ROOT / readme).read_text(encoding="utf-8")
    assert "make run" in text and "make test" in text


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
