"""Factory, configuration, CORS, request ids and the error shape of every failure."""

from __future__ import annotations

import importlib.util
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


def fresh_config():
    """Execute config.py anew as a separate module: the environment is read
    again, and the ``config`` module (its classes, ConfigError) stays as it is
    for everyone else (importlib.reload would replace them under other tests)."""
    spec = importlib.util.spec_from_file_location("config_under_test", config.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_env_var_overrides_default(monkeypatch):
    monkeypatch.setenv("POLL_FIRST_DELAY", "2.5")
    monkeypatch.setenv("STORE_URL", " redis://store:6379/0 ")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    fresh = fresh_config()
    assert fresh.Config.POLL_FIRST_DELAY == 2.5
    assert fresh.Config.STORE_URL == "redis://store:6379/0"
    assert fresh.Config.CORS_ORIGINS == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("POLL_FIRST_DELAY", "-1"),
        ("POLL_MIN_INTERVAL", "soon"),
        ("LEASE_TTL", "0"),
        ("JOB_TTL", "5"),
        ("SYNC_WAIT_TIMEOUT", "forever"),
        ("STALL_SECONDS", "0"),
        ("CHAT_PROGRESS_TEXT", "sometimes"),
        ("JIMENG_SITE_ORIGIN", "jimeng.jianying.com"),
        ("ALLOW_OPEN_POOL", "maybe"),
        ("JIMENG_BASE_URL", "ftp://x"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_config_value_fails_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        fresh_config()


def test_overrides_reach_the_app(make_app):
    app = make_app(DEFAULT_MODEL="jimeng-4.0")
    assert app.config["DEFAULT_MODEL"] == "jimeng-4.0"


def test_unit_tests_keep_jobs_in_memory():
    assert TestingConfig.STORE_URL == "memory://"


def test_polls_denser_than_the_slowest_interval_are_refused():
    with pytest.raises(ValueError, match="POLL_FINISHING_INTERVAL"):
        create_app(
            TestingConfig,
            overrides={"POLL_FINISHING_INTERVAL": 10.0, "POLL_MAX_INTERVAL": 5.0},
        )


@pytest.mark.parametrize(
    "url", ["mysql://user:hunter2@db/jobs", "sqlite://relative.db", "memcached"]
)
def test_an_unsupported_store_url_stops_the_start_without_echoing_it(make_app, url):
    with pytest.raises(ValueError, match="STORE_URL") as caught:
        make_app(STORE_URL=url)
    assert "hunter2" not in str(caught.value)


def test_the_default_store_is_a_sqlite_file_in_data_dir(make_app, tmp_path):
    app = make_app(STORE_URL="", DATA_DIR=str(tmp_path / "state"))
    tasks = app.test_client().get("/v1/tasks", headers={"Authorization": "Bearer s"})
    assert tasks.status_code == 200
    assert (tmp_path / "state" / "jimeng.sqlite3").exists()


def test_without_store_secret_a_key_file_is_made_once(make_app, tmp_path):
    data = tmp_path / "keys"
    make_app(STORE_SECRET="", DATA_DIR=str(data))
    key = (data / "store.key").read_text()
    make_app(STORE_SECRET="", DATA_DIR=str(data))
    assert (data / "store.key").read_text() == key
    assert (data / "store.key").stat().st_mode & 0o077 == 0  # owner only


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


def test_cors_lets_pages_send_idempotency_keys_and_read_task_headers(client):
    preflight = client.options(
        "/v1/images/generations",
        headers={
            "Origin": "https://ui.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Idempotency-Key, Prefer",
        },
    )
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "idempotency-key" in allowed and "prefer" in allowed
    assert "DELETE" in preflight.headers["Access-Control-Allow-Methods"]
    response = client.get("/ping", headers={"Origin": "https://ui.example"})
    exposed = response.headers["Access-Control-Expose-Headers"].lower()
    for header in ("x-task-id", "x-jimeng-partial", "location", "x-should-retry"):
        assert header in exposed


def test_cors_origins_are_configurable(make_app):
    client = make_app(CORS_ORIGINS=("https://ok.example",)).test_client()
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


def test_open_pool_is_allowed_when_explicit(make_app):
    assert make_app(JIMENG_SESSION_IDS=("s1",), ALLOW_OPEN_POOL=True)
