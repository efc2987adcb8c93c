"""Factory, configuration, CORS, request ids and the error shape of every failure."""

from __future__ import annotations

import importlib
import logging

import pytest
from flask import Blueprint

import config
from config import TestingConfig
from jimeng_api import create_app


def assert_openai_error(response, status: int) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    error = response.json["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


def test_ping_answers_pong(client):
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "pong"


def test_playground_page_names_the_endpoints(client):
    response = client.get("/")
    assert response.mimetype == "text/html"
    assert "/v1/images/generations" in response.get_data(as_text=True)


def test_env_var_overrides_default(monkeypatch):
    monkeypatch.setenv("POLL_INTERVAL", "2.5")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    try:
        reloaded = importlib.reload(config)
        assert reloaded.Config.POLL_INTERVAL == 2.5
        assert reloaded.Config.CORS_ORIGINS == (
            "https://a.example",
            "https://b.example",
        )
    finally:
        monkeypatch.undo()
        importlib.reload(config)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("POLL_INTERVAL", "-1"),
        ("ALLOW_OPEN_POOL", "maybe"),
        ("JIMENG_BASE_URL", "ftp://x"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_config_value_fails_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    try:
        with pytest.raises(ValueError, match=name):
            importlib.reload(config)
    finally:
        monkeypatch.undo()
        importlib.reload(config)


def test_overrides_reach_the_app():
    app = create_app(TestingConfig, overrides={"DEFAULT_MODEL": "jimeng-4.0"})
    assert app.config["DEFAULT_MODEL"] == "jimeng-4.0"


def test_unknown_route_is_an_openai_404(client):
    error = assert_openai_error(client.get("/v1/nope"), 404)
    assert error["type"] == "invalid_request_error"
    assert "/v1/images/generations" in error["message"]


def test_wrong_method_is_an_openai_405(client):
    response = client.delete("/ping")
    error = assert_openai_error(response, 405)
    assert error["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_body_too_large_is_an_openai_413(app):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    bp = Blueprint("echo", __name__)

    @bp.post("/echo")
    def echo():
        from flask import request

        return {"n": len(request.get_data())}

    app.register_blueprint(bp)
    response = app.test_client().post("/echo", data=b"x" * 5000)
    error = assert_openai_error(response, 413)
    assert response.headers["x-should-retry"] == "false"
    assert error["code"] == "request_too_large"


def test_unhandled_exception_is_an_openai_500_without_details(app, caplog):
    app.config["TESTING"] = False
    bp = Blueprint("boom", __name__)

    @bp.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    app.register_blueprint(bp)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/boom")
    error = assert_openai_error(response, 500)
    assert "secret internals" not in error["message"]
    assert error["type"] == "server_error"


def test_cors_preflight_allows_post_with_authorization(client):
    response = client.options(
        "/v1/images/generations",
        headers={
            "Origin": "https://ui.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in {
        "*",
        "https://ui.example",
    }
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_cors_origins_are_configurable():
    app = create_app(TestingConfig, overrides={"CORS_ORIGINS": ("https://ok.example",)})
    client = app.test_client()
    ok = client.get("/ping", headers={"Origin": "https://ok.example"})
    other = client.get("/ping", headers={"Origin": "https://evil.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://ok.example"
    assert "Access-Control-Allow-Origin" not in other.headers


def test_request_id_is_echoed(client):
    response = client.get("/ping", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


def test_request_id_is_generated_when_missing_or_unsafe(client):
    generated = client.get("/ping").headers["X-Request-ID"]
    unsafe = client.get("/ping", headers={"X-Request-ID": "a\tb c"}).headers
    assert len(generated) == 32
    assert unsafe["X-Request-ID"] != "a\tb c"


def test_one_log_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger="jimeng_api.access"):
        response = client.get("/ping", headers={"X-Request-ID": "rid-42"})
        response.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "jimeng_api.access"]
    assert len(lines) == 1
    assert lines[0].startswith("GET /ping 200 ") and "rid=rid-42" in lines[0]


def test_pool_without_api_keys_refuses_to_start():
    overrides = {"JIMENG_SESSION_IDS": ("s1",), "API_KEYS": ()}
    with pytest.raises(ValueError, match="API_KEYS"):
        create_app(TestingConfig, overrides=overrides)


def test_open_pool_is_allowed_when_explicit():
    overrides = {"JIMENG_SESSION_IDS": ("s1",), "ALLOW_OPEN_POOL": True}
    assert create_app(TestingConfig, overrides=overrides)
