"""LiteLLM and Portkey, installed outside the repository and pointed at the same nginx.

Installed on first use under `--peers-dir` (default ~/.cache/aigw-bench-peers):
LiteLLM with pip into its own venv (`litellm[proxy]`), Portkey's gateway with
npm into its own prefix. Each runs as one process pinned to the gateway's CPU,
with its logging turned down, and answers the same two requests as the gateway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from .load import Request
from .procs import free_port, pinned, stop_process, wait_for_port
from .targets import Target, chat_body
from .upstream import Nginx

Say = Callable[[str], None]
PORTKEY_VERSION = "1.15.2"


def _run(command: list[str], say: Say, log: Path) -> None:
    say(f"installing: {' '.join(command)} (log: {log})")
    with log.open("ab") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"install failed ({done.returncode}); see {log}")


def _start(
    name: str, command: list[str], port: int, cwd: Path, env: dict[str, str], cpu: int | None
) -> tuple[subprocess.Popen[bytes], Callable[[], None]]:
    log = (cwd / f"{name}.log").open("wb")
    process = subprocess.Popen(pinned(command, cpu), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, timeout=300)
    except RuntimeError:
        log.close()
        raise RuntimeError(f"{name} did not start; see {cwd / (name + '.log')}") from None

    def stop() -> None:
        stop_process(process)
        log.close()

    return process, stop


def litellm(nginx: Nginx, cpu: int | None, root: Path, say: Say) -> Target:
    venv = root / "litellm"
    binary = venv / "bin" / "litellm"
    if not binary.exists():
        root.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "venv", str(venv)], say, root / "litellm-install.log")
        _run([str(venv / "bin" / "pip"), "install", "-q", "litellm[proxy]"], say, root / "litellm-install.log")
    port = free_port()
    config = {
        "model_list": [
            {
                "model_name": "bench-json",
                "litellm_params": {
                    "model": "openai/bench-model",
                    "api_base": nginx.url + "/json/v1",
                    "api_key": "sk-bench",
                },
            },
            {
                "model_name": "bench-sse",
                "litellm_params": {
                    "model": "openai/bench-model",
                    "api_base": nginx.url + "/sse/v1",
                    "api_key": "sk-bench",
                },
            },
        ],
        "litellm_settings": {"telemetry": False, "set_verbose": False},
    }
    (root / "litellm-config.yaml").write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": "sk-bench-master-key-0123456789abcdef",
        "LITELLM_LOG": "ERROR",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
    }
    process, stop = _start(
        "litellm",
        [
            str(binary),
            "--config",
            str(root / "litellm-config.yaml"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        port,
        root,
        env,
        cpu,
    )
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    auth = (("Authorization", "Bearer sk-bench-master-key-0123456789abcdef"),)
    return Target(
        "litellm",
        Request(url, chat_body("bench-json", False), auth),
        Request(url, chat_body("bench-sse", True), auth),
        pid=process.pid,
        stop=stop,
    )


def portkey(nginx: Nginx, cpu: int | None, root: Path, say: Say) -> Target:
    prefix = root / "portkey"
    package = prefix / "node_modules" / "@portkey-ai" / "gateway"
    if not package.exists():
        root.mkdir(parents=True, exist_ok=True)
        npm = shutil.which("npm") or "npm"
        _run(
            [npm, "install", "--prefix", str(prefix), f"@portkey-ai/gateway@{PORTKEY_VERSION}"],
            say,
            root / "portkey-install.log",
        )
    node = shutil.which("node") or "node"
    port = free_port()
    process, stop = _start(
        "portkey",
        [node, str(package / "build" / "start-server.js"), f"--port={port}"],
        port,
        root,
        dict(os.environ),
        cpu,
    )
    url = f"http://127.0.0.1:{port}/v1/chat/completions"

    def headers(prefix_path: str) -> tuple[tuple[str, str], ...]:
        return (
            ("Authorization", "Bearer sk-bench"),
            ("x-portkey-provider", "openai"),
            ("x-portkey-custom-host", nginx.url + prefix_path),
        )

    return Target(
        "portkey",
        Request(url, chat_body("bench-model", False), headers("/json/v1")),
        Request(url, chat_body("bench-model", True), headers("/sse/v1")),
        pid=process.pid,
        stop=stop,
    )


PEERS = {"litellm": litellm, "portkey": portkey}


def start(name: str, nginx: Nginx, cpu: int | None, root: Path, say: Say) -> Target:
    if name not in PEERS:
        raise SystemExit(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    return PEERS[name](nginx, cpu, root, say)
