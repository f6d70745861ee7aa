"""Editing config.yaml reaches a running gateway; a bad edit is refused; streams finish."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import base_config, start_from_file, write_config
from tests.fakes import FakeUpstream


def _wait_for(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "condition not reached in time"
        time.sleep(0.2)


def _l0_model(url: str) -> str:
    body = {"model": "L0", "messages": [{"role": "user", "content": "which?"}]}
    response = httpx.post(url + "/v1/chat/completions", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["model"])


def test_config_edits_apply_without_restart(tmp_path: Path, upstream: FakeUpstream) -> None:
    path = tmp_path / "config.yaml"
    raw = base_config(upstream.url, None, tmp_path)
    server = start_from_file(path, raw)
    try:
        assert _l0_model(server.url) == "free-small"

        # A slow stream started on the old config must finish normally.
        slow = {
            "model": "L0",
            "stream": True,
            "messages": [{"role": "user", "content": "slow [[fake:chunks=10,chunk_delay=0.3]]"}],
        }
        with httpx.stream("POST", server.url + "/v1/chat/completions", json=slow, timeout=30) as stream:
            lines = stream.iter_lines()
            first = next(line for line in lines if line)
            assert "free-small" in first

            raw["models"][0]["id"] = "renamed-small"  # type: ignore[index]
            time.sleep(1.1)  # mtime resolution on some filesystems
            write_config(path, raw)
            _wait_for(lambda: _l0_model(server.url) == "renamed-small")
            rest = [line for line in lines if line]
        assert rest[-1] == "data: [DONE]"

        # An invalid edit is refused; the last good config keeps serving.
        time.sleep(1.1)
        path.write_text("routing:\n  default_tier: L7\n")
        _wait_for(lambda: httpx.get(server.url + "/health").json()["config"]["reloadError"] is not None)
        error = httpx.get(server.url + "/health").json()["config"]["reloadError"]
        assert "routing.default_tier" in error
        assert _l0_model(server.url) == "renamed-small"

        # Fixing the file clears the error.
        time.sleep(1.1)
        write_config(path, raw)
        _wait_for(lambda: httpx.get(server.url + "/health").json()["config"]["reloadError"] is None)
    finally:
        server.stop()


def test_settings_held_since_start_are_reported_as_needing_a_restart(tmp_path: Path, upstream: FakeUpstream) -> None:
    path = tmp_path / "config.yaml"
    raw = base_config(upstream.url, None, tmp_path)
    server = start_from_file(path, raw)
    try:
        assert httpx.get(server.url + "/health").json()["config"]["restartRequired"] == []
        raw["usage"] = {"batch_size": 7}
        raw["models"][0]["id"] = "renamed-small"  # type: ignore[index]
        time.sleep(1.1)
        write_config(path, raw)
        _wait_for(lambda: _l0_model(server.url) == "renamed-small")  # the live part applied
        assert httpx.get(server.url + "/health").json()["config"]["restartRequired"] == ["usage"]
    finally:
        server.stop()
