"""The VPS recipe of the READMEs ("On a VPS (Debian 12)", deploy/README.md).

The code blocks after ``<!-- recipe: vps|tls|check -->`` are parsed: they must
be the same in every README, use only files the repository has, and agree with
the systemd unit, the supervisord program, the pm2 file and nginx's site.

With ``JIMENG_VPS_RECIPE=1`` (as root, with debootstrap; about three minutes)
the recipe runs verbatim, as a sudo user, in a throwaway Debian 12 root made by
debootstrap: the "vps" block (its git clone pointed at a snapshot of this
working tree), then the "check" block. Packages come from Debian and PyPI; the
services then run in a private network namespace, and all of it is thrown away.
tests/vps/ holds the stand-ins for systemctl and journalctl (a chroot has no
systemd): they read the unit and do what systemd does with it.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
READMES = ["README.md", "README.zh-CN.md", "deploy/README.md"]
RECIPES = ["vps", "tls", "check"]


def recipe(readme: str, name: str) -> list[str]:
    """The commands of a recipe block, without their comments."""
    text = (ROOT / readme).read_text(encoding="utf-8")
    marker = f"<!-- recipe: {name} -->"
    assert text.count(marker) == 1, f"{readme}: {marker} missing or repeated"
    block = re.search(r"```sh\n(.*?)```", text[text.index(marker) :], re.S)
    lines = [
        re.sub(r"\s+#\s.*$", "", ln).rstrip() for ln in block.group(1).splitlines()
    ]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def commands(name: str = "vps") -> list[list[str]]:
    """Each simple command of the recipe, split like the shell does."""
    result = []
    for line in recipe("README.md", name):
        for part in re.split(r"\s*(?:&&|\|)\s*", line):
            result.append(shlex.split(part))
    return result


def find(predicate) -> list[str]:
    matches = [c for c in commands() if predicate(c)]
    assert len(matches) == 1, matches
    return matches[0]


def unsudo(command: list[str]) -> list[str]:
    return command[1:] if command[0] == "sudo" else command


def ini(relative: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str
    parser.read_string((ROOT / relative).read_text())
    return parser


# what the recipe sets up
USER = find(lambda c: "useradd" in c)[-1]
CLONE = find(lambda c: "clone" in c)[-1]
ENV_FILE = find(
    lambda c: unsudo(c)[0] == "install" and "deploy/jimeng-api.env.example" in c
)[-1]


@pytest.mark.parametrize("name", RECIPES)
def test_every_readme_has_the_same_recipe(name: str):
    first = recipe(READMES[0], name)
    assert first
    for readme in READMES[1:]:
        assert recipe(readme, name) == first, readme


def test_the_recipe_installs_the_prerequisites_first():
    install = find(lambda c: c[:3] == ["sudo", "apt-get", "install"])
    assert {"git", "make", "python3-venv", "nginx", "curl"} <= set(install)
    steps = commands()
    assert steps[0] == ["sudo", "apt-get", "update"] and steps[1] == install
    tls = [c for line in recipe("README.md", "tls") for c in [shlex.split(line)]]
    assert {"certbot", "python3-certbot-nginx"} <= set(tls[0])


def test_root_only_steps_use_sudo_and_the_rest_does_not_need_it():
    for command in commands():
        writes = any(a.startswith(("/etc/", "/opt/")) for a in command[1:])
        if command[0] in {"cd", "curl"}:
            continue
        if writes or command[0] in {"apt-get", "useradd", "systemctl", "nginx"}:
            assert command[0] in {"sudo", "sudoedit"}, command


def test_every_file_the_recipe_uses_is_in_the_repository():
    used = [a for c in commands() for a in c if re.match(r"(deploy/|requirements)", a)]
    assert used
    for path in used:
        assert (ROOT / path).is_file(), path


def test_the_systemd_unit_expects_what_the_recipe_creates():
    cp = find(lambda c: "deploy/systemd/jimeng-api.service" in c)
    assert cp[-1] == "/etc/systemd/system/"
    enabled = find(lambda c: "enable" in c and "--now" in c)[-1]
    assert f"{enabled}.service" == "jimeng-api.service"
    service = ini("deploy/systemd/jimeng-api.service")["Service"]
    assert service["User"] == service["Group"] == USER
    assert service["WorkingDirectory"] == CLONE
    assert service["ExecStart"].split()[0] == f"{CLONE}/.venv/bin/gunicorn"
    assert find(lambda c: "venv" in c) == ["sudo", "python3", "-m", "venv", ".venv"]
    assert find(lambda c: c[0] == "cd") == ["cd", CLONE]
    assert service["EnvironmentFile"] == f"-{ENV_FILE}"
    install = find(lambda c: c[-1] == ENV_FILE and "install" in c)
    assert install[install.index("-g") + 1] == USER  # the service user may read it
    assert install[install.index("-m") + 1] == "0640"
    text = (ROOT / "deploy/systemd/jimeng-api.service").read_text()
    assert "HOST=127.0.0.1 PORT=8000" in text
    first_check = find(lambda c: c[0] == "curl" and ":8000" in c[-1])
    assert first_check == ["curl", "http://127.0.0.1:8000/ping"]


def test_supervisord_and_pm2_expect_what_the_recipe_creates():
    program = ini("deploy/supervisord/jimeng-api.conf")["program:jimeng-api"]
    assert program["directory"] == CLONE and program["user"] == USER
    command = shlex.split(program["command"])
    assert command[0] == f"{CLONE}/.venv/bin/python" and ENV_FILE in command
    pm2 = (ROOT / "deploy/pm2/ecosystem.config.js").read_text()
    assert f'|| "{CLONE}"' in pm2 and f'|| "{ENV_FILE}"' in pm2


def test_nginx_replaces_the_default_site_and_certbot_uses_its_server_name():
    assert find(lambda c: "rm" in c) == [
        "sudo",
        "rm",
        "-f",
        "/etc/nginx/sites-enabled/default",
    ]
    cp = find(lambda c: "deploy/nginx/jimeng-api.conf" in c)
    link = find(lambda c: "ln" in c)
    assert link[-2] == cp[-1] and link[-1].startswith("/etc/nginx/sites-enabled/")
    assert find(lambda c: c[0] == "sudoedit" and "nginx" in c[-1])[-1] == cp[-1]
    assert find(lambda c: c[-2:] == ["-t"] or c[-1] == "-t") == ["sudo", "nginx", "-t"]
    conf = (ROOT / "deploy/nginx/jimeng-api.conf").read_text()
    (placeholder,) = set(re.findall(r"^\s*server_name\s+([^;\s]+);", conf, re.M))
    certbot = shlex.split(recipe("README.md", "tls")[1])
    assert certbot[certbot.index("-d") + 1] == placeholder
    assert re.search(r"server\s+127\.0\.0\.1:8000", conf)  # what gunicorn binds


# ----------------------------------------------------------------------- for real

RUN = os.environ.get("JIMENG_VPS_RECIPE") == "1"
MIRROR = "http://deb.debian.org/debian"
SUDO_USER = "admin"


def sh(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, text=True, **kw)


def snapshot(dest: Path) -> None:
    """This working tree (tracked and new files) as a git repository to clone."""
    listed = sh(
        "git",
        "ls-files",
        "-co",
        "--exclude-standard",
        "-z",
        cwd=ROOT,
        capture_output=True,
    )
    for rel in filter(None, listed.stdout.split("\0")):
        source = ROOT / rel
        if source.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git = ["git", "-c", "user.name=recipe", "-c", "user.email=recipe@example.invalid"]
    sh(*git, "init", "-q", cwd=dest)
    sh(*git, "add", "-A", cwd=dest)
    sh(*git, "commit", "-q", "-m", "snapshot", cwd=dest)


@pytest.mark.server
@pytest.mark.skipif(
    not RUN, reason="set JIMENG_VPS_RECIPE=1 to run the recipe in a Debian root"
)
def test_the_recipe_works_verbatim_on_a_fresh_debian_12():
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        pytest.skip("needs root and debootstrap (apt-get install debootstrap)")
    work = Path(tempfile.mkdtemp(prefix="jimeng-vps-"))
    root = work / "root"
    try:
        sh(
            "debootstrap",
            "--variant=minbase",
            "--include=sudo,ca-certificates",
            "bookworm",
            str(root),
            MIRROR,
            capture_output=True,
            timeout=900,
        )
        # a sudo user, Debian's "no service starts during apt" hook, the shims
        sh("chroot", str(root), "useradd", "-m", "-s", "/bin/bash", SUDO_USER)
        sudoers = root / f"etc/sudoers.d/{SUDO_USER}"
        sudoers.write_text(f"{SUDO_USER} ALL=(ALL) NOPASSWD:ALL\n")
        sudoers.chmod(0o440)
        shutil.copy2(ROOT / "tests/vps/policy-rc.d", root / "usr/sbin/policy-rc.d")
        for shim in ("systemctl", "journalctl"):
            shutil.copy2(ROOT / f"tests/vps/{shim}", root / f"usr/local/bin/{shim}")
        # this machine's network: its resolver, its name, and the certificates
        # it trusts for PyPI (a VPS has no such proxy; this is not the recipe)
        shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
        with open(root / "etc/hosts", "a") as hosts:
            hosts.write(f"127.0.1.1 {os.uname().nodename}\n")
        shutil.copy2("/etc/ssl/certs/ca-certificates.crt", root / "etc/host-ca.crt")
        (root / "etc/pip.conf").write_text("[global]\ncert = /etc/host-ca.crt\n")
        snapshot(root / "srv/jimeng-api")

        vps = recipe("README.md", "vps")
        clone = next(i for i, ln in enumerate(vps) if " clone " in ln)
        vps[clone] = re.sub(r"https://\S+", "file:///srv/jimeng-api", vps[clone])
        services = next(i for i, ln in enumerate(vps) if "systemctl" in ln)
        install, run = vps[:services], vps[services:] + recipe("README.md", "check")
        prologue = "set -euxo pipefail\ncd ~\nexport SUDO_EDITOR=true EDITOR=true\n"
        (root / "tmp/install.sh").write_text(prologue + "\n".join(install) + "\n")
        (root / "tmp/run.sh").write_text(
            prologue + "cd /opt/jimeng-api\n" + "\n".join(run) + "\n"
        )

        as_user = f"chroot {root} runuser -l {SUDO_USER} -c"
        mounts = (  # /dev/shm as on any Debian system: tmpfs, 1777
            f"mount --bind /dev {root}/dev && mount -t proc proc {root}/proc"
            f" && mount -t tmpfs -o mode=1777 tmpfs {root}/dev/shm"
        )
        phase1 = subprocess.run(
            [
                "unshare",
                "--mount",
                "--",
                "sh",
                "-c",
                f"{mounts} && {as_user} 'bash /tmp/install.sh'",
            ],
            capture_output=True,
            text=True,
            timeout=1500,
        )
        assert phase1.returncode == 0, phase1.stdout[-4000:] + phase1.stderr[-4000:]
        # the services: in their own network and pid namespaces, gone when it ends
        phase2 = subprocess.run(
            [
                "unshare",
                "--mount",
                "--net",
                "--pid",
                "--fork",
                "--",
                "sh",
                "-c",
                f"ip link set lo up && {mounts} && {as_user} 'bash /tmp/run.sh'",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = phase2.stdout + phase2.stderr
        logs = "".join(
            f"\n--- {p.name}\n" + p.read_text(errors="replace")[-3000:]
            for p in sorted((root / "var/log/shim").glob("*.log"))
        )
        assert phase2.returncode == 0, output[-6000:] + logs
        assert output.count("pong") >= 3, output[-4000:]  # gunicorn, nginx, check
        assert "active (running)" in output and '"jimeng-' in output
        assert "Serving on http://127.0.0.1:8000" in output
        env_file = root / "etc/jimeng-api.env"
        assert oct(env_file.stat().st_mode & 0o777) == "0o640"
        assert not (root / "etc/nginx/sites-enabled/default").exists()
        assert (root / "var/lib/jimeng-api").is_dir()
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], timeout=300)
