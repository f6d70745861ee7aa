"""`aigw serve` as a user runs it: a real process, no keys, no Redis."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai

from tests.fakes import fake_openai, free_port
from tests.replicas import clean_env


@contextmanager
def aigw_serve(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, list[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", "serve", "--port", str(port), *args],
        cwd=cwd,
        env=env or clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    output: list[str] = []
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                httpx.get(url + "/health", timeout=0.5)
                break
            except httpx.HTTPError:
                if process.poll() is not None:
                    break
                time.sleep(0.1)
        yield url, output
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=20)
        output.append(out)
        assert process.returncode == 0, out


def test_keyless_start_serves_the_demo_model(tmp_path: Path) -> None:
    env = clean_env(OSS_MODEL_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    with aigw_serve(tmp_path, env=env) as (url, output):
        health = httpx.get(url + "/health").json()
        assert health["demo"] is True and health["providers"]["demo"]["status"] == "up"
        assert health["redis"] is False and health["database"] is True
        with openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0) as sdk:
            models = [m.id for m in sdk.models.list()]
            assert "demo" in models
            answer = sdk.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
            assert answer.model == "demo" and answer.choices[0].message.content.startswith("[demo model]")
            streamed = "".join(
                c.choices[0].delta.content or ""
                for c in sdk.chat.completions.create(
                    model="auto", messages=[{"role": "user", "content": "hi"}], stream=True
                )
                if c.choices
            )
            assert streamed == answer.choices[0].message.content
    banner = output[0]
    assert "built-in 'demo' model" in banner and "config:" in banner
    assert (tmp_path / "data" / "usage.duckdb").exists()


def test_ollama_is_used_when_it_answers(tmp_path: Path) -> None:
    with fake_openai("ollama") as ollama:
        ollama.models = [{"id": "llama3.2", "object": "model"}]
        env = clean_env(OSS_MODEL_ENDPOINT=ollama.url)
        with aigw_serve(tmp_path, env=env) as (url, output):
            answer = httpx.post(
                url + "/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
            ).json()
            assert answer["model"] == "llama3.2"
            assert httpx.get(url + "/health").json()["providers"]["ollama"]["status"] == "up"
    assert "providers: ollama" in output[0]


def test_bad_config_exits_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("routing:\n  default_tier: L9\n")
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "serve"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "routing.default_tier" in result.stderr and "Traceback" not in result.stderr


def test_several_workers_without_redis_are_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--workers", "2"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--workers 2 needs REDIS_URL" in result.stderr
