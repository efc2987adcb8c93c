from __future__ import annotations

import re

import pytest
import responses

from config import TestingConfig
from jimeng_api import create_app


@pytest.fixture
def app():
    return create_app(TestingConfig)


@pytest.fixture
def client(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-session-1"
    return client


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
        items = [{"image": {"large_images": [{"image_url": u}]}} for u in urls]
        record = {"status": status, "fail_code": fail_code, "item_list": items}
        return self.reply(self.HISTORY, {history_id: {**record, **fields}})

    def generation(self, history_id="h1", urls=("https://p9.byteimg.com/a.png",)):
        self.submitted(history_id)
        self.record(history_id, 20)
        return self.record(history_id, 50, urls)

    def calls(self, path):
        return [
            c for c in self.mock.calls if c.request.url.split("?")[0].endswith(path)
        ]


@pytest.fixture
def upstream(app):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeUpstream(mock, app.config["JIMENG_BASE_URL"])


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
