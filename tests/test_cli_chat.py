"""The interactive `aigw chat`, driven in a pseudo-terminal as a person would use it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.cli_helpers import cli_env
from tests.conftest import base_config
from tests.fakes import FakeUpstream, ServerThread

PROMPT = "you> "


@pytest.fixture
def gw(start_gateway: Callable[[dict[str, Any]], ServerThread], upstream: FakeUpstream, tmp_path: Path) -> str:
    return start_gateway(base_config(upstream.url, None, tmp_path / "data")).url


def spawn(url: str, cwd: Path, *args: str) -> pexpect.spawn:
    env = cli_env(url, TERM="xterm-256color")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "proxy", "chat", *args],
        cwd=str(cwd),
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 120),
    )
    child.expect_exact(PROMPT)
    return child


def chat_requests(upstream: FakeUpstream) -> list[dict[str, Any]]:
    return [r["body"] for r in upstream.requests if r["path"].endswith("/chat/completions")]


def wait_for(condition: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_two_turns_remembered_then_ctrl_c_then_exit(gw: str, upstream: FakeUpstream, tmp_path: Path) -> None:
    child = spawn(gw, tmp_path)
    child.sendline("my name is Ada [[fake:text=Hello Ada]]")
    child.expect(r"(?<!=)Hello Ada")  # the answer, not the echoed `text=`
    child.expect_exact(PROMPT)
    first = chat_requests(upstream)[-1]["messages"]
    assert f"Working directory: {tmp_path}" in first[-1]["content"]

    child.sendline("what is my name? [[fake:text=Your name is Ada]]")
    child.expect(r"(?<!=)Your name is Ada")
    child.expect_exact(PROMPT)
    second = chat_requests(upstream)[-1]["messages"]
    contents = [m["content"] for m in second]
    assert any("my name is Ada" in c for c in contents) and "Hello Ada" in contents  # the gateway kept the history
    assert "Working directory" not in second[-1]["content"]  # context went with the first turn only

    # A long, slow answer; Ctrl-C stops it and the chat goes on.
    child.sendline(
        "count slowly [[fake:text=one two three four five six seven eight nine ten,chunks=10,chunk_delay=0.4]]"
    )
    child.expect(r"(?<!=)one two")  # the answer itself, not the echo of the typed `text=one two`
    child.sendintr()
    child.expect_exact("answer stopped")
    child.expect_exact(PROMPT)
    assert wait_for(lambda: upstream.stream_closed_early >= 1), "the upstream stream was not cut"

    child.sendline("/tier L1")
    child.expect_exact("model: L1")
    child.sendline("and now? [[fake:text=From the mini model]]")
    child.expect(r"(?<!=)From the mini model")
    child.expect_exact(PROMPT)
    assert chat_requests(upstream)[-1]["model"] == "cheap-mini"

    child.sendline("/cost")
    child.expect(r"3 turns, \d+ input \+ \d+ output tokens, \$0\.0000\d+")
    child.sendline("/clear")
    child.expect_exact("conversation cleared")
    child.sendline("fresh start [[fake:text=Fresh]]")
    child.expect(r"(?<!=)Fresh")
    child.expect_exact(PROMPT)
    assert not any("Ada" in m["content"] for m in chat_requests(upstream)[-1]["messages"])

    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_d_leaves_and_errors_do_not(gw: str, upstream: FakeUpstream, tmp_path: Path) -> None:
    child = spawn(gw, tmp_path, "--model", "no-such-model")
    child.sendline("hi")
    child.expect_exact("no-such-model")
    child.expect_exact(PROMPT)
    child.sendline("/model auto")
    child.expect_exact("model: auto")
    child.sendline("/bogus")
    child.expect_exact("unknown command /bogus")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
