"""`aigw sql` and `aigw usage`: through the running gateway, and from the file when none runs."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from proxy import config_from_dict, create_app
from proxy.cli.main import main
from tests.conftest import base_config
from tests.fakes import FakeUpstream, ServerThread, free_port

ADMIN = "cli-admin-token"


def aigw(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_sql_and_usage_while_running_and_after(
    capsys: pytest.CaptureFixture[str], upstream: FakeUpstream, tmp_path: Path
) -> None:
    port = free_port()
    raw: dict[str, Any] = base_config(
        upstream.url,
        None,
        tmp_path / "data",
        server={"data_dir": str(tmp_path / "data"), "admin_token": ADMIN, "port": port},
    )
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    server = ServerThread(create_app(config_from_dict(raw, env={})), port=port).start()
    try:
        for project in ("alpha", "alpha", "beta"):
            httpx.post(
                server.url + "/v1/chat/completions",
                headers={"x-gateway-project": project},
                json={"model": "cheap-mini", "messages": [{"role": "user", "content": project}]},
            )
        query = "SELECT project, count(*) AS n FROM usage GROUP BY project ORDER BY project"
        deadline = time.time() + 20
        while True:
            code, out, err = aigw(capsys, "sql", "--config", str(config_path), "--format", "json", query)
            assert code == 0, err
            if json.loads(out) == [{"project": "alpha", "n": 2}, {"project": "beta", "n": 1}] or time.time() > deadline:
                break
            time.sleep(0.2)
        assert json.loads(out) == [{"project": "alpha", "n": 2}, {"project": "beta", "n": 1}]

        code, out, _ = aigw(capsys, "sql", "--config", str(config_path), query)
        lines = out.splitlines()
        assert lines[0].split() == ["project", "n"] and lines[2].split() == ["alpha", "2"]
        assert lines[-1] == "(2 rows)"

        code, out, err = aigw(capsys, "sql", "--config", str(config_path), "DELETE FROM usage")
        assert code == 1 and "only SELECT" in err and out == ""

        code, out, _ = aigw(capsys, "usage", "--config", str(config_path), "--by", "project")
        assert code == 0 and out.splitlines()[0].split()[:2] == ["project", "requests"]
        assert any(line.split()[:2] == ["alpha", "2"] for line in out.splitlines())
    finally:
        server.stop()

    # No gateway now: the CLI reads a read-only snapshot of the file itself.
    code, out, err = aigw(
        capsys,
        "sql",
        "--config",
        str(config_path),
        "--format",
        "csv",
        "SELECT project, count(*) AS n FROM usage GROUP BY ALL ORDER BY 1",
    )
    assert code == 0, err
    assert list(csv.reader(io.StringIO(out))) == [["project", "n"], ["alpha", "2"], ["beta", "1"]]
    code, _, err = aigw(capsys, "sql", "--config", str(config_path), "SELECT * FROM read_csv('/etc/passwd')")
    assert code == 1 and "read_csv is not allowed" in err
