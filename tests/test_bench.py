"""`python -m bench` runs end to end (a smoke run: figures are printed, never asserted)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.skipif(
    not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()) or not shutil.which("wrk"),
    reason="the benchmark needs nginx and wrk (.ci/run installs them)",
)
def test_quick_benchmark_runs_through_the_gateway_without_errors() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--connections", "1", "--first-events", "20", "--features", "auto"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    gateway_rows = [line for line in lines if line.startswith("| gateway | 1 |")]
    assert len(gateway_rows) == 1, result.stdout
    requests_per_second = float(gateway_rows[0].split("|")[3].replace(",", ""))
    assert requests_per_second > 0
    assert any(line.startswith("| gateway+auto |") for line in lines), result.stdout
    assert "| issue 11 target |" in result.stdout
