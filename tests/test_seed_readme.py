"""The seed README's curl examples for the stateful API, run as written against a gateway."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import REDIS_URL, base_config
from tests.fakes import FakeUpstream, ServerThread
from tests.test_conversations import StartGateway

# Copied from the seed's README (/work/shared/seed), only joined onto one line each.
EXAMPLES = {
    "route": """curl -X POST http://localhost:3000/v1/route -H "Content-Type: application/json" -d '{ "conversationId": "conv-123", "message": "Explain async/await in JavaScript", "userId": "user-1", "qualityLevel": "normal" }'""",
    "code-agent": """curl -X POST http://localhost:3000/v1/code-agent -H "Content-Type: application/json" -d '{ "conversationId": "conv-123", "task": "Create a React component for user profile", "files": ["src/components/UserProfile.tsx"] }'""",
    "chat": """curl -X POST http://localhost:3000/v1/chat -H "Content-Type: application/json" -d '{ "conversationId": "conv-123", "message": "What did we discuss earlier?" }'""",
    "context": """curl http://localhost:3000/v1/context/conv-123""",
    "mcp-cli": """curl -X POST http://localhost:3000/v1/mcp-cli -H "Content-Type: application/json" -d '{ "mode": "chat", "message": "What is async/await?", "context": { "cwd": "/path/to/project", "files": ["src/index.ts"], "gitStatus": "modified: src/app.ts" } }'""",
}


def run(example: str, gateway: ServerThread) -> Any:
    command = (
        EXAMPLES[example].replace("http://localhost:3000", gateway.url) + " --silent --show-error --fail-with-body"
    )
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, (example, done.stdout, done.stderr)
    return json.loads(done.stdout)


def test_seed_readme_examples_run_as_written(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> None:
    gateway = start_gateway(base_config(upstream.url, None, tmp_path, redis_url=REDIS_URL, redis_prefix=redis_prefix))

    routed = run("route", gateway)
    assert set(routed) >= {"result", "routing", "context", "performance"}
    assert set(routed["result"]) >= {"response", "model", "provider"}
    assert routed["result"]["response"].endswith("Explain async/await in JavaScript")
    assert set(routed["routing"]) >= {"summary", "fromCache"}
    assert routed["context"]["conversationId"] == "conv-123"
    performance = routed["performance"]
    assert performance["durationMs"] >= 0 and isinstance(performance["cost"], float)
    assert performance["tokens"]["input"] > 0 and performance["tokens"]["output"] > 0

    coded = run("code-agent", gateway)
    assert coded["context"]["conversationId"] == "conv-123"
    assert "code" in coded["result"] and "todos" in coded["result"]
    assert "File: src/components/UserProfile.tsx" in upstream.requests[-1]["body"]["messages"][-1]["content"]

    chatted = run("chat", gateway)
    assert chatted["context"]["conversationId"] == "conv-123"
    earlier = [m["content"] for m in upstream.requests[-1]["body"]["messages"]]
    assert "Explain async/await in JavaScript" in earlier  # the first example's turn is remembered

    context = run("context", gateway)
    assert context["conversationId"] == "conv-123"
    assert context["metadata"]["userId"] == "user-1" and context["metadata"]["messageCount"] == 6
    assert set(context) >= {"summary", "messages", "todos", "metadata"}

    cli = run("mcp-cli", gateway)
    assert set(cli) >= {"message", "patch", "model", "tokens", "cost"}
    assert cli["patch"] is None and set(cli["tokens"]) == {"input", "output", "total"}
    assert "modified: src/app.ts" in upstream.requests[-1]["body"]["messages"][-1]["content"]
