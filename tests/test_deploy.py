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


# --- Dockerfile -------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", read("Dockerfile"))
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def instruction(name: str) -> list[str]:
    return [rest for keyword, rest in dockerfile_instructions() if keyword == name]


def test_dockerfile_uses_slim_python_and_runs_gunicorn():
    assert instruction("FROM") == ["python:3.11-slim"]
    assert json.loads(instruction("CMD")[-1]) == ["gunicorn", "-c", "gunicorn.conf.py"]
    assert instruction("EXPOSE") == [str(IMAGE_PORT)]
    assert instruction("STOPSIGNAL") == ["SIGTERM"]


def test_dockerfile_runs_as_non_root():
    users = instruction("USER")
    assert users, "the image must not run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_healthcheck_probes_ping_with_valid_python():
    (check,) = instruction("HEALTHCHECK")
    assert "/ping" in check
    command = json.loads(check[check.index("CMD") + 3 :])
    assert command[:2] == ["python", "-c"]
    compile(command[2], "HEALTHCHECK", "exec")


def test_dockerfile_installs_requirements_before_copying_the_code():
    steps = [k + " " + r for k, r in dockerfile_instructions() if k in {"COPY", "RUN"}]
    install = next(i for i, s in enumerate(steps) if "pip install" in s)
    assert steps[0].startswith("COPY requirements.txt")
    assert "--no-cache-dir -r requirements.txt" in steps[install]
    assert all("app.py" not in s for s in steps[:install])


def dockerignore_patterns() -> list[str]:
    lines = read(".dockerignore").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def test_every_file_the_dockerfile_copies_exists_and_is_in_the_context():
    sources = []
    for args in instruction("COPY"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        sources += words[:-1]
    assert {"requirements.txt", "app.py", "config.py", "gunicorn.conf.py"} <= {
        s.rstrip("/") for s in sources
    }
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
        top = source.rstrip("/").split("/")[0]
        ignored = [p for p in dockerignore_patterns() if fnmatch.fnmatch(top, p)]
        assert not ignored, f"COPY {source} is excluded by .dockerignore {ignored}"


def test_dockerignore_keeps_secrets_and_dev_files_out():
    patterns = set(dockerignore_patterns())
    assert {".git", ".venv", "tests", ".env", "*.env"} <= patterns


# --- docker compose ---------------------------------------------------------


def test_compose_service_builds_the_repo_with_a_healthcheck():
    compose = load_yaml("deploy/docker-compose.yml")
    (service,) = compose["services"].values()
    assert service["build"]["context"] == ".."
    assert (DEPLOY / service["build"]["context"] / "Dockerfile").is_file()
    assert service["restart"] == "unless-stopped"
    assert any(str(p).endswith(f":{IMAGE_PORT}") for p in service["ports"])
    probe = service["healthcheck"]["test"]
    assert probe[:3] == ["CMD", "python", "-c"] and "/ping" in probe[3]
    compile(probe[3], "healthcheck", "exec")


def test_compose_waits_for_in_flight_generations_on_stop():
    # a regex, not YAML, so that this holds even without PyYAML
    text = read("deploy/docker-compose.yml")
    (grace,) = re.findall(r"^\s+stop_grace_period:\s*(\S+)", text, re.M)
    assert seconds(grace) > Config.GUNICORN_GRACEFUL_TIMEOUT
    assert re.search(r"^\s+stop_signal:\s*SIGTERM\s*$", text, re.M)


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


def test_supervisord_program_stops_gracefully():
    program = ini("deploy/supervisord/jimeng-api.conf")["program:jimeng-api"]
    assert int(program["stopwaitsecs"]) > Config.GUNICORN_GRACEFUL_TIMEOUT
    assert program["stopsignal"] == "TERM"
    assert program["killasgroup"] == program["stopasgroup"] == "true"
    assert "gunicorn -c gunicorn.conf.py" in program["command"]
    assert program["directory"] == "/opt/jimeng-api"


def test_pm2_app_waits_for_gunicorn_and_signals_only_the_master():
    text = read("deploy/pm2/ecosystem.config.js")
    (kill_timeout,) = re.findall(r"kill_timeout:\s*(\d+)", text)
    assert int(kill_timeout) / 1000 > Config.GUNICORN_GRACEFUL_TIMEOUT
    assert re.search(r'interpreter:\s*"none"', text)
    assert re.search(r"treekill:\s*false", text)
    assert "PM2_KILL_SIGNAL=SIGTERM" in text


@pytest.mark.skipif(not shutil.which("node"), reason="no node")
def test_pm2_config_loads_in_node():
    script = (
        "const c = require(process.argv[1]); console.log(JSON.stringify(c.apps[0]))"
    )
    result = subprocess.run(
        ["node", "-e", script, str(DEPLOY / "pm2/ecosystem.config.js")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    app = json.loads(result.stdout)
    assert app["args"] == ["-c", "gunicorn.conf.py"]
    assert app["script"].endswith("/.venv/bin/gunicorn")


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
