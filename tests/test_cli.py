"""`aigw chat/code/diff` as a user runs them: a real process against a gateway over fake upstreams."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import aigw, git
from tests.conftest import base_config
from tests.fakes import FakeUpstream, ServerThread, free_port

APP = """import sys


def load(path):
    handle = open(path)
    return handle.read()


def main():
    print(load(sys.argv[1]))
"""


@pytest.fixture
def gw(start_gateway: Callable[[dict[str, Any]], ServerThread], upstream: FakeUpstream, tmp_path: Path) -> str:
    return start_gateway(base_config(upstream.url, None, tmp_path / "data")).url


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text(APP)
    (root / "README.md").write_text("# demo\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "start")
    (root / "README.md").write_text("# demo\nchanged\n")
    return root


def user_text(upstream: FakeUpstream) -> str:
    messages = upstream.requests[-1]["body"]["messages"]
    return "\n".join(m["content"] for m in messages)


def test_one_shot_chat_streams_the_answer_with_context(gw: str, upstream: FakeUpstream, repo: Path) -> None:
    done = aigw(gw, "chat", "what is async/await? [[fake:text=It is *sugar* over promises.]]", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "It is *sugar* over promises.\n"  # piped: plain text, no colour codes
    assert done.stderr == ""
    sent = upstream.requests[-1]["body"]
    assert sent["stream"] is True
    text = user_text(upstream)
    assert f"Working directory: {repo}" in text
    assert "M README.md" in text  # git status travels as context


def test_chat_reads_the_question_from_stdin(gw: str, upstream: FakeUpstream, tmp_path: Path) -> None:
    done = aigw(gw, "chat", cwd=tmp_path, stdin="piped question [[fake:text=piped answer]]\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "piped answer\n"
    assert "piped question" in user_text(upstream)


def test_chat_json(gw: str, upstream: FakeUpstream, tmp_path: Path) -> None:
    done = aigw(gw, "chat", "--json", "--model", "L1", "hi [[fake:text=hello back]]", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["message"] == "hello back"
    assert answer["model"] == "cheap-mini" and answer["patch"] is None
    assert answer["tokens"]["output"] == 2 and answer["tokens"]["total"] == answer["tokens"]["input"] + 2
    expected = (answer["tokens"]["input"] * 0.15 + 2 * 0.60) / 1_000_000
    assert answer["cost"] == pytest.approx(expected, rel=0.01)


def test_code_review_from_stdin(gw: str, upstream: FakeUpstream, tmp_path: Path) -> None:
    done = aigw(
        gw, "code", "-", "review for bugs [[fake:text=The file handle is never closed.]]", cwd=tmp_path, stdin=APP
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "The file handle is never closed.\n"
    text = user_text(upstream)
    assert "handle = open(path)" in text and "review for bugs" in text
    assert "code" in upstream.requests[-1]["body"]["messages"][0]["content"].lower()


def test_code_review_json_of_a_file(gw: str, upstream: FakeUpstream, repo: Path) -> None:
    done = aigw(gw, "code", "src/app.py", "--json", "review [[fake:text=Looks fine.]]", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["message"] == "Looks fine."
    assert "File: src/app.py" in user_text(upstream)


def test_context_is_cut_to_the_size_limit(gw: str, upstream: FakeUpstream, tmp_path: Path) -> None:
    big = "x = 1\n" * 10_000
    done = aigw(gw, "code", "-", "review [[fake:text=ok]]", cwd=tmp_path, stdin=big, AIGW_CONTEXT_BYTES="2000")
    assert done.returncode == 0, done.stderr
    text = user_text(upstream)
    assert len(text) < 3000
    assert "more bytes of stdin not shown" in text


# A patch as models write it: no `a/` `b/` prefixes, a wrong hunk count, prose around it.
MODEL_PATCH = """I close the file with a `with` block.

```diff
--- src/app.py
+++ src/app.py
@@ -3,4 +3,4 @@
 
 def load(path):
-    handle = open(path)
-    return handle.read()
+    with open(path) as handle:
+        return handle.read()
 
```
"""


def test_diff_prints_a_patch_that_git_applies(gw: str, upstream: FakeUpstream, repo: Path) -> None:
    upstream.script.append({"text": MODEL_PATCH})
    done = aigw(gw, "diff", "app.py", "close the file", cwd=repo / "src")  # from a subdirectory
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("--- a/src/app.py\n+++ b/src/app.py\n@@ -3,5 +3,5 @@")
    assert "open(path)" in git(repo, "show", "HEAD:src/app.py").stdout
    applied = git(repo, "apply", stdin=done.stdout)
    assert applied.returncode == 0, applied.stderr
    assert "    with open(path) as handle:\n        return handle.read()\n" in (repo / "src" / "app.py").read_text()
    assert "src/app.py" in user_text(upstream) and "close the file" in user_text(upstream)


def test_diff_from_a_whole_new_file(gw: str, upstream: FakeUpstream, repo: Path) -> None:
    new = APP.replace("print(load(sys.argv[1]))", "print(load(sys.argv[1]).strip())")
    upstream.script.append({"text": f"Here is the file:\n\n```python\n{new}```\n"})
    done = aigw(gw, "diff", "src/app.py", "strip output", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert git(repo, "apply", stdin=done.stdout).returncode == 0
    assert (repo / "src" / "app.py").read_text() == new


def test_diff_that_does_not_apply_is_not_printed(gw: str, upstream: FakeUpstream, repo: Path) -> None:
    wrong = MODEL_PATCH.replace("def load(path):", "def read_it(path):")
    upstream.script.append({"text": wrong})
    done = aigw(gw, "diff", "src/app.py", "close the file", cwd=repo)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "does not apply" in done.stderr and "read_it" in done.stderr

    upstream.script.append({"text": wrong})
    done = aigw(gw, "diff", "--json", "src/app.py", "close the file", cwd=repo)
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["applies"] is False and result["path"] == "src/app.py" and result["problem"]


def test_diff_json(gw: str, upstream: FakeUpstream, repo: Path) -> None:
    upstream.script.append({"text": MODEL_PATCH})
    done = aigw(gw, "diff", "--json", "src/app.py", "close the file", cwd=repo)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["applies"] is True and result["problem"] is None
    assert result["message"].startswith("I close the file")
    assert git(repo, "apply", "--check", stdin=result["patch"]).returncode == 0


def test_exit_codes_and_errors_on_stderr(gw: str, tmp_path: Path) -> None:
    missing = aigw(gw, "code", "nope.py", "review", cwd=tmp_path)
    assert missing.returncode == 2 and "nope.py: no such file" in missing.stderr and missing.stdout == ""

    unknown = aigw(gw, "chat", "--model", "no-such-model", "hi", cwd=tmp_path)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "no-such-model" in unknown.stderr and "model_not_found" in unknown.stderr

    as_json = aigw(gw, "chat", "--json", "--model", "no-such-model", "hi", cwd=tmp_path)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["error"]["code"] == "model_not_found"

    upstream_down = aigw(gw, "chat", "hi [[fake:status=500]]", cwd=tmp_path)
    assert upstream_down.returncode == 1 and "500" in upstream_down.stderr

    nobody = aigw(f"http://127.0.0.1:{free_port()}", "chat", "hi", cwd=tmp_path)
    assert nobody.returncode == 3 and "cannot reach the gateway" in nobody.stderr

    bad_setting = aigw(gw, "chat", "hi", cwd=tmp_path, AIGW_TIMEOUT="soon")
    assert bad_setting.returncode == 2 and "AIGW_TIMEOUT" in bad_setting.stderr

    nothing = aigw(gw, "chat", cwd=tmp_path, stdin="")
    assert nothing.returncode == 2 and "nothing to ask" in nothing.stderr


def test_mcp_endpoint_is_read_like_aigw_url(gw: str, tmp_path: Path) -> None:
    done = aigw(
        "http://127.0.0.1:1", "chat", "hi [[fake:text=via mcp endpoint]]", cwd=tmp_path, AIGW_URL="", MCP_ENDPOINT=gw
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "via mcp endpoint\n"
