"""Static checks of the deploy kit (Dockerfile, deploy/) against config.py."""

from __future__ import annotations

import configparser
import fnmatch
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from config import Config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
IMAGE_PORT = 8000  # the port the image, nginx and Prometheus configs assume


def read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def seconds(value: str | int) -> float:
    """Parse '660', '660s', '11m' or '1m30s' the way compose and systemd do."""
    text = str(value).strip()
    if text.isdigit():
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)", text)
    assert parts and "".join(n + u for n, u in parts) == text.replace(" ", "")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(number) * scale[unit] for number, unit in parts)


def load_yaml(relative: str):
    yaml = pytest.importorskip("yaml")  # comes with responses (dev requirements)
    return yaml.safe_load(read(relative))


def ini(relative: str) -> configparser.ConfigParser:
    # systemd and supervisord files: no interpolation ($MAINPID, %(ENV_X)s)
    parser = configparser.ConfigParser(
        interpolation=None, strict=False, comment_prefixes=("#", ";")
    )
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(read(relative))
    return parser


# --- nginx ------------------------------------------------------------------


def nginx_code() -> str:
    """Return the nginx site without its comments."""
    return re.sub(r"#[^\n]*", "", read("deploy/nginx/jimeng-api.conf"))


def nginx_directives() -> list[list[str]]:
    """Return the directives of the site as word lists."""
    text = nginx_code()
    assert text.count("{") == text.count("}"), "unbalanced braces"
    statements = re.split(r"[;{}]", text)
    return [s.split() for s in statements if s.strip()]


def nginx_values(name: str) -> list[list[str]]:
    return [words[1:] for words in nginx_directives() if words[0] == name]


def test_nginx_streams_unbuffered_and_waits_longer_than_a_generation():
    assert ["off"] in nginx_values("proxy_buffering")
    assert ["off"] in nginx_values("proxy_cache")
    assert ["off"] in nginx_values("gzip")
    assert ["1.1"] in nginx_values("proxy_http_version")
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        values = nginx_values(name)
        assert values, f"{name} missing (nginx's default is 60 s)"
        for (value,) in values:
            assert seconds(value) > Config.GENERATION_TIMEOUT, name


def test_nginx_body_limit_matches_max_content_length():
    ((value,),) = nginx_values("client_max_body_size")
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", value.lower()).groups()
    assert int(number) * units.get(unit, 1) == Config.MAX_CONTENT_LENGTH


def test_nginx_forwards_headers_and_keeps_upstream_connections():
    headers = {v[0].lower(): v[1:] for v in nginx_values("proxy_set_header")}
    assert headers["connection"] == ['""']
    for name in ("host", "x-real-ip", "x-forwarded-for", "x-forwarded-proto"):
        assert name in headers
    assert "x-request-id" in headers
    assert nginx_values("keepalive")
    assert [f"127.0.0.1:{IMAGE_PORT}"] in nginx_values("server")


def test_nginx_never_logs_the_bearer():
    assert not re.search(r"\$http_authorization|\$http_cookie", nginx_code())


# --- systemd, supervisord, pm2 ----------------------------------------------


def test_systemd_unit_stops_gracefully_and_runs_unprivileged():
    service = ini("deploy/systemd/jimeng-api.service")["Service"]
    assert seconds(service["TimeoutStopSec"]) > Config.GUNICORN_GRACEFUL_TIMEOUT
    assert service["KillSignal"] == "SIGTERM"
    assert service["ExecStart"].endswith("/.venv/bin/gunicorn -c gunicorn.conf.py")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["User"] not in {"root", "0"}
    assert service["EnvironmentFile"] == "-/etc/jimeng-api.env"
    assert service["NoNewPrivileges"] == "true"
    assert service["ProtectSystem"] == "strict"


@@SUPERVISOR_PM2@@

# --- env example and prometheus ---------------------------------------------


def test_env_example_names_only_real_settings():
    extra = {"FORWARDED_ALLOW_IPS"}  # read by gunicorn.conf.py
    names = re.findall(
        r"^#?\s*([A-Z][A-Z0-9_]+)=", read("deploy/jimeng-api.env.example"), re.M
    )
    assert names
    unknown = {n for n in names if not hasattr(Config, n)} - extra
    assert not unknown


def test_graceful_timeout_outlasts_a_generation():
    # the stop timeouts above are checked against the graceful timeout
    assert Config.GUNICORN_GRACEFUL_TIMEOUT > Config.GENERATION_TIMEOUT


def test_prometheus_scrapes_metrics_on_the_service_port():
    (job,) = load_yaml("deploy/prometheus/scrape.yml")["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert targets == [f"127.0.0.1:{IMAGE_PORT}"]
