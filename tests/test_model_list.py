"""The live model list: the site's own table narrows the catalogue, a failure
falls back to it, retired models (ret 2061) are hidden; per-model draft
versions come from configuration."""

from __future__ import annotations

import pytest

from config import TestingConfig
from jimeng_api import create_app
from jimeng_api.catalog import get_model
from jimeng_api.specs import draft_version

COMMON = "/mweb/v1/get_common_config"


def ids(response):
    """The image models listed (video models follow them, see test_videos.py)."""
    data = response.get_json()["data"]
    return [m["id"] for m in data if m.get("kind", "image") == "image"]


def test_without_an_account_the_catalogue_is_listed_with_capabilities(app):
    response = app.test_client().get("/v1/models")
    models = response.get_json()["data"]
    assert "jimeng-4.0" in [m["id"] for m in models]
    four = next(m for m in models if m["id"] == "jimeng-4.0")
    assert four["max_n"] == 8 and "4k" in four["resolutions"]
    three = next(m for m in models if m["id"] == "jimeng-3.0")
    assert three["max_n"] == 4 and "4k" not in three["resolutions"]
    assert four["listed_by_site"] is None


def test_the_site_s_list_narrows_the_catalogue(client, upstream):
    table = {"model_list": [{"model_req_key": get_model("jimeng-4.0").key}]}
    upstream.reply(COMMON, {"image": table})
    response = client.get("/v1/models")
    assert ids(response) == ["jimeng-4.0"]
    assert response.get_json()["data"][0]["listed_by_site"] is True
    assert len(upstream.calls(COMMON)) == 1
    client.get("/v1/models")
    assert len(upstream.calls(COMMON)) == 1, "cached for MODEL_LIST_TTL"


@pytest.mark.parametrize("failure", ["http", "ret"])
def test_a_failing_site_list_falls_back_to_the_catalogue(client, upstream, failure):
    if failure == "http":
        upstream.raw(COMMON, status=503, body="<html>busy</html>")
    else:
        upstream.reply(COMMON, None, ret="1014", errmsg="system busy")
    response = client.get("/v1/models")
    assert response.status_code == 200
    assert "jimeng-3.0" in ids(response) and "jimeng-4.0" in ids(response)


def test_a_model_jimeng_retired_is_hidden(client, upstream):
    upstream.reply(upstream.GENERATE, None, ret="2061", errmsg="model offline")
    upstream.raw(COMMON, status=503, body="busy")
    failed = client.post(
        "/v1/images/generations", json={"prompt": "a cat", "model": "jimeng-3.1"}
    )
    assert failed.status_code == 404
    assert failed.get_json()["error"]["code"] == "model_retired"
    assert "jimeng-3.1" not in ids(client.get("/v1/models"))


def test_per_model_draft_versions_override_the_defaults():
    app = create_app(
        TestingConfig, overrides={"JIMENG_DRAFT_VERSIONS": ("jimeng-5.0=3.3.20",)}
    )
    assert draft_version(app.config, "jimeng-5.0", True) == "3.3.20"
    assert draft_version(app.config, "jimeng-4.7", True) == "3.3.9"
    assert draft_version(app.config, "jimeng-3.0", False) == "3.0.2"
