from __future__ import annotations

import pytest

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
