"""The rest of the OpenAI surface, bad input, and /health."""

from __future__ import annotations

import httpx
import openai

from tests.conftest import assert_error_shape
from tests.fakes import FakeUpstream, ServerThread


def test_embeddings_and_completions_pass_through(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    embedding = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(embedding.data) == 2 and embedding.data[0].embedding == [0.1, 0.2, 0.3]
    assert upstream.requests[-1]["path"] == "/v1/embeddings"
    completion = client.completions.create(model="cheap-mini", prompt="say")
    assert completion.choices[0].text == "completed"
    assert upstream.requests[-1]["body"]["model"] == "cheap-mini"


def test_bad_input_gets_openai_shaped_errors(gateway: ServerThread) -> None:
    url = gateway.url + "/v1/chat/completions"
    cases = [
        (httpx.post(url, content=b"{not json"), 400, "invalid_json"),
        (httpx.post(url, content=b""), 400, "invalid_json"),
        (httpx.post(url, json=[1, 2]), 400, "invalid_json"),
        (httpx.post(url, json={"model": "auto"}), 400, "missing_required_parameter"),
        (httpx.post(url, json={"model": "auto", "messages": "hi"}), 400, "invalid_type"),
        (httpx.post(url, json={"model": "auto", "messages": [{"content": "x"}]}), 400, "invalid_type"),
        (
            httpx.post(
                url, json={"model": "auto", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}
            ),
            400,
            "invalid_type",
        ),
        (
            httpx.post(url, json={"model": "auto", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}),
            400,
            "invalid_type",
        ),
        (
            httpx.post(url, json={"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
            404,
            "model_not_found",
        ),
        (httpx.post(url, content=b"x" * (10 * 1024 * 1024 + 1)), 413, "request_too_large"),
        (httpx.get(url), 405, "method_not_allowed"),
        (httpx.get(gateway.url + "/v1/nope"), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert response.headers["content-type"] == "application/json"
        assert_error_shape(response.json(), code=code)


def test_param_names_the_bad_field(gateway: ServerThread) -> None:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"},
    )
    assert response.json()["error"]["param"] == "max_tokens"


def test_health_has_the_seed_shape_and_providers(gateway: ServerThread) -> None:
    body = httpx.get(gateway.url + "/health").json()
    assert {"status", "redis", "database", "timestamp", "providers"} <= set(body)
    assert body["status"] == "ok" and body["database"] is True
    assert body["providers"]["fakeai"]["status"] == "up"
    assert body["providers"]["fakeanthropic"]["status"] == "up"
    assert body["timestamp"].endswith("Z")


def test_api_keys_are_never_returned(client: openai.OpenAI, gateway: ServerThread) -> None:
    surfaces = [httpx.get(gateway.url + "/health").text, httpx.get(gateway.url + "/v1/models").text]
    for text in surfaces:
        assert "sk-fake-upstream" not in text and "sk-ant-fake" not in text
