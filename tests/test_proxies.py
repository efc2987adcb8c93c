"""A proxy per account (``http://[user:pass@]host:port@<token>``, ``socks5://…``):
every call of the account goes through it, ``UPSTREAM_PROXY`` is the default, a
dead proxy is "unreachable" (cooldown and failover), never "expired", and no
proxy credential reaches a log. The proxies are real, on 127.0.0.1, started by
the tests, and count what they relay."""

from __future__ import annotations

import base64
import logging
import re
import select
import socket
import socketserver
import struct
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import openai
import pytest
import requests

from config import TestingConfig
from jimeng_api.errors import AuthenticationError, SessionExpiredError
from jimeng_api.roster import parse_bearer
from jimeng_api.upstream import JimengClient, ProxyUnreachableError, account_id
from jimeng_api.upstream.failures import AlreadyClaimedError
from jimeng_api.upstream.transport import PROXY_RETRIES
from simulator import SimSettings, run_simulator_in_thread
from tests.conftest import wait_for
from tests.factories import bearer, draft
from tests.servers import Simulator, api_env, free_port, gunicorn_server

SID = "feedface0123456789abcdef01234567"
USER, PASSWORD = "proxyuser", "Pr0xyS3cret"
V45 = "high_aes_general_v40l"
#: urllib3 sends each request's head in one write: a relayed chunk that starts
#: with a request line is one request
REQUEST_LINE = re.compile(rb"(?:POST|GET) /\S* HTTP/1\.1\r\n")


def settings(**changes) -> dict:
    base = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
    return {**base, **changes}


# --- two tiny proxies -------------------------------------------------------------


def _pipe(a: socket.socket, b: socket.socket, seen: list[bytes]) -> None:
    """Relay bytes both ways until one side closes; keep what a -> b carried."""
    sockets = [a, b]
    try:
        while True:
            readable, _, _ = select.select(sockets, [], [], 10)
            if not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)
                if sock is a:
                    seen.append(data)
    except OSError:
        return


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class LocalProxy:
    """A proxy on 127.0.0.1 in a thread; ``connections`` counts the client
    connections it accepted, ``requests`` the HTTP requests it relayed."""

    kind = ""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.connections = 0
        self.relayed: list[bytes] = []
        self.targets: list[tuple[str, int, str]] = []  # host, port, how named
        self.refused = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with proxy.lock:
                    proxy.connections += 1
                proxy.serve(self.request)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self) -> int:
        return sum(1 for chunk in self.relayed if REQUEST_LINE.match(chunk))

    def url(self, scheme: str | None = None, auth: bool = True) -> str:
        userinfo = f"{USER}:{PASSWORD}@" if self.credentials and auth else ""
        return f"{scheme or self.kind}://{userinfo}127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve(self, client: socket.socket) -> None:
        raise NotImplementedError


class HTTPProxy(LocalProxy):
    """Forward proxy for http:// targets (absolute-form requests, one request
    per connection) and CONNECT tunnels for https://; Basic auth if set."""

    kind = "http"

    def serve(self, client: socket.socket) -> None:
        head, rest = _read_head(client)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        if self.credentials:
            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            if headers.get("Proxy-Authorization") != f"Basic {token}":
                with self.lock:
                    self.refused += 1
                client.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                return
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)), timeout=10)
            self.targets.append((host, int(port), "connect"))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with upstream:
                _pipe(client, upstream, self.relayed)
            return
        hostport, _, path = target.split("://", 1)[1].partition("/")
        host, port = hostport.rsplit(":", 1)
        self.targets.append((host, int(port), "forward"))
        kept = [
            line
            for line in lines[1:]
            if not line.lower().startswith(("proxy-", "connection:"))
        ]
        request = "\r\n".join(
            [f"{method} /{path} HTTP/1.1", *kept, "Connection: close"]
        ).encode("latin-1")
        upstream = socket.create_connection((host, int(port)), timeout=10)
        with upstream:
            upstream.sendall(request + b"\r\n\r\n" + rest)
            self.relayed.append(request + b"\r\n\r\n")
            _pipe(client, upstream, [])


class SOCKS5Proxy(LocalProxy):
    """RFC 1928 CONNECT, with RFC 1929 username/password if set."""

    kind = "socks5"

    def serve(self, client: socket.socket) -> None:
        def read(n: int) -> bytes:
            data = b""
            while len(data) < n:
                chunk = client.recv(n - len(data))
                if not chunk:
                    raise ConnectionError("client went away")
                data += chunk
            return data

        try:
            version, count = read(2)
            methods = read(count)
            wanted = 2 if self.credentials else 0
            if version != 5 or wanted not in methods:
                client.sendall(b"\x05\xff")
                return
            client.sendall(bytes([5, wanted]))
            if self.credentials:
                read(1)
                user = read(read(1)[0]).decode()
                password = read(read(1)[0]).decode()
                if (user, password) != self.credentials:
                    with self.lock:
                        self.refused += 1
                    client.sendall(b"\x01\x01")
                    return
                client.sendall(b"\x01\x00")
            _, command, _, atyp = read(4)
            if atyp == 1:
                host, how = socket.inet_ntoa(read(4)), "ipv4"
            elif atyp == 3:
                host, how = read(read(1)[0]).decode(), "domain"
            else:
                host, how = socket.inet_ntop(socket.AF_INET6, read(16)), "ipv6"
            (port,) = struct.unpack("!H", read(2))
            if command != 1:
                client.sendall(b"\x05\x07\x00\x01" + b"\0" * 6)
                return
            try:
                upstream = socket.create_connection((host, port), timeout=10)
            except OSError:
                client.sendall(b"\x05\x05\x00\x01" + b"\0" * 6)
                return
            self.targets.append((host, port, how))
            client.sendall(
                b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + b"\0\0"
            )
            with upstream:
                _pipe(client, upstream, self.relayed)
        except (ConnectionError, OSError, ValueError):
            return


@contextmanager
def running(proxy_class, credentials=(USER, PASSWORD)) -> Iterator[LocalProxy]:
    proxy = proxy_class(credentials)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def sim():
    with run_simulator_in_thread(SimSettings(task_seconds=0.2, task_jitter=0.1)) as s:
        yield s


@pytest.fixture
def us_sim():
    settings_ = SimSettings(site="us", task_seconds=0.2, task_jitter=0.1)
    with run_simulator_in_thread(settings_) as s:
        yield s


def every_call(client: JimengClient, token: str) -> None:
    """One of each call an account makes."""
    history_id = client.submit(token, draft(), str(uuid.uuid4()))
    client.history(token, [history_id])
    client.find_submissions(token, ["x"])
    client.credits(token)
    try:
        client.receive_credits(token)
    except AlreadyClaimedError:  # a second round on the same account today
        pass
    assert client.is_live(token)


def calls(sim) -> int:
    return sum(sim.state.stats()["calls"].values())


# --- every call goes through the account's proxy


def test_an_http_proxied_account_sends_every_call_through_its_proxy(sim):
    client = JimengClient(settings(JIMENG_BASE_URL=sim.base_url))
    with running(HTTPProxy) as proxy:
        every_call(client, f"{proxy.url()}@{SID}")
        assert proxy.requests == 6 == calls(sim)
        assert proxy.connections == 6  # the forward proxy closes after each
        assert proxy.refused == 0  # the credentials were sent
        assert {t[:2] for t in proxy.targets} == {
            ("127.0.0.1", int(sim.base_url.rsplit(":", 1)[1]))
        }
        every_call(client, SID)  # a direct account: not through the proxy
        assert proxy.requests == 6 and calls(sim) == 12
    stats = sim.state.stats()
    assert stats["violations"] == [] and stats["submissions"] == 2


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_a_socks_proxied_account_sends_every_call_through_its_proxy(scheme, sim):
    base = sim.base_url.replace("127.0.0.1", "localhost")  # a name to resolve
    client = JimengClient(settings(JIMENG_BASE_URL=base))
    with running(SOCKS5Proxy) as proxy:
        every_call(client, f"{proxy.url(scheme)}@{SID}")
        assert proxy.requests == 6 == calls(sim)
        assert 1 <= proxy.connections <= 6  # keep-alive through the tunnel
        hows = {how for _, _, how in proxy.targets}
        # socks5h lets the proxy resolve the name; socks5 resolves it here
        assert hows == {"domain"} if scheme == "socks5h" else hows <= {"ipv4", "ipv6"}
    assert sim.state.stats()["violations"] == []


def test_a_dreamina_account_behind_a_socks_proxy(us_sim):
    config = settings(
        DREAMINA_US_BASE_URL=us_sim.base_url, DREAMINA_US_COMMERCE_URL=us_sim.base_url
    )
    client = JimengClient(config)
    with running(SOCKS5Proxy) as proxy:
        token = f"{proxy.url()}@us-{SID}"
        every_call(client, token)
        assert proxy.requests == 6 == calls(us_sim)
    stats = us_sim.state.stats()
    assert stats["violations"] == [] and stats["submissions"] == 1


def test_upstream_proxy_is_the_default_and_an_account_s_own_proxy_wins(sim):
    with running(SOCKS5Proxy) as default, running(HTTPProxy) as own:
        config = settings(JIMENG_BASE_URL=sim.base_url, UPSTREAM_PROXY=default.url())
        client = JimengClient(config)
        client.credits(SID)
        assert default.requests == 1
        client.credits(f"{own.url()}@{SID}")
        assert own.requests == 1 and default.requests == 1
        assert client.proxy_for(SID).masked == f"socks5://***@127.0.0.1:{default.port}"


def test_a_bad_upstream_proxy_stops_the_start():
    with pytest.raises(ValueError, match="UPSTREAM_PROXY"):
        JimengClient(settings(UPSTREAM_PROXY="ftp://10.0.0.1:21"))


# --- a dead proxy


@pytest.mark.parametrize("scheme", ["http", "socks5", "socks5h"])
def test_a_dead_proxy_is_unreachable_not_expired_and_nothing_is_sent(scheme, sim):
    client = JimengClient(settings(JIMENG_BASE_URL=sim.base_url))
    token = f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{free_port()}@{SID}"
    for call in (
        lambda: client.submit(token, draft(), str(uuid.uuid4())),
        lambda: client.credits(token),
        lambda: client.history(token, ["1"]),
    ):
        with pytest.raises(ProxyUnreachableError) as caught:
            call()
        error = caught.value
        assert not isinstance(error, SessionExpiredError)
        assert error.code == "proxy_unreachable" and error.status_code == 502
        assert account_id(token) in error.message
        assert PASSWORD not in error.message and "127.0.0.1" not in error.message
    assert calls(sim) == 0


@pytest.mark.parametrize("proxy_class", [HTTPProxy, SOCKS5Proxy])
def test_wrong_proxy_credentials_are_unreachable_too(proxy_class, sim):
    client = JimengClient(settings(JIMENG_BASE_URL=sim.base_url))
    with running(proxy_class) as proxy:
        token = f"{proxy.kind}://{USER}:wrong@127.0.0.1:{proxy.port}@{SID}"
        with pytest.raises(ProxyUnreachableError):
            client.submit(token, draft(), str(uuid.uuid4()))
        assert proxy.refused == 1 + PROXY_RETRIES  # retried once, then given up
    assert calls(sim) == 0


# --- secrets


def test_proxy_credentials_never_reach_a_log(sim, caplog):
    client = JimengClient(settings(JIMENG_BASE_URL=sim.base_url))
    with caplog.at_level(logging.DEBUG), running(HTTPProxy) as proxy:
        every_call(client, f"{proxy.url()}@{SID}")
        dead = f"socks5://{USER}:{PASSWORD}@127.0.0.1:{free_port()}@{SID}"
        with pytest.raises(ProxyUnreachableError):
            client.credits(dead)
    text = caplog.text
    assert "proxy socks5://***@127.0.0.1:" in text  # the failure is logged, masked
    assert PASSWORD not in text and USER not in text and SID not in text


def test_a_bearer_may_name_a_proxy_only_where_allowed():
    header = f"Bearer socks5://{USER}:{PASSWORD}@127.0.0.1:1080@{SID}"
    with pytest.raises(AuthenticationError) as caught:
        parse_bearer(header, 10)
    assert PASSWORD not in caught.value.message
    assert "ALLOW_CLIENT_PROXIES" in caught.value.message
    assert parse_bearer(header, 10, allow_proxies=True) == [header.split(" ", 1)[1]]


# --- cooldown and failover (needs the submission.py change of issue 18)


def _failover_applied() -> bool:
    from jimeng_api import submission

    return ProxyUnreachableError in submission.ACCOUNT_ERRORS


@pytest.mark.skipif(
    not _failover_applied(),
    reason="submission.ACCOUNT_ERRORS lacks ProxyUnreachableError",
)
def test_a_dead_proxy_cools_its_account_down_and_the_next_one_takes_the_job(
    make_app, sim
):
    from tests.factories import KEY

    dead = f"http://127.0.0.1:{free_port()}@deadproxysession0001"
    alive = "liveaccountsession0002"
    app = make_app(
        JIMENG_BASE_URL=sim.base_url, JIMENG_SESSION_IDS=(dead, alive), API_KEYS=(KEY,)
    )
    client = app.test_client()
    for _ in range(2):  # whichever account comes first, the job succeeds
        answer = client.post(
            "/v1/images/generations", json={"prompt": "x", "n": 1}, headers=bearer(KEY)
        )
        assert answer.status_code == 200, answer.json
    accounts = app.extensions["jimeng"]["accounts"]
    assert accounts.cooling(dead) and not accounts.cooling(alive)
    tasks = sim.state.stats()["tasks"].values()
    assert {t["session"] for t in tasks} == {alive}


# --- end to end: the official SDK, gunicorn, a SOCKS proxy, Dreamina US


def test_an_international_proxied_account_end_to_end(tmp_path):
    dreamina = Simulator(("--site", "us", "--task-seconds", "0.4"))
    try:
        with running(SOCKS5Proxy) as proxy:
            pool = tmp_path / "pool.txt"
            pool.write_text(
                f"# the team's US account, behind its own IP\nus {proxy.url()} {SID}\n",
                encoding="utf-8",
            )
            key = "sk-e2e-regions-0123456789"
            env = api_env(
                dreamina,
                DATA_DIR=str(tmp_path / "data"),
                DREAMINA_US_BASE_URL=dreamina.base_url,
                DREAMINA_US_COMMERCE_URL=dreamina.base_url,
                JIMENG_SESSION_FILE=str(pool),
                API_KEYS=key,
            )
            with gunicorn_server(env) as server:
                sdk = openai.OpenAI(
                    api_key=key, base_url=server.base_url + "/v1", max_retries=0
                )
                result = sdk.images.generate(model="jimeng-4.5", prompt="a harbour")
                assert len(result.data) == 4
                image = requests.get(result.data[0].url, timeout=10)
                assert image.content.startswith(b"\x89PNG")
                with pytest.raises(openai.BadRequestError) as caught:
                    sdk.images.generate(model="jimeng-5.0", prompt="x")
                assert caught.value.code == "model_not_available"
                sdk.close()  # no keep-alive connection holds the shutdown up
                points = requests.post(
                    server.base_url + "/token/points", headers=bearer(key), timeout=30
                ).json()
                assert "points" in points[0], points
                assert points[0]["token"].startswith("…")
                output = server.output()
            assert proxy.requests >= 3  # generate, polls, credits: all relayed
        stats = dreamina.stats()
        assert stats["violations"] == [], stats["violations"]
        assert stats["submissions"] == 1
        assert proxy.requests == sum(stats["calls"].values()) - stats["calls"].get(
            "image", 0
        )
        assert PASSWORD not in output and SID not in output
    finally:
        dreamina.stop()


# --- passthrough: a proxy in the caller's Bearer


def _bearer_proxies_wired() -> bool:
    import inspect

    from jimeng_api import auth

    return "ALLOW_CLIENT_PROXIES" in inspect.getsource(auth)


def test_a_bearer_proxy_is_refused_by_default(make_app, sim):
    app = make_app(JIMENG_BASE_URL=sim.base_url)
    with running(HTTPProxy) as proxy:
        answer = app.test_client().post(
            "/v1/images/generations",
            json={"prompt": "x", "n": 1},
            headers=bearer(f"{proxy.url()}@{SID}"),
        )
        assert answer.status_code == 401
        assert "ALLOW_CLIENT_PROXIES" in answer.json["error"]["message"]
        assert PASSWORD not in answer.get_data(as_text=True)
        assert proxy.connections == 0
    assert calls(sim) == 0


@pytest.mark.skipif(
    not _bearer_proxies_wired(), reason="auth.py does not pass ALLOW_CLIENT_PROXIES"
)
def test_a_bearer_proxy_is_used_when_allowed(make_app, sim):
    app = make_app(JIMENG_BASE_URL=sim.base_url, ALLOW_CLIENT_PROXIES=True)
    with running(HTTPProxy) as proxy:
        answer = app.test_client().post(
            "/v1/images/generations",
            json={"prompt": "x", "n": 1},
            headers=bearer(f"{proxy.url()}@{SID}"),
        )
        assert answer.status_code == 200, answer.json
        assert proxy.requests >= 2 and proxy.requests == calls(sim)


# --- CDN downloads through the account's proxy (needs the fetcher.py change) ----------


def _fetcher_takes_proxies() -> bool:
    import inspect

    from jimeng_api.fetcher import SafeFetcher

    return "proxy" in inspect.signature(SafeFetcher.fetch).parameters


def _renderer_passes_tokens() -> bool:
    import inspect

    from jimeng_api.results import Renderer

    return "token" in inspect.signature(Renderer.render).parameters


needs_fetcher = pytest.mark.skipif(
    not _fetcher_takes_proxies(), reason="SafeFetcher.fetch takes no proxy"
)


@pytest.fixture
def image_url(sim):
    from simulator.testing import SimClient

    with SimClient(sim.base_url) as c:
        record = c.wait(c.submit("x"))
    return record["item_list"][0]["image"]["large_images"][0]["image_url"]


@needs_fetcher
@pytest.mark.parametrize("proxy_class", [HTTPProxy, SOCKS5Proxy])
def test_cdn_downloads_go_through_the_account_proxy(proxy_class, sim, image_url):
    from jimeng_api.fetcher import SafeFetcher

    fetcher = SafeFetcher(settings(JIMENG_BASE_URL=sim.base_url))
    with running(proxy_class) as proxy:
        got = fetcher.fetch_all([image_url, image_url], proxy=proxy.url())
        assert all(f.content.startswith(b"\x89PNG") for f in got)
        assert proxy.connections == 2 and proxy.requests == 2
        fetcher.fetch(image_url)  # no proxy: direct
        assert proxy.connections == 2


@needs_fetcher
@pytest.mark.parametrize("scheme", ["http", "socks5"])
def test_a_dead_proxy_fails_a_download_without_naming_it(scheme, sim, image_url):
    from jimeng_api.errors import UpstreamError
    from jimeng_api.fetcher import SafeFetcher

    fetcher = SafeFetcher(settings(JIMENG_BASE_URL=sim.base_url))
    dead = f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{free_port()}"
    with pytest.raises(UpstreamError) as caught:
        fetcher.fetch(image_url, proxy=dead)
    assert "proxy failed" in caught.value.message
    assert PASSWORD not in caught.value.message and USER not in caught.value.message


@pytest.mark.skipif(
    not (_fetcher_takes_proxies() and _renderer_passes_tokens()),
    reason="the renderer does not fetch through the account's proxy",
)
def test_b64_json_images_come_through_the_account_proxy(make_app, sim):
    from tests.factories import KEY

    with running(SOCKS5Proxy) as proxy:
        app = make_app(
            JIMENG_BASE_URL=sim.base_url,
            JIMENG_SESSION_IDS=(f"{proxy.url()}@{SID}",),
            API_KEYS=(KEY,),
        )
        answer = app.test_client().post(
            "/v1/images/generations",
            json={"prompt": "x", "n": 2, "response_format": "b64_json"},
            headers=bearer(KEY),
        )
        assert answer.status_code == 200, answer.json
        assert sim.state.stats()["calls"]["image"] == 2
        assert sum(1 for c in proxy.relayed if c.startswith(b"GET /img/")) == 2


# --- every other download of a proxied account's files ---------------------------


def _pooled_behind(make_app, sim, proxy):
    from tests.factories import KEY

    app = make_app(
        JIMENG_BASE_URL=sim.base_url,
        JIMENG_SESSION_IDS=(f"{proxy.url()}@{SID}",),
        API_KEYS=(KEY,),
    )
    return app.test_client(), bearer(KEY)


def _image_gets(proxy) -> int:
    return sum(1 for c in proxy.relayed if c.startswith(b"GET /img/"))


def test_streamed_images_come_through_the_account_proxy(make_app, sim):
    with running(SOCKS5Proxy) as proxy:
        client, headers = _pooled_behind(make_app, sim, proxy)
        answer = client.post(
            "/v1/images/generations",
            json={"prompt": "x", "n": 2, "stream": True},
            headers=headers,
        )
        body = answer.get_data(as_text=True)
        assert (
            answer.status_code == 200 and body.count("image_generation.completed") == 2
        )
        assert sim.state.stats()["calls"]["image"] == 2
        assert _image_gets(proxy) == 2  # the stream's b64 bytes came through it


def test_video_content_comes_through_the_account_proxy(make_app):
    settings_ = SimSettings(task_seconds=0.2, video_task_seconds=0.3, task_jitter=0.0)
    with run_simulator_in_thread(settings_) as sim, running(HTTPProxy) as proxy:
        requests.post(
            sim.base_url + "/__sim/credits",
            json={"session": SID, "purchase_credit": 50},
            timeout=10,
        )
        client, headers = _pooled_behind(make_app, sim, proxy)
        created = client.post(
            "/v1/videos", json={"prompt": "a fox", "seconds": "5"}, headers=headers
        )
        assert created.status_code == 200, created.json
        video_id = created.json["id"]
        wait_for(
            lambda: (
                client.get(f"/v1/videos/{video_id}", headers=headers).json["status"]
                == "completed"
            ),
            10,
        )
        before = len(proxy.relayed)
        content = client.get(f"/v1/videos/{video_id}/content", headers=headers)
        data = content.data
        content.close()
        assert content.status_code == 200 and data[4:8] == b"ftyp"
        fetched = [c for c in proxy.relayed[before:] if c.startswith(b"GET /vid/")]
        assert len(fetched) == 1  # the MP4 came through the account's proxy
        shown = client.get(f"/v1/videos/{video_id}", headers=headers)
        assert PASSWORD not in shown.get_data(as_text=True)  # kept sealed
