"""The real server: gunicorn -c gunicorn.conf.py with gevent workers, over HTTP."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.servers import ROOT, free_port, gunicorn_server

pytestmark = pytest.mark.server


def test_gunicorn_gevent_serves_ping_and_errors(tmp_path):
    with gunicorn_server({"DATA_DIR": str(tmp_path)}) as server:
        base_url = server.base_url
        ping = requests.get(base_url + "/ping", timeout=5)
        missing = requests.get(base_url + "/v1/nope", timeout=5)
        wrong = requests.delete(base_url + "/ping", timeout=5)
    assert ping.status_code == 200 and ping.text == "pong"
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert wrong.status_code == 405


def test_redis_without_a_store_secret_stops_gunicorn(tmp_path):
    env = {
        "PORT": str(free_port()),
        "STORE_URL": "redis://127.0.0.1:1/0",
        "STORE_SECRET": "",
        "DATA_DIR": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "STORE_SECRET" in proc.stdout + proc.stderr


def test_gunicorn_with_explicit_app_argument(tmp_path):
    with gunicorn_server({"DATA_DIR": str(tmp_path)}, args=("app:app",)) as server:
        assert requests.get(server.base_url + "/ping", timeout=5).text == "pong"


def test_bad_config_stops_gunicorn_with_a_clear_message():
    env = {"PORT": str(free_port()), "POLL_FIRST_DELAY": "soon"}
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "POLL_FIRST_DELAY" in proc.stdout + proc.stderr
