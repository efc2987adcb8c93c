"""The deploy kit (deploy/): checked against config.py, and run where it can be.

The Dockerfile and compose files: tests/test_docker_image.py. The VPS recipe of
the READMEs: tests/test_vps_recipe.py. supervisord and pm2 are started for real
when installed (pip install supervisor; npm install -g pm2, or PM2=path/to/pm2).
"""

from __future__ import annotations

import configparser
import functools
import http.server
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from config import Config
from tests.servers import api_env, free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
IMAGE_PORT = 8000  # the port the image, nginx and Prometheus configs assume
# the longest a request waits (the job goes on after it; older configs: the
# whole generation)
REQUEST_LIMIT = getattr(Config, "SYNC_WAIT_TIMEOUT", Config.GENERATION_TIMEOUT)


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
            assert seconds(value) > REQUEST_LIMIT, name


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


def test_supervisord_program_execs_gunicorn_with_the_env_file():
    program = ini("deploy/supervisord/jimeng-api.conf")["program:jimeng-api"]
    assert int(program["stopwaitsecs"]) > Config.GUNICORN_GRACEFUL_TIMEOUT
    assert program["stopsignal"] == "TERM"
    assert program["killasgroup"] == program["stopasgroup"] == "true"
    assert program["directory"] == "/opt/jimeng-api"
    command = shlex.split(program["command"])  # as supervisord splits it
    assert command[:2] == [
        "/opt/jimeng-api/.venv/bin/python",
        "/opt/jimeng-api/deploy/envexec.py",
    ]
    assert "--graceful-int" not in command  # exec: gunicorn is the process signalled
    dash = command.index("--")
    assert command[dash - 1] == "/etc/jimeng-api.env"
    assert command[dash + 1 :] == [
        "/opt/jimeng-api/.venv/bin/gunicorn",
        "-c",
        "gunicorn.conf.py",
    ]
    assert "sh" not in command[0] and "DATA_DIR" in program["environment"]


def test_pm2_app_waits_for_gunicorn_and_signals_only_the_wrapper():
    text = read("deploy/pm2/ecosystem.config.js")
    (kill_timeout,) = re.findall(r"kill_timeout:\s*(\d+)", text)
    assert int(kill_timeout) / 1000 > Config.GUNICORN_GRACEFUL_TIMEOUT
    assert re.search(r'interpreter:\s*"none"', text)
    assert re.search(r"treekill:\s*false", text)
    assert not re.search(r"^\s*time:\s*true", text, re.M)  # gunicorn stamps its lines


@pytest.mark.skipif(not shutil.which("node"), reason="no node")
def test_pm2_config_loads_in_node_and_runs_gunicorn_through_envexec():
    script = (
        "const c = require(process.argv[1]); console.log(JSON.stringify(c.apps[0]))"
    )
    result = subprocess.run(
        ["node", "-e", script, str(DEPLOY / "pm2/ecosystem.config.js")],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"]},
    )
    assert result.returncode == 0, result.stderr
    app = json.loads(result.stdout)
    assert app["script"] == "/opt/jimeng-api/.venv/bin/python"
    assert app["args"] == [
        "/opt/jimeng-api/deploy/envexec.py",
        "--optional",
        "--graceful-int",
        "/etc/jimeng-api.env",
        "--",
        "/opt/jimeng-api/.venv/bin/gunicorn",
        "-c",
        "gunicorn.conf.py",
    ]
    assert app["cwd"] == "/opt/jimeng-api"
    assert result.stderr == ""  # no warning about PM2_KILL_SIGNAL any more


def test_systemd_unit_keeps_the_job_store_in_its_state_directory():
    service = ini("deploy/systemd/jimeng-api.service")["Service"]
    environment = " ".join(
        line.split("=", 1)[1]
        for line in read("deploy/systemd/jimeng-api.service").splitlines()
        if line.startswith("Environment=")
    )
    assert "DATA_DIR=/var/lib/" + service["StateDirectory"] in environment.split()
    # everything else is read-only: the unit must name every place it writes
    assert service["ProtectSystem"] == "strict"
    assert "PROMETHEUS_MULTIPROC_DIR=/run/jimeng-api/metrics" in environment.split()
    assert "jimeng-api/metrics" in service["RuntimeDirectory"].split()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_systemd_accepts_the_unit():
    result = subprocess.run(
        ["systemd-analyze", "verify", str(DEPLOY / "systemd/jimeng-api.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # the install in /opt/jimeng-api is not on this machine; nothing else may fail
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip()
        and not re.search(r"Command /opt/jimeng-api/\S+ is not executable", line)
    ]
    assert complaints == []


def test_systemd_start_returns_only_once_the_service_answers():
    """READY=1 comes before the workers bind (reuse_port): ExecStartPost waits."""
    service = ini("deploy/systemd/jimeng-api.service")["Service"]
    assert service["Type"] == "notify"
    post = shlex.split(service["ExecStartPost"])
    assert post[0] == "/opt/jimeng-api/.venv/bin/python"
    assert (ROOT / post[1].removeprefix("/opt/jimeng-api/")).is_file()
    assert float(post[2]) < seconds(service["TimeoutStartSec"])


def test_wait_ready_waits_for_ping_and_gives_up(tmp_path):
    port = free_port()
    script = [sys.executable, str(DEPLOY / "wait-ready.py")]
    env = {"PATH": os.environ["PATH"], "HOST": "0.0.0.0", "PORT": str(port)}
    assert subprocess.run([*script, "1"], env=env, timeout=30).returncode == 1
    handler = functools.partial(_Pong)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    timer = threading.Timer(1.0, server.serve_forever)  # answers late, like workers
    timer.start()
    try:
        started = time.monotonic()
        assert subprocess.run([*script, "20"], env=env, timeout=30).returncode == 0
        assert 0.9 < time.monotonic() - started < 15
    finally:
        timer.cancel()
        server.shutdown()
        server.server_close()


class _Pong(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ping" else 404)
        self.end_headers()
        self.wfile.write(b"pong")

    def log_message(self, format: str, *args: object) -> None:
        pass


# --- envexec.py: the env file, read safely ------------------------------------

ENVEXEC = DEPLOY / "envexec.py"
TRICKY = {
    # a browser's User-Agent: parentheses and semicolons broke `. envfile`
    "JIMENG_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36",
    "JIMENG_SEC_CH_UA": '"Not A(Brand";v="8", "Chromium";v="132"',
    "METRICS_TOKEN": "tok-$HOME;`id`,$(id)",
    "CORS_ORIGINS": "https://a.example, https://b.example",
    "EMPTY": "",
    "ESCAPED": 'a "b" c\\d $x',
    "JOINED": "ab cd",
}
TRICKY_FILE = "\n".join(
    [
        "# written as systemd's EnvironmentFile= wants it",
        "; a comment too",
        "JIMENG_USER_AGENT=Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36",
        """JIMENG_SEC_CH_UA='"Not A(Brand";v="8", "Chromium";v="132"'""",
        "  METRICS_TOKEN = tok-$HOME;`id`,$(id)",
        "CORS_ORIGINS=https://a.example, https://b.example   ",  # blanks dropped
        "",
        "EMPTY=",
        r'ESCAPED="a \"b\" c\\d \$x"',
        'JOINED=a"b c"d',
        "",
    ]
)
PRINT_ENV = [
    sys.executable,
    "-c",
    "import json, os; print(json.dumps(dict(os.environ)))",
]


def envexec(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ENVEXEC), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], **(env or {})},
        **kw,
    )


def test_envexec_reads_values_the_shell_would_choke_on(tmp_path):
    env_file = tmp_path / "jimeng-api.env"
    env_file.write_text(TRICKY_FILE)
    sourced = subprocess.run(
        ["sh", "-c", f'set -a; . "{env_file}"'], capture_output=True, timeout=30
    )
    assert sourced.returncode != 0  # what the old supervisord program did

    result = envexec(str(env_file), "--", *PRINT_ENV, env={"HOST": "0.0.0.0"})

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert {k: seen.get(k) for k in TRICKY} == TRICKY
    assert seen["HOST"] == "0.0.0.0"  # the rest of the environment stays


def test_envexec_refuses_a_broken_file_without_showing_its_secrets(tmp_path):
    env_file = tmp_path / "bad.env"
    env_file.write_text("API_KEYS=sk-fine\nsk-secret-value-without-a-key\n")
    result = envexec(str(env_file), "--", *PRINT_ENV)
    assert result.returncode == 2
    assert "line 2" in result.stderr and "sk-secret" not in result.stderr
    assert envexec(str(tmp_path / "missing.env"), "--", *PRINT_ENV).returncode == 2
    optional = envexec("--optional", str(tmp_path / "missing.env"), "--", *PRINT_ENV)
    assert optional.returncode == 0, optional.stderr


def test_envexec_turns_sigint_into_sigterm_and_passes_other_signals(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(
        "import signal, sys, time\n"
        "def note(n, f):\n"
        "    print(signal.Signals(n).name, flush=True)\n"
        "    if n == signal.SIGTERM: sys.exit(7)\n"
        "for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):\n"
        "    signal.signal(s, note)\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.1)\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ENVEXEC),
            "--optional",
            "--graceful-int",
            str(tmp_path / "none.env"),
            "--",
            sys.executable,
            str(script),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGHUP)
        assert proc.stdout.readline().strip() == "SIGHUP"
        proc.send_signal(signal.SIGINT)  # what pm2 sends
        assert proc.stdout.readline().strip() == "SIGTERM"
        assert proc.wait(timeout=30) == 7  # the child's exit status
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


# --- supervisord and pm2, for real --------------------------------------------


@pytest.fixture(scope="module")
def slow_simulator() -> Iterator[str]:
    from simulator import start_simulator_process, stop_simulator_process

    proc, base_url = start_simulator_process(
        ["--task-seconds", "3", "--task-jitter", "0"]
    )
    try:
        yield base_url
    finally:
        stop_simulator_process(proc)


def service_env_file(tmp_path: Path, simulator: str) -> tuple[Path, str]:
    """An env file for a service on a free port, with TRICKY_FILE's values."""
    port = free_port()
    settings = {
        **api_env(SimpleNamespace(base_url=simulator)),  # the suite's fast polling
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "GUNICORN_WORKERS": "1",
        "IMAGE_FETCH_ALLOWED_HOSTS": "127.0.0.1",
        "DATA_DIR": str(tmp_path / "data"),
    }
    lines = [f"{k}={v}" for k, v in settings.items()]
    path = tmp_path / "jimeng-api.env"
    path.write_text("\n".join(lines) + "\n" + TRICKY_FILE)
    return path, f"http://127.0.0.1:{port}"


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {timeout} s")


def submissions(simulator: str) -> int:
    return requests.get(simulator + "/__sim/stats?tasks=0", timeout=10).json()[
        "submissions"
    ]


def assert_stop_lets_a_generation_finish(base_url, simulator, stop) -> None:
    """Start a 3-second generation, stop the service meanwhile: it must finish."""
    before = submissions(simulator)
    result: dict = {}

    def generate() -> None:
        result["response"] = requests.post(
            base_url + "/v1/images/generations",
            headers={"Authorization": "Bearer deploy-test-session"},
            json={"model": "jimeng-4.0", "prompt": "in flight", "n": 2},
            timeout=120,
        )

    thread = threading.Thread(target=generate)
    thread.start()
    deadline = time.monotonic() + 30
    while submissions(simulator) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert submissions(simulator) > before, "the generation never reached Jimeng"
    stop()
    thread.join(timeout=120)
    response = result["response"]
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 2
    with pytest.raises(requests.ConnectionError):
        requests.get(base_url + "/ping", timeout=5)  # and it did stop


def supervisord_binary() -> str | None:
    found = shutil.which("supervisord") or str(
        Path(sys.executable).parent / "supervisord"
    )
    return found if os.access(found, os.X_OK) else None


@pytest.mark.server
@pytest.mark.skipif(not supervisord_binary(), reason="supervisor is not installed")
def test_supervisord_starts_with_the_env_file_and_stops_gracefully(
    tmp_path, slow_simulator
):
    env_file, base_url = service_env_file(tmp_path, slow_simulator)
    program = read("deploy/supervisord/jimeng-api.conf")
    program = program.replace("/opt/jimeng-api", str(ROOT))
    program = program.replace("/etc/jimeng-api.env", str(env_file))
    program = program.replace("/var/log/supervisor", str(tmp_path))
    program = re.sub(r"^user=.*$", "", program, flags=re.M)  # we are not root-dropping
    sock = tmp_path / "supervisor.sock"
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"[unix_http_server]\nfile={sock}\n"
        f"[supervisord]\nlogfile={tmp_path}/supervisord.log\n"
        f"pidfile={tmp_path}/supervisord.pid\nchildlogdir={tmp_path}\n"
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = "
        "supervisor.rpcinterface:make_main_rpcinterface\n"
        f"[supervisorctl]\nserverurl=unix://{sock}\n" + program
    )
    ctl = [str(Path(supervisord_binary()).parent / "supervisorctl"), "-c", str(conf)]
    subprocess.run([supervisord_binary(), "-c", str(conf)], check=True, timeout=60)
    try:
        wait_for(base_url + "/ping")
        deadline = time.monotonic() + 30  # RUNNING after startsecs
        while time.monotonic() < deadline:
            status = subprocess.run(
                [*ctl, "status", "jimeng-api"], capture_output=True, text=True
            )
            if "RUNNING" in status.stdout:
                break
            time.sleep(0.5)
        assert "RUNNING" in status.stdout, status.stdout

        def stop() -> None:
            subprocess.run([*ctl, "stop", "jimeng-api"], check=True, timeout=700)

        assert_stop_lets_a_generation_finish(base_url, slow_simulator, stop)
    finally:
        subprocess.run([*ctl, "shutdown"], capture_output=True, timeout=60)
    errors = (tmp_path / "jimeng-api.error.log").read_text()
    assert "Handling signal: term" in errors  # gunicorn's graceful stop, not INT/QUIT


def pm2_binary() -> str | None:
    return os.environ.get("PM2") or shutil.which("pm2")


@pytest.mark.server
@pytest.mark.skipif(
    not pm2_binary(), reason="pm2 is not installed (npm install -g pm2)"
)
def test_pm2_starts_with_the_env_file_and_stops_gracefully(tmp_path, slow_simulator):
    env_file, base_url = service_env_file(tmp_path, slow_simulator)
    home = tmp_path / "pm2"
    env = {
        **os.environ,
        "PM2_HOME": str(home),
        "JIMENG_API_DIR": str(ROOT),
        "JIMENG_API_ENV_FILE": str(env_file),
    }
    env.pop("PM2_KILL_SIGNAL", None)  # the point: no daemon setting is needed

    def pm2(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [pm2_binary(), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    started = pm2("start", str(DEPLOY / "pm2/ecosystem.config.js"))
    try:
        assert started.returncode == 0, started.stderr
        wait_for(base_url + "/ping")
        (app,) = json.loads(pm2("jlist").stdout)
        # the log files the READMEs name
        assert app["pm2_env"]["pm_out_log_path"] == str(
            home / "logs/jimeng-api-out.log"
        )
        assert app["pm2_env"]["pm_err_log_path"] == str(
            home / "logs/jimeng-api-error.log"
        )

        def stop() -> None:
            result = pm2("stop", "jimeng-api", timeout=700)
            assert result.returncode == 0, result.stderr

        assert_stop_lets_a_generation_finish(base_url, slow_simulator, stop)
        errors = (home / "logs/jimeng-api-error.log").read_text()
        assert (
            "Handling signal: term" in errors and "Handling signal: int" not in errors
        )
        # one timestamp per line: gunicorn's own, no pm2 prefix before it
        access = (home / "logs/jimeng-api-out.log").read_text().splitlines()
        line = next(ln for ln in access if "/v1/images/generations" in ln)
        assert line.startswith("["), line
    finally:
        pm2("kill")


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
    assert Config.GUNICORN_GRACEFUL_TIMEOUT > REQUEST_LIMIT


def test_prometheus_scrapes_metrics_on_the_service_port():
    (job,) = load_yaml("deploy/prometheus/scrape.yml")["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert targets == [f"127.0.0.1:{IMAGE_PORT}"]


# --- dependencies: the hashed locks and pip-audit ---------------------------
# requirements.in / requirements-dev.in: the hand-edited top-level pins;
# requirements.txt / requirements-dev.txt: the locks `make lock` makes of them.


@dataclass(frozen=True)
class Pin:
    name: str  # canonical
    version: str
    marker: str
    hashes: frozenset[str]

    def applies(self) -> bool:
        """Whether pip installs it here (this Python, this platform)."""
        return not self.marker or Marker(self.marker).evaluate({"extra": ""})


def requirement_lines(relative: str) -> list[str]:
    """The file's requirements, continuations joined, comments and options dropped."""
    lines = []
    for raw in read(relative).replace("\\\n", " ").splitlines():
        line = re.sub(r"(^|\s)#.*", "", raw).strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


def top_level(relative: str) -> dict[str, str]:
    """An .in file's pins, its `-r` files' too: canonical name -> version (`==`)."""
    pins = {}
    for included in re.findall(r"^-r\s+(\S+)", read(relative), re.M):
        pins.update(top_level(included))
    for line in requirement_lines(relative):
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{relative}: {line} is not pinned with =="
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def lock(relative: str) -> dict[str, Pin]:
    pins = {}
    for line in requirement_lines(relative):
        spec, *_ = line.split(" --hash=")
        requirement = Requirement(spec)
        (version,) = requirement.specifier
        hashes = frozenset(re.findall(r"--hash=(\S+)", line))
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{relative}: {name} twice"
        marker = str(requirement.marker) if requirement.marker else ""
        pins[name] = Pin(name, f"{version.operator}{version.version}", marker, hashes)
    return pins


def dependency_closure(top: dict[str, str]) -> set[str]:
    """Every distribution the top-level pins pull in here, from the installed
    metadata (markers evaluated, extras followed)."""
    seen: set[str] = set()
    done: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(n, frozenset()) for n in top]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        seen.add(name)
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(f"{name} is not installed here: make .venv/.dev")
        for text in requires:
            dep = Requirement(text)
            wanted = extras or {""}
            if dep.marker and not any(
                dep.marker.evaluate({"extra": e}) for e in wanted
            ):
                continue
            todo.append((canonicalize_name(dep.name), frozenset(dep.extras)))
    return seen


LOCKS = {
    "requirements.txt": "requirements.in",
    "requirements-dev.txt": "requirements-dev.in",
}


@pytest.mark.parametrize("relative", LOCKS)
def test_every_locked_package_is_pinned_and_hashed(relative: str):
    pins = lock(relative)
    assert pins
    for pin in pins.values():
        assert pin.version.startswith("=="), pin
        assert pin.hashes, f"{relative}: {pin.name} has no --hash"
        for digest in pin.hashes:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), (pin.name, digest)
    # generated, not edited: `make lock` says how it was made
    assert "make lock" in read(relative).split("\n", 3)[1]


@pytest.mark.parametrize("relative", LOCKS)
def test_the_lock_holds_the_top_level_pins_and_exactly_what_they_need(relative: str):
    top = top_level(LOCKS[relative])
    pins = lock(relative)
    for name, version in top.items():
        assert name in pins, f"{relative} lacks {name}: make lock"
        assert pins[name].version == f"=={version}", f"{name}: make lock"
    # nothing missing, nothing extra: what the installed metadata says they need
    needed = dependency_closure(top)
    assert {n for n, p in pins.items() if p.applies()} == needed


def test_the_dev_lock_installs_the_runtime_set_unchanged():
    """pip installs one lock at a time (hash-checking mode), so the dev lock holds
    the runtime packages too: at the same versions, markers and hashes."""
    runtime, dev = lock("requirements.txt"), lock("requirements-dev.txt")
    assert set(runtime) <= set(dev)
    for name, pin in runtime.items():
        assert dev[name] == pin, name
    assert "-r requirements.in" in read("requirements-dev.in")
    assert "-c requirements.txt" in read("requirements-dev.in")


def make_dry_run(*args: str) -> str:
    """The commands `make -n` would run (nothing is run)."""
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_installer_checks_the_hashes():
    makefile = read("Makefile")
    for target, lockfile in (
        ("$(VENV)/.runtime", "requirements.txt"),
        ("$(VENV)/.dev", "requirements-dev.txt"),
    ):
        recipe = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        assert f"pip install --quiet --require-hashes -r {lockfile}" in recipe, target
    assert "pip install" not in read(".ci/run")  # CI installs with `make test`
    (docker,) = [ln for ln in read("Dockerfile").splitlines() if "pip install" in ln]
    assert "--require-hashes -r requirements.txt" in docker


def test_make_lint_runs_pip_audit_and_says_when_it_is_skipped():
    audit = make_dry_run("lint")
    (line,) = [ln for ln in audit.splitlines() if "pip-audit" in ln]
    words = shlex.split(line.split("||")[0])
    assert words[0].endswith("/pip-audit")
    assert {"--strict", "--disable-pip", "--require-hashes"} <= set(words)
    assert "-r requirements.txt" in line and "-r requirements-dev.txt" in line
    assert "AUDIT=0" in line  # the failure message says how to skip it offline
    skipped = make_dry_run("lint", "AUDIT=0")
    assert "/pip-audit " not in skipped and "pip-audit skipped" in skipped
    assert "pip-audit" in top_level("requirements-dev.in")
    # `make test` stays offline: no audit there
    assert "pip-audit" not in make_dry_run("test").replace("pip-audit==", "")


def test_make_lock_regenerates_both_locks_with_hashes():
    commands = make_dry_run("lock")
    for source, target in (
        ("requirements.in", "requirements.txt"),
        ("requirements-dev.in", "requirements-dev.txt"),
    ):
        assert f"{source} -o {target}" in commands
    assert "--generate-hashes" in commands and "--universal" in commands
    assert commands.index("requirements.in -o") < commands.index("requirements-dev.in")
