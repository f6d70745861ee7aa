"""What the Dockerfile does, done without Docker: wheel -> fresh venv -> `aigw serve`.

No Docker engine runs on these machines, so this proves the image's recipe: a
wheel built from the checkout installs with runtime dependencies only, ships
its packaged config, and serves /health and a proxied request.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fakes import fake_openai, free_port

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str | Path, cwd: Path | None = None) -> str:
    # Without PYTHONPATH: a source checkout on it (with its egg-info) would make pip
    # think the package is installed already and skip it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=600, check=False, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_wheel_installs_into_a_fresh_venv_and_serves(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", wheels, ROOT)
    wheel = next(wheels.glob("ai_mcp_gateway-*.whl"))
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "pip", "install", "--quiet", wheel)
    installed = run(venv / "bin" / "pip", "list", "--format=freeze")
    assert "pytest" not in installed and "openai" not in installed  # runtime dependencies only

    workdir = tmp_path / "run"
    workdir.mkdir()
    with fake_openai("ollama") as upstream:
        upstream.models = [{"id": "llama3.2", "object": "model"}]
        port = free_port()
        env = {"PATH": str(venv / "bin"), "HOME": str(tmp_path), "OSS_MODEL_ENDPOINT": upstream.url}
        process = subprocess.Popen(
            [str(venv / "bin" / "aigw"), "serve", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.time() + 30
            while True:
                try:
                    health = httpx.get(url + "/health", timeout=1)
                    break
                except httpx.HTTPError:
                    assert process.poll() is None and time.time() < deadline, "aigw serve did not start"
                    time.sleep(0.2)
            assert health.status_code == 200 and health.json()["providers"]["ollama"]["status"] == "up"
            answer = httpx.post(
                url + "/v1/chat/completions",
                json={"model": "auto", "messages": [{"role": "user", "content": "from the wheel"}]},
            ).json()
            assert answer["choices"][0]["message"]["content"] == "echo from llama3.2: from the wheel"
            assert upstream.requests[-1]["path"] == "/v1/chat/completions"
        finally:
            process.terminate()
            output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert "site-packages/proxy/config.example.yaml" in output
