"""GET /openapi.json and GET /docs: a valid 3.1 document that covers every route,
whose schemas match what the routes really answer, and a docs page with no CDN."""

from __future__ import annotations

import json
import re

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from jimeng_api import __version__
from jimeng_api.openapi import HIDDEN_ENDPOINTS, HIDDEN_METHODS
from jimeng_api.openapi_operations import OPERATIONS

from .test_chat import CAT, read_events

ERROR_REF = "#/components/schemas/ErrorResponse"
URLS = [f"https://p9-dreamina-sign.byteimg.com/img/{i}.jpeg" for i in range(2)]


@pytest.fixture
def spec(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


def routes(app):
    """(rule, method) for every route the document must describe."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint in HIDDEN_ENDPOINTS:
            continue
        for method in sorted(rule.methods - HIDDEN_METHODS):
            yield rule, method


def path_of(rule) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)


def conforms(spec, component: str, instance) -> None:
    """Validate *instance* against a component schema, refs resolved in *spec*."""
    schema = {"$ref": f"#/components/schemas/{component}", **spec}
    OAS31Validator(schema).validate(instance)


def test_document_is_valid_openapi_3_1(spec):
    validate(spec)  # picks the 3.1 validator from the "openapi" field
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] == "jimeng-api"
    assert spec["info"]["version"] == __version__
    assert spec["servers"] == [{"url": "/"}]
    scheme = spec["components"]["securitySchemes"]["sessionAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"


def test_every_registered_route_appears_with_each_method(app, spec):
    found = list(routes(app))
    assert len(found) >= 10
    for rule, method in found:
        operation = spec["paths"].get(path_of(rule), {}).get(method.lower())
        assert operation, f"{method} {rule.rule} is missing from /openapi.json"
        assert operation["summary"] and operation["responses"]["200"]


def test_every_endpoint_is_described_not_guessed(app):
    undescribed = {r.endpoint for r, _ in routes(app)} - set(OPERATIONS)
    assert not undescribed, (
        f"add {sorted(undescribed)} to openapi_operations.OPERATIONS"
    )


def test_the_tasks_api_is_described(spec):
    assert {"tasks.retrieve_task", "tasks.list_tasks", "tasks.delete_task"} <= set(
        OPERATIONS
    )
    operation = spec["paths"]["/v1/tasks/{task_id}"]["get"]
    assert operation["security"] == [{"sessionAuth": []}]
    assert "404" in operation["responses"]


def test_operation_ids_are_unique(spec):
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("path", "request_schema"),
    [
        ("/v1/images/generations", "ImageGenerationRequest"),
        ("/v1/chat/completions", "ChatCompletionRequest"),
        ("/token/check", "TokenCheckRequest"),
    ],
)
def test_post_operations_reference_request_and_error_schemas(
    spec, path, request_schema
):
    operation = spec["paths"][path]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": f"#/components/schemas/{request_schema}"}
    assert {"400", "413", "500"} <= set(operation["responses"])


def test_generation_routes_need_the_bearer_and_list_their_errors(spec):
    for path in ("/v1/images/generations", "/v1/chat/completions"):
        operation = spec["paths"][path]["post"]
        assert operation["security"] == [{"sessionAuth": []}]
        assert {"400", "401", "404", "429", "502", "504"} <= set(operation["responses"])


def test_every_error_response_is_the_error_schema(spec):
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": ERROR_REF}, (method, path, status)


def test_request_schema_is_generated_from_marshmallow(spec):
    request = spec["components"]["schemas"]["ImageGenerationRequest"]
    assert request["required"] == ["prompt"]
    assert request["properties"]["n"]["maximum"] == 8
    assert request["properties"]["response_format"]["enum"] == ["url", "b64_json"]
    chat = spec["components"]["schemas"]["ChatCompletionRequest"]
    assert chat["properties"]["messages"]["items"] == {
        "$ref": "#/components/schemas/Message"
    }


def test_request_examples_pass_their_own_schemas():
    described = [op for op in OPERATIONS.values() if op.request is not None]
    assert len(described) >= 3
    for operation in described:
        assert operation.example is not None
        operation.request().load(operation.example)  # raises if it drifted


def test_chat_documents_the_event_stream(spec):
    content = spec["paths"]["/v1/chat/completions"]["post"]["responses"]["200"][
        "content"
    ]
    assert content["application/json"]["schema"]["$ref"].endswith("/ChatCompletion")
    stream = content["text/event-stream"]["schema"]["oneOf"]
    assert {"$ref": "#/components/schemas/ChatCompletionChunk"} in stream


# --- the documented schemas match real answers ---


def test_images_response_matches_its_schema(client, upstream, spec):
    upstream.generation("h1", URLS)
    response = client.post("/v1/images/generations", json={"prompt": "a cat"})
    assert response.status_code == 200
    conforms(spec, "ImagesResponse", response.json)


def test_chat_responses_match_their_schemas(client, upstream, spec):
    upstream.generation("h1", URLS)
    upstream.generation("h2", URLS)
    plain = client.post("/v1/chat/completions", json=CAT)
    conforms(spec, "ChatCompletion", plain.json)
    streamed = client.post(
        "/v1/chat/completions",
        json={**CAT, "stream": True, "stream_options": {"include_usage": True}},
    )
    *chunks, done = read_events(streamed)
    assert done == "[DONE]" and len(chunks) >= 3
    for chunk in chunks:
        conforms(spec, "ChatCompletionChunk", chunk)


def test_models_and_token_responses_match_their_schemas(client, upstream, spec):
    conforms(spec, "ModelList", client.get("/v1/models").json)
    model_id = client.get("/v1/models").json["data"][0]["id"]
    conforms(spec, "Model", client.get(f"/v1/models/{model_id}").json)

    credit = {"gift_credit": 1, "purchase_credit": 2, "vip_credit": 3}
    upstream.reply(upstream.CREDIT, {"credit": credit})
    points = client.post("/token/points")
    assert points.status_code == 200
    [entry] = points.json
    assert entry["points"]["totalCredit"] == 6
    conforms(spec, "SessionPoints", entry)

    upstream.reply(upstream.RECEIVE, {"receive_quota": 5})
    [receipt] = client.post("/token/receive").json
    assert receipt["received"] is True and "credits" in receipt
    conforms(spec, "SessionReceipt", receipt)

    upstream.reply(upstream.ACCOUNT, {"user_id": 1})
    live = client.post("/token/check", json={"token": "abc"})
    assert live.status_code == 200
    conforms(spec, "TokenLive", live.json)


def test_error_responses_match_the_error_schema(client, spec):
    answers = [
        client.post(
            "/v1/images/generations", data="{", content_type="application/json"
        ),
        client.post("/v1/chat/completions", json={"messages": []}),
        client.get("/v1/models/no-such-model"),
        client.get("/no-such-route"),
        client.delete("/v1/models"),
    ]
    for response in answers:
        assert response.status_code >= 400
        conforms(spec, "ErrorResponse", response.json)


# --- stability ---


def test_document_is_stable(client, make_app):
    first = client.get("/openapi.json").get_data()
    second = client.get("/openapi.json").get_data()
    assert first == second
    other = make_app().test_client().get("/openapi.json").get_data()
    assert json.loads(other) == json.loads(first)


# --- the docs page ---


def test_docs_page_loads_only_local_assets(app, spec):
    client = app.test_client()  # no Authorization: the docs are public
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    assert '"/openapi.json"' in html and "validatorUrl: null" in html

    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) == 3
    kinds = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}
    for url in assets:
        assert url.startswith("/docs/static/"), url
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.mimetype == kinds[url[url.rindex(".") :]], url
        assert len(response.get_data()) > 100
        response.close()


def test_docs_assets_are_limited_to_swagger_ui(client):
    for name in ("index.html", "../__init__.py", "../../flask/app.py", "VERSION"):
        response = client.get(f"/docs/static/{name}")
        assert response.status_code == 404, name
        assert response.json["error"]["code"] == "not_found"
