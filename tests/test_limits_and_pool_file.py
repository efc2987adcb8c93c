"""Issue 16 points 4, 8 and 13 through the real server: a missing session file
never stops the service, API keys without a pool refuse to start, and rate
limits per address and per account hold across workers (on the store)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from config import ConfigError, TestingConfig
from jimeng_api import create_app
from tests.servers import ROOT, api_env, free_port, gunicorn_server

pytestmark = pytest.mark.server

KEY = "sk-pool-file-key"
POOLED = "poolfilesession0001"


def test_api_keys_without_a_pool_refuse_to_start():
    # matched by name: another test reloads config.py, which makes a new class
    with pytest.raises(Exception, match="API_KEYS is set but there is no pool") as e:
        create_app(TestingConfig, overrides={"API_KEYS": ("sk-x",)})
    assert type(e.value).__name__ == ConfigError.__name__


def test_api_keys_without_a_pool_stop_the_real_server_with_one_clear_line(tmp_path):
    env = {
        **os.environ,
        "API_KEYS": "sk-x",
        "DATA_DIR": str(tmp_path),
        "PORT": str(free_port()),
    }
    env.pop("JIMENG_SESSION_IDS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "API_KEYS is set but there is no pool" in proc.stdout + proc.stderr
    assert "sk-x" not in proc.stdout + proc.stderr


def test_a_missing_session_file_keeps_the_last_good_list(fresh_sim, tmp_path):
    sessions = tmp_path / "sessions.txt"
    sessions.write_text(POOLED + "\n")
    settings = api_env(
        fresh_sim,
        DATA_DIR=str(tmp_path / "data"),
        JIMENG_SESSION_FILE=str(sessions),
        API_KEYS=KEY,
        GUNICORN_WORKERS="2",
    )
    headers = {"Authorization": f"Bearer {KEY}"}
    with gunicorn_server(settings) as server:
        sessions.unlink()
        os.kill(server.proc.pid, signal.SIGHUP)  # every worker restarts
        time.sleep(3)
        assert server.proc.poll() is None, "the master is still up"
        response = requests.post(
            server.base_url + "/v1/images/generations",
            json={"prompt": "still serving", "n": 1},
            headers=headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        health = requests.get(server.base_url + "/health", timeout=10).json()
        metrics = requests.get(server.base_url + "/metrics", timeout=10).text
        output = server.output()
    assert health["status"] == "degraded"
    assert "last good list" in health["checks"]["session_file"]
    assert "jimeng_api_session_file_ok 0.0" in metrics
    assert "could not be read" in output


def test_token_check_is_rate_limited_per_address_across_workers(fresh_sim, tmp_path):
    settings = api_env(
        fresh_sim,
        DATA_DIR=str(tmp_path),
        GUNICORN_WORKERS="2",
        RATE_LIMIT_TOKEN_CHECK="5",
    )
    with gunicorn_server(settings) as server:
        codes = []
        for _ in range(12):
            response = requests.post(
                server.base_url + "/token/check",
                json={"token": "some-session-id"},
                timeout=10,
            )
            codes.append(response.status_code)
        assert codes.count(200) == 5, codes
        assert set(codes[5:]) == {429}
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["error"]["code"] == "rate_limited"
        # another client address behind the trusted proxy has its own budget
        other = requests.post(
            server.base_url + "/token/check",
            json={"token": "some-session-id"},
            headers={"X-Forwarded-For": "203.0.113.9"},
            timeout=10,
        )
        assert other.status_code == 200


def test_one_account_is_rate_limited_whatever_the_address(fresh_sim, tmp_path):
    settings = api_env(fresh_sim, DATA_DIR=str(tmp_path), RATE_LIMIT_PER_ACCOUNT="3")
    with gunicorn_server(settings) as server:
        codes = [
            requests.post(
                server.base_url + "/token/points",
                headers={
                    "Authorization": "Bearer limited-account-01",
                    "X-Forwarded-For": f"198.51.100.{i}",
                },
                timeout=10,
            ).status_code
            for i in range(5)
        ]
    assert codes == [200, 200, 200, 429, 429]
