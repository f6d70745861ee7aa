"""Shared fixtures: fake upstreams, a gateway under real uvicorn, SDK clients."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
import yaml

from proxy import Config, config_from_dict, create_app, load_config
from tests.fakes import FakeUpstream, ServerThread, fake_anthropic, fake_openai, free_port


def base_config(openai_url: str, anthropic_url: str | None, data_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A config with a model per tier over the fake upstreams."""
    providers: dict[str, Any] = {
        "fakeai": {
            "kind": "openai",
            "base_url": openai_url + "/v1",
            "api_key": "sk-fake-upstream",
            "supports_embeddings": True,
            "supports_completions": True,
            "timeout_seconds": 5,
        },
    }
    models: list[dict[str, Any]] = [
        {"id": "free-small", "provider": "fakeai", "tier": "L0", "price": {"input": 0, "output": 0}},
        {
            "id": "cheap-mini",
            "provider": "fakeai",
            "tier": "L1",
            "price": {"input": 0.15, "output": 0.60, "cached_input": 0.075},
        },
        {"id": "premium-max", "provider": "fakeai", "tier": "L3", "price": {"input": 15, "output": 75}},
    ]
    if anthropic_url:
        providers["fakeanthropic"] = {
            "kind": "anthropic",
            "base_url": anthropic_url,
            "api_key": "sk-ant-fake",
            "timeout_seconds": 5,
        }
        models.append(
            {"id": "claude-mid", "provider": "fakeanthropic", "tier": "L2", "price": {"input": 3, "output": 15}}
        )
    else:
        models.append({"id": "mid-large", "provider": "fakeai", "tier": "L2", "price": {"input": 2.5, "output": 10}})
    raw: dict[str, Any] = {
        "server": {"data_dir": str(data_dir)},
        "providers": providers,
        "models": models,
        "routing": {"aliases": {"gpt-4o": "cheap-mini", "gpt-4": "L2"}},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return raw


REDIS_URL = "redis://127.0.0.1:6379/0"


def write_config(path: Path, raw: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(raw))


def start_from_file(path: Path, raw: dict[str, Any]) -> ServerThread:
    """A gateway loaded from `path` (written from `raw`), so edits to the file reach it as a reload would."""
    write_config(path, raw)
    return ServerThread(create_app(load_config(path, env={}))).start()


def config_per_store(
    request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path: Path, admin_token: str
) -> dict[str, Any]:
    """`base_config` for a fixture parametrized over ["redis", "memory"]: the same test on both stores."""
    raw = base_config(upstream.url, None, tmp_path, server={"data_dir": str(tmp_path), "admin_token": admin_token})
    if request.param == "redis":
        raw.update(redis_url=REDIS_URL, redis_prefix=request.getfixturevalue("redis_prefix"))
    return raw


def post_chat(url: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", json=body, headers=headers, timeout=10)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the real Redis; its keys are deleted afterwards."""
    prefix = f"aigw-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def redis_server(port: int) -> subprocess.Popen[bytes]:
    """A Redis of a test's own on `port` (no persistence), answering when this returns."""
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while True:
        client = redis.Redis(port=port)
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)
        finally:
            client.close()


@pytest.fixture
def own_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis of this test's own, so the test can kill it."""
    port = free_port()
    process = redis_server(port)
    yield f"redis://127.0.0.1:{port}/0", process
    if process.poll() is None:
        process.kill()
    process.wait()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with fake_openai() as state:
        yield state


@pytest.fixture
def anthropic_upstream() -> Iterator[FakeUpstream]:
    with fake_anthropic() as state:
        yield state


@contextmanager
def running_gateway(config: Config) -> Iterator[ServerThread]:
    server = ServerThread(create_app(config)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_gateway(redis_prefix: str) -> Iterator[Callable[[dict[str, Any]], ServerThread]]:
    """Start gateways from raw config dicts; all are stopped after the test.

    It asks for `redis_prefix` so that a test's Redis keys outlive its gateways:
    they flush their last usage events there on the way out.
    """
    servers: list[ServerThread] = []

    def start(raw: dict[str, Any]) -> ServerThread:
        server = ServerThread(create_app(config_from_dict(raw, env={}))).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def gateway(
    start_gateway: Callable[[dict[str, Any]], ServerThread],
    upstream: FakeUpstream,
    anthropic_upstream: FakeUpstream,
    tmp_path: Path,
) -> ServerThread:
    return start_gateway(base_config(upstream.url, anthropic_upstream.url, tmp_path))


@pytest.fixture
def client(gateway: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=10) as sdk:
        yield sdk


def assert_error_shape(body: Any, *, code: str | None = None) -> dict[str, Any]:
    """Every error the gateway sends has exactly OpenAI's four keys (plus optional extras)."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error
