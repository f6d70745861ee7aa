"""A fast fake upstream: nginx serving canned OpenAI JSON and a 20-chunk SSE stream.

nginx answers from small static files (a POST to a static file is turned into
a GET by `error_page 405 =200 $uri`), so the upstream costs a few microseconds and what is measured is the client, the network stack and the
gateway. Two prefixes keep one config simple:

    /json/v1/chat/completions  a chat.completion object with usage
    /sse/v1/chat/completions   20 chunk events, a usage chunk, then [DONE]
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import orjson

from .procs import free_port, pinned, wait_for_port

STREAM_CHUNKS = 20
MODEL = "bench-model"


def completion_json() -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Hello! This is a canned answer from the bench upstream.",
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 11, "total_tokens": 23},
        }
    )


def stream_body(chunks: int = STREAM_CHUNKS) -> bytes:
    """`chunks` chunk events (role first, finish_reason last), a usage chunk, then [DONE]."""
    events = []
    for index in range(chunks):
        delta: dict[str, str] = {"content": f"tok{index} "}
        if index == 0:
            delta = {"role": "assistant", "content": ""}
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if index == chunks - 1 else None}],
        }
        events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    usage = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": chunks - 1, "total_tokens": 12 + chunks - 1},
    }
    events.append(b"data: " + orjson.dumps(usage) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return b"".join(events)


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    tcp_nodelay on;
    client_body_buffer_size 64k;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {dir}/www;
        types {{ }}
        etag off;
        location /json/ {{ default_type application/json; error_page 405 =200 $uri; }}
        location /sse/ {{ default_type text/event-stream; error_page 405 =200 $uri; }}
    }}
}}
"""


class Nginx:
    """One nginx worker on a free port, pinned to `cpu`; stop() removes its files."""

    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="aigw-bench-nginx-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = self.dir / "nginx.conf"
        for prefix, content in (("json", completion_json()), ("sse", stream_body())):
            folder = self.dir / "www" / prefix / "v1"
            folder.mkdir(parents=True)
            (folder / "chat").mkdir()
            (folder / "chat" / "completions").write_bytes(content)
            (folder / "models").write_bytes(b'{"object":"list","data":[]}')
        conf.write_text(NGINX_CONF.format(dir=self.dir, port=self.port))
        self.process = subprocess.Popen(
            pinned([binary, "-c", str(conf), "-p", str(self.dir), "-e", str(self.dir / "error.log")], self.cpu),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port, self.process)
        except RuntimeError:
            err = self.process.stderr.read().decode() if self.process.stderr else ""
            raise RuntimeError(f"nginx did not start: {err}") from None
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        time.sleep(0.05)
        shutil.rmtree(self.dir, ignore_errors=True)
