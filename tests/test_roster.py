"""roster.py: where accounts come from. The Bearer (passthrough), or the pool:
JIMENG_SESSION_IDS plus JIMENG_SESSION_FILE, reread on change or SIGHUP, the
last good list kept when the file cannot be read; API keys in front of it."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from config import TestingConfig
from jimeng_api import create_app
from jimeng_api.auth import _is_api_key
from jimeng_api.errors import AuthenticationError, InvalidRequestError
from jimeng_api.logs import mask
from jimeng_api.roster import parse_bearer, read_session_file
from tests.conftest import services
from tests.factories import KEY, S1, S2, S3, URLS, pooled_app, session_of

CAT = {"prompt": "a cat"}
AUTH = {"Authorization": f"Bearer {KEY}"}


def roster_of(app):
    return services(app)["roster"]


def touch_later(path) -> None:
    """Give *path* an mtime one second ahead (a rewrite within one tick)."""
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))


# --- the Bearer ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "tokens"),
    [
        ("Bearer a", ["a"]),
        ("bearer a, b ,c", ["a", "b", "c"]),
        ("BEARER  a,,b, ", ["a", "b"]),
        ("Bearer a,a,b", ["a", "b"]),  # duplicates once, in order
    ],
)
def test_parse_bearer(header, tokens):
    assert parse_bearer(header, 10) == tokens


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer  ", "Basic a", "Bearer ,,", "Token a"]
)
def test_parse_bearer_refuses_what_names_no_session(header):
    with pytest.raises(AuthenticationError):
        parse_bearer(header, 10)


def test_parse_bearer_caps_the_number_of_sessions():
    with pytest.raises(InvalidRequestError) as caught:
        parse_bearer("Bearer " + ",".join(f"s{i}" for i in range(11)), 10)
    assert caught.value.param == "Authorization"


# --- membership -------------------------------------------------------------------


def test_session_file_skips_comments_blanks_and_junk_without_echoing_it(
    tmp_path, caplog
):
    path = tmp_path / "sessions.txt"
    path.write_text(f"# team accounts\n{S1}\n\n  {S2}  # bob\nnot a;session\n{S1}\n")
    assert read_session_file(str(path)) == [S1, S2, S1]
    assert "line 5 is not a pool entry" in caplog.text
    assert "not a;session" not in caplog.text


def test_env_and_file_sessions_are_merged_without_duplicates(make_app, tmp_path):
    path = tmp_path / "sessions.txt"
    path.write_text(f"{S2}\n{S3}\n")
    app = pooled_app(make_app, (S1, S2), JIMENG_SESSION_FILE=str(path))
    assert roster_of(app).tokens() == [S1, S2, S3]


def test_file_changes_are_picked_up_at_most_every_few_seconds(make_app, tmp_path):
    path = tmp_path / "sessions.txt"
    path.write_text(f"{S1}\n")
    roster = roster_of(pooled_app(make_app, (), JIMENG_SESSION_FILE=str(path)))
    assert roster.tokens() == [S1]

    path.write_text(f"{S2}\n{S3}\n")
    touch_later(path)
    assert roster.tokens() == [S1]  # not stat()ed again yet: cheap on the hot path
    roster.check_interval = 0
    assert roster.tokens() == [S2, S3]


def test_a_changed_file_changes_who_generates(make_app, tmp_path, upstream):
    path = tmp_path / "sessions.txt"
    path.write_text(f"{S1}\n")
    app = pooled_app(make_app, (), JIMENG_SESSION_FILE=str(path))
    roster_of(app).check_interval = 0
    client = app.test_client()
    upstream.generation("h1", URLS)
    assert (
        client.post("/v1/images/generations", json=CAT, headers=AUTH).status_code == 200
    )
    path.write_text(f"# S1 removed\n{S2}\n")
    touch_later(path)
    upstream.generation("h2", URLS)
    assert (
        client.post("/v1/images/generations", json=CAT, headers=AUTH).status_code == 200
    )
    sessions = [session_of(c.request) for c in upstream.calls(upstream.GENERATE)]
    assert sessions == [S1, S2]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP here")
def test_sighup_reloads_the_session_file(make_app, tmp_path):
    path = tmp_path / "sessions.txt"
    path.write_text(f"{S1}\n")
    roster = roster_of(pooled_app(make_app, (), JIMENG_SESSION_FILE=str(path)))
    path.write_text(f"{S3}\n")  # the mtime may not even change within a tick
    os.kill(os.getpid(), signal.SIGHUP)
    assert roster.tokens() == [S3]


def test_an_unreadable_file_keeps_the_last_sessions(make_app, tmp_path, caplog):
    path = tmp_path / "sessions.txt"
    path.write_text(f"{S1}\n")
    app = pooled_app(make_app, (), JIMENG_SESSION_FILE=str(path))
    roster = roster_of(app)
    path.unlink()
    roster.check_interval = 0
    assert roster.tokens() == [S1]
    assert roster.file_ok is False
    assert "could not be read" in caplog.text
    health = app.test_client().get("/health")
    assert "unreadable" in health.get_data(as_text=True)


def test_a_worker_started_while_the_file_is_missing_has_the_last_good_list(
    make_app, tmp_path
):
    """The last good list is kept in the store (sealed) for the next worker."""
    store_url = "sqlite:///" + str(tmp_path / "shared.db")
    path = tmp_path / "sessions.txt"
    path.write_text(f"{S1}\n{S2}\n")
    pooled_app(make_app, (), JIMENG_SESSION_FILE=str(path), STORE_URL=store_url)
    path.unlink()
    later = pooled_app(make_app, (), JIMENG_SESSION_FILE=str(path), STORE_URL=store_url)
    assert roster_of(later).tokens() == [S1, S2]
    assert roster_of(later).file_ok is False


def test_a_missing_file_at_the_first_start_serves_an_empty_pool(
    make_app, tmp_path, upstream
):
    missing = str(tmp_path / "nope.txt")
    app = pooled_app(make_app, (), JIMENG_SESSION_FILE=missing)  # starts anyway
    response = app.test_client().post("/v1/images/generations", json=CAT, headers=AUTH)
    assert response.status_code == 503
    assert "pool is empty" in response.json["error"]["message"]
    assert upstream.calls(upstream.GENERATE) == []


def test_a_session_file_without_api_keys_refuses_to_start(tmp_path):
    path = tmp_path / "sessions.txt"
    path.write_text(f"{S1}\n")
    overrides = {"JIMENG_SESSION_FILE": str(path), "API_KEYS": ()}
    with pytest.raises(ValueError, match="API_KEYS"):
        create_app(TestingConfig, overrides=overrides)


def test_an_empty_pool_answers_503(make_app, tmp_path, upstream):
    path = tmp_path / "sessions.txt"
    path.write_text("# nobody yet\n")
    app = pooled_app(make_app, (), JIMENG_SESSION_FILE=str(path))
    response = app.test_client().post("/v1/images/generations", json=CAT, headers=AUTH)
    assert response.status_code == 503
    assert upstream.calls(upstream.GENERATE) == []


def test_passthrough_mode_has_no_pool(app):
    assert services(app)["roster"] is None
    assert services(app)["accounts"].pooled is False


def test_malformed_entries_are_never_used_nor_shown(make_app, tmp_path, caplog):
    path = tmp_path / "sessions.txt"
    path.write_bytes(b"\xff\xfe not utf-8 secret\n")
    app = pooled_app(make_app, (S1, "bad;cookie=1"), JIMENG_SESSION_FILE=str(path))
    assert roster_of(app).tokens() == [S1]
    assert roster_of(app).file_ok is False
    assert "secret" not in caplog.text
    assert "bad;cookie" not in caplog.text


# --- API keys ---------------------------------------------------------------------


def test_api_keys_are_compared_with_every_key(monkeypatch):
    compared = []

    def compare(a, b):
        compared.append(b)
        return a == b

    monkeypatch.setattr("hmac.compare_digest", compare)
    assert _is_api_key("k1", ("k1", "k2", "k3"))
    assert len(compared) == 3  # no early exit on the first match
    assert not _is_api_key("k4", ("k1", "k2"))
    assert not _is_api_key("ключ", ("k1",))


def test_open_pool_serves_without_a_key(make_app, upstream):
    app = pooled_app(make_app, API_KEYS=(), ALLOW_OPEN_POOL=True)
    upstream.generation("h1", URLS)
    response = app.test_client().post("/v1/images/generations", json=CAT)
    assert response.status_code == 200
    assert session_of(upstream.calls(upstream.GENERATE)[0].request) in (S1, S2)


def test_api_keys_without_a_pool_refuse_to_start():
    """In passthrough mode the key would be forwarded to Jimeng as a cookie."""
    with pytest.raises(ValueError, match="API_KEYS"):
        create_app(TestingConfig, overrides={"API_KEYS": ("sk-1",)})


def test_pooled_tasks_belong_to_the_api_key(make_app, upstream):
    app = pooled_app(make_app, API_KEYS=("sk-alice-000000", "sk-bob-11111111"))
    upstream.generation("h1", URLS)
    client = app.test_client()
    alice = {"Authorization": "Bearer sk-alice-000000"}
    created = client.post("/v1/images/generations", json=CAT, headers=alice)
    task_id = created.headers["X-Task-Id"]
    assert client.get(f"/v1/tasks/{task_id}", headers=alice).status_code == 200
    bob = {"Authorization": "Bearer sk-bob-11111111"}
    assert client.get(f"/v1/tasks/{task_id}", headers=bob).status_code == 404


# --- the real thing: gunicorn + gevent against the simulator -------------------------


@pytest.mark.server
@pytest.mark.skipif(
    not hasattr(signal, "SIGHUP") or not shutil.which("pgrep"), reason="no SIGHUP"
)
def test_pooled_server_end_to_end(sim, tmp_path):
    import subprocess

    import requests

    from tests.servers import api_env, gunicorn_server

    a, b, c = "e2e-pool-aaaaaaaaaaaa", "e2e-pool-bbbbbbbbbbbb", "e2e-pool-cccccccccccc"
    path = tmp_path / "sessions.txt"
    path.write_text(f"# team\n{a}\n{b}\n")
    env = api_env(
        sim,
        JIMENG_SESSION_FILE=str(path),
        API_KEYS=KEY,
        LOG_LEVEL="DEBUG",
        DATA_DIR=str(tmp_path / "data"),
    )
    with gunicorn_server(env) as server:
        url, headers = server.base_url, {"Authorization": f"Bearer {KEY}"}
        generated = requests.post(
            url + "/v1/images/generations", json=CAT, headers=headers, timeout=60
        )
        assert generated.status_code == 200
        raw = {"Authorization": f"Bearer {a}"}
        assert requests.post(url + "/token/points", headers=raw).status_code == 401
        points = requests.post(url + "/token/points", headers=headers).json()
        assert [p["points"]["totalCredit"] > 0 for p in points] == [True, True]

        path.write_text(f"{c}\n")
        workers = subprocess.run(
            ["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        for worker in workers:
            os.kill(int(worker), signal.SIGHUP)
        time.sleep(0.3)
        points = requests.post(url + "/token/points", headers=headers).json()
        assert [p["token"] for p in points] == [mask(c)]
        output = server.output()
    assert "session pool: 1 sessions" in output
    for secret in (a, b, c, KEY):
        assert secret not in output
