from __future__ import annotations

import json
import re
import threading
import time

import pytest
import responses

from config import TestingConfig

#: settings every unit-test app gets on top of TestingConfig: no key file is
#: written (STORE_SECRET), and the first poll comes 40 ms after acceptance
FAST = {
    "STORE_SECRET": "unit-test-store-secret",
    "POLL_EXPECTED_SECONDS": 0.1,
}
POLLER_TICK = 0.01  # the poller loop's pause (0.2 s in production)
#: how long an unconfirmed submission is looked up for (>= 10 s in production):
#: a test that submits without a scripted answer ends quickly instead of hanging
SUBMIT_GRACE = 0.3
#: The poller's scan of the unfinished index is off unless a test turns it on
#: (the ``scan`` fixture): in the product it can pick up a job that the request
#: thread is submitting right now and submit it a second time (see
#: test_jobs.py::test_the_poller_never_takes_over_a_job_its_request_is_submitting),
#: which would make every test that counts generate calls flaky.
NO_SCAN = 1e12
_PARKED = threading.Event()  # never set: a parked poller waits on it forever


def park(app) -> None:
    """Stop *app*'s background poller: its loop waits forever from its next
    step on (the thread is a daemon); wait for the work it started."""
    services = app.extensions.get("jimeng")
    if not services:
        return
    poller = services["poller"]
    poller.step = lambda now: _PARKED.wait()
    deadline = time.monotonic() + 3
    while poller.busy and time.monotonic() < deadline:
        time.sleep(0.01)


class AppFactory:
    """``make_app(**overrides)``: a unit-test app; every app made is parked at
    the end of the test (before the ``responses`` mock goes away)."""

    def __init__(self, tmp_path) -> None:
        self.tmp_path = tmp_path
        self.apps: list = []

    def __call__(self, **overrides):
        from jimeng_api import create_app  # lazily: tests/simulator never imports it

        settings = {**FAST, "DATA_DIR": str(self.tmp_path / "data"), **overrides}
        app = create_app(TestingConfig, overrides=settings)
        submitter_of(app).grace = SUBMIT_GRACE
        self.apps.append(app)
        return app

    def park_all(self) -> None:
        for app in self.apps:
            park(app)


@pytest.fixture
def make_app(tmp_path, monkeypatch):
    import jimeng_api.poller

    monkeypatch.setattr(jimeng_api.poller, "TICK", POLLER_TICK)
    monkeypatch.setattr(jimeng_api.poller, "SCAN_INTERVAL", NO_SCAN)
    factory = AppFactory(tmp_path)
    yield factory
    factory.park_all()


@pytest.fixture
def scan(make_app, monkeypatch):
    """``scan(interval)``: let the pollers scan the store (adopt orphans, retry
    waiting jobs) every *interval* seconds from now on."""
    import jimeng_api.poller

    def turn_on(interval: float = 0.02) -> None:
        monkeypatch.setattr(jimeng_api.poller, "SCAN_INTERVAL", interval)

    return turn_on


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-session-1"
    return client


def services(app) -> dict:
    """The app's service objects (store, jobs, accounts, poller...)."""
    return app.extensions["jimeng"]


def submitter_of(app):
    return services(app)["generations"].submitter


def raw_record(status=50, urls=(), fail_code="", **fields) -> dict:
    """A history record as Jimeng sends it; ``item_list=None`` leaves it out."""
    items = [{"image": {"large_images": [{"image_url": u}]}} for u in urls]
    record = {"status": status, "fail_code": fail_code, "item_list": items}
    record.update(fields)
    if record["item_list"] is None:
        del record["item_list"]
    return record


class History:
    """A scripted ``get_history_by_ids``: per record, the states it goes
    through (the last one repeats), whatever ids one call asks for together;
    lookups by ``submit_id`` find what ``found`` maps them to."""

    def __init__(self) -> None:
        self.states: dict[str, list[dict]] = {}
        self.found: dict[str, str] = {}  # submit_id (or "*") -> history id
        self.lookups: list[list[str]] = []  # the submit_ids of each lookup
        self.polls: list[list[str]] = []  # the history_ids of each poll
        self.lock = threading.Lock()

    def add(self, history_id: str, *states: dict) -> None:
        self.states[history_id] = list(states)

    def __call__(self, request):
        body = json.loads(request.body)
        with self.lock:
            if "submit_ids" in body:
                self.lookups.append(body["submit_ids"])
                data = {}
                for submit_id in body["submit_ids"]:
                    found = self.found.get(submit_id) or self.found.get("*")
                    if found:
                        data[submit_id] = {"history_record_id": found}
            else:
                self.polls.append(body["history_ids"])
                data = {}
                for history_id in body["history_ids"]:
                    queue = self.states.get(history_id)
                    if queue:
                        data[history_id] = queue.pop(0) if len(queue) > 1 else queue[0]
        return 200, {}, json.dumps({"ret": "0", "errmsg": "success", "data": data})


class FakeUpstream:
    """Scripted Jimeng replies through ``responses``, in domain terms."""

    GENERATE = "/mweb/v1/aigc_draft/generate"
    HISTORY = "/mweb/v1/get_history_by_ids"
    CREDIT = "/commerce/v1/benefits/user_credit"
    RECEIVE = "/commerce/v1/benefits/credit_receive"
    ACCOUNT = "/passport/account/info/v2"

    def __init__(self, mock, base_url: str) -> None:
        self.mock = mock
        self.base_url = base_url
        self._history: History | None = None

    def url(self, path: str):
        return re.compile(re.escape(self.base_url + path) + r"(\?.*)?$")

    def reply(self, path, data=None, *, ret="0", errmsg="success", **extra):
        body = {"ret": ret, "errmsg": errmsg, "data": data, **extra}
        return self.mock.post(self.url(path), json=body)

    def raw(self, path, **kwargs):
        return self.mock.post(self.url(path), **kwargs)

    def submitted(self, history_id="h1"):
        return self.reply(
            self.GENERATE, {"aigc_data": {"history_record_id": history_id}}
        )

    def record(self, history_id="h1", status=50, urls=(), fail_code="", **fields):
        record = raw_record(status, urls, fail_code, **fields)
        return self.reply(self.HISTORY, {history_id: record})

    def generation(self, history_id="h1", urls=("https://p9.byteimg.com/a.png",)):
        self.submitted(history_id)
        self.record(history_id, 20)
        return self.record(history_id, 50, urls)

    def history(self) -> History:
        """Answer every history call from a script (batched polls, lookups);
        use it instead of ``record()`` in a test."""
        if self._history is None:
            self._history = History()
            self.mock.add_callback(
                responses.POST, self.url(self.HISTORY), callback=self._history
            )
        return self._history

    def calls(self, path):
        return [
            c for c in self.mock.calls if c.request.url.split("?")[0].endswith(path)
        ]

    def bodies(self, path) -> list[dict]:
        return [json.loads(c.request.body) for c in self.calls(path)]


@pytest.fixture
def upstream(app, make_app):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeUpstream(mock, app.config["JIMENG_BASE_URL"])
        make_app.park_all()  # no poll may outlive the mock


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.01):
    """Return the first truthy value of *predicate()*, or fail after *timeout*."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s: {predicate}")


@pytest.fixture(scope="session")
def sim():
    """One simulator process (strict mode, short tasks) for the whole run."""
    from tests.servers import Simulator

    simulator = Simulator(("--task-seconds", "0.6", "--task-jitter", "0.3"))
    yield simulator
    simulator.stop()


@pytest.fixture
def fresh_sim(sim):
    """The simulator with its state and knobs reset for this test."""
    sim.reset()
    sim.configure(task_seconds=0.6, task_jitter=0.3)
    yield sim
    sim.reset()
