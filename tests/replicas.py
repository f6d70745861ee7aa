"""Real `aigw serve` processes sharing one Redis, as the workers and replicas of a deployment.

Shared by the tests that need more than one process (budgets, rate limits,
provider health, the scale-out test). Each process runs in its own session, so
a test can SIGKILL one with all its workers, as a crashed host would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import REDIS_URL
from tests.fakes import free_port

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "replicas-admin-token"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell, with this checkout's `proxy` first on the path."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    return {**keep, "PYTHONPATH": str(ROOT), **extra}


def wait_until(condition: Callable[[], bool], timeout: float = 20, what: str = "condition") -> float:
    """Poll `condition` until it holds; return the seconds it took, fail after `timeout`."""
    started = time.monotonic()
    deadline = started + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not reached within {timeout:g}s"
        time.sleep(0.05)
    return time.monotonic() - started


def admin_headers(admin: str = ADMIN) -> dict[str, str]:
    return {"authorization": f"Bearer {admin}"}


@dataclass
class Replica:
    """One `aigw serve` process (and its workers)."""

    url: str
    process: subprocess.Popen[str]
    output: str = ""  # what it printed (its log), once it has stopped

    def pids(self) -> set[int]:
        """The process and its workers: everything in its session."""
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getsid(int(entry.name)) == self.process.pid:
                        found.add(int(entry.name))
                except OSError:
                    continue  # gone meanwhile
        return found

    def kill(self) -> None:
        """SIGKILL the process and all its workers at once: no shutdown, no lock released."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@contextmanager
def gateway_processes(
    tmp_path: Path, config: dict[str, Any], redis_prefix: str, *, workers: int = 1, count: int = 1, admin: str = ADMIN
) -> Iterator[list[Replica]]:
    """`count` processes of `workers` workers each, on their own ports, one `config.yaml`, one Redis prefix."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = clean_env(REDIS_URL=REDIS_URL, REDIS_PREFIX=redis_prefix, AIGW_ADMIN_TOKEN=admin, LOG_LEVEL="warning")
    replicas = []
    for _ in range(count):
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", "--port", str(port), "--workers", str(workers)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        replicas.append(Replica(f"http://127.0.0.1:{port}", process))
    try:
        for replica in replicas:
            deadline = time.time() + 60
            while True:
                try:
                    if httpx.get(replica.url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert replica.process.poll() is None, replica.process.communicate()[0]
                assert time.time() < deadline, "gateway did not start"
                time.sleep(0.2)
        yield replicas
    finally:
        for replica in replicas:
            if replica.process.poll() is None:
                replica.process.terminate()
        for replica in replicas:
            try:
                output, _ = replica.process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(replica.process.pid, signal.SIGKILL)
                output, _ = replica.process.communicate()
            replica.output = output
        # Every process is reaped before any check can fail, so none outlives the test.
        for replica in replicas:
            assert "Traceback" not in replica.output, replica.output


def project_report(url: str, project: str, admin: str = ADMIN) -> dict[str, Any]:
    response = httpx.get(f"{url}/admin/projects/{project}", headers=admin_headers(admin), timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_released(url: str, project: str, admin: str = ADMIN) -> dict[str, Any]:
    """The project's report once no reservation is left open."""
    reports: list[dict[str, Any]] = []

    def released() -> bool:
        reports.append(project_report(url, project, admin))
        return bool(reports[-1]["spend"]["total"]["reserved_usd"] == 0 and reports[-1]["pending_reservations"] == 0)

    wait_until(released, 30, "budget reservations released")
    return reports[-1]
