"""The usage log on real DuckDB (and real Redis): rows, exact and estimated cost, SQL refusals."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import httpx
import openai
import pytest

from proxy import config_from_dict
from proxy.types import UsageEvent
from proxy.usage.records import event_record
from proxy.usage.spool import Spool
from proxy.usage.store import UsageStore
from tests.conftest import REDIS_URL, assert_error_shape, base_config
from tests.fakes import FakeUpstream, ServerThread

Start = Callable[[dict[str, Any]], ServerThread]
ADMIN = "test-admin-token"


def config(upstream: FakeUpstream, data_dir: Path, **overrides: Any) -> dict[str, Any]:
    return base_config(
        upstream.url, None, data_dir, server={"data_dir": str(data_dir), "admin_token": ADMIN}, **overrides
    )


def sql(server: ServerThread, query: str, token: str = ADMIN) -> httpx.Response:
    return httpx.post(
        server.url + "/v1/admin/sql", json={"sql": query}, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


def rows(server: ServerThread, query: str) -> list[list[Any]]:
    response = sql(server, query)
    assert response.status_code == 200, response.text
    result: list[list[Any]] = response.json()["rows"]
    return result


def wait_rows(server: ServerThread, expected: int, where: str = "true") -> None:
    deadline = time.time() + 20
    while (count := rows(server, f"SELECT count(*) FROM usage WHERE {where}")[0][0]) != expected:
        assert count < expected and time.time() < deadline, f"{count} rows, expected {expected}"
        time.sleep(0.1)


def price(prompt: int, completion: int, cached: int = 0) -> Decimal:
    """cheap-mini in base_config: input 0.15, cached input 0.075, output 0.60 per 1M tokens."""
    total = (
        Decimal(prompt - cached) * Decimal("0.15")
        + Decimal(cached) * Decimal("0.075")
        + Decimal(completion) * Decimal("0.60")
    )
    return total / Decimal(1_000_000)


def test_every_request_becomes_one_row_with_exact_cost(
    start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    server = start_gateway(config(upstream, tmp_path))
    client = openai.OpenAI(
        base_url=server.url + "/v1", api_key="unused", max_retries=0, default_headers={"x-gateway-project": "alpha"}
    )
    raw = client.chat.completions.with_raw_response.create(
        model="cheap-mini", messages=[{"role": "user", "content": "count me [[fake:cached_tokens=8]]"}]
    )
    answer = raw.parse()
    assert answer.usage is not None
    expected = price(answer.usage.prompt_tokens, answer.usage.completion_tokens, cached=8)
    assert Decimal(raw.headers["x-gateway-cost"]) == expected
    request_id = raw.headers["x-request-id"]
    wait_rows(server, 1)
    row = rows(
        server,
        "SELECT request_id, project, routed_model, provider, tier, input_tokens, output_tokens, "
        "cached_tokens, cost_usd, cost_estimated, status, cache_hit, latency_ms FROM usage",
    )[0]
    assert row[:8] == [
        request_id,
        "alpha",
        "cheap-mini",
        "fakeai",
        "L1",
        answer.usage.prompt_tokens,
        answer.usage.completion_tokens,
        8,
    ]
    assert Decimal(str(row[8])) == expected and row[9] is False and row[10] == 200 and row[11] is False
    assert row[12] > 0


def test_a_stream_reports_its_cost_in_the_usage_chunk_and_a_closing_comment(
    start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Headers leave before a stream's cost is known: it follows in the usage chunk and an SSE comment."""
    server = start_gateway(config(upstream, tmp_path))
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="cheap-mini",
            messages=[{"role": "user", "content": "cost?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.model_extra is not None
    expected = price(usage.prompt_tokens, usage.completion_tokens)
    assert Decimal(str(usage.model_extra["cost"])) == expected
    body = {"model": "cheap-mini", "stream": True, "messages": [{"role": "user", "content": "raw [[fake:no_usage]]"}]}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=20) as response:
        text = b"".join(response.iter_bytes()).decode()
    comment = [line for line in text.splitlines() if line.startswith(": x-gateway-cost ")]
    assert len(comment) == 1 and comment[0].endswith(" estimated") and text.rstrip().endswith("data: [DONE]")
    assert Decimal(comment[0].split()[2]) > 0
    wait_rows(server, 2)
    logged = rows(server, "SELECT cost_usd FROM usage WHERE cost_estimated")
    assert [Decimal(str(r[0])) for r in logged] == [Decimal(comment[0].split()[2])]


def test_cost_is_estimated_and_marked_without_upstream_usage(
    start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    server = start_gateway(config(upstream, tmp_path))
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="cheap-mini", messages=[{"role": "user", "content": "no usage here [[fake:no_usage]]"}]
    )
    assert raw.headers["x-gateway-cost-estimated"] == "true" and Decimal(raw.headers["x-gateway-cost"]) > 0
    usage = raw.parse().usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    stream = client.chat.completions.create(
        model="cheap-mini", messages=[{"role": "user", "content": "stream [[fake:no_usage]]"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    wait_rows(server, 2)
    found = rows(
        server,
        "SELECT stream, cost_estimated, cost_usd > 0, input_tokens > 0, output_tokens > 0, ttft_ms "
        "FROM usage ORDER BY stream",
    )
    assert [r[:5] for r in found] == [[False, True, True, True, True], [True, True, True, True, True]]
    assert found[1][5] is not None


def test_cache_hits_are_logged_free_with_their_saving(
    start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    server = start_gateway(config(upstream, tmp_path))
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    for _ in range(2):
        client.chat.completions.create(model="cheap-mini", messages=[{"role": "user", "content": "x"}], temperature=0)
        list(
            client.chat.completions.create(
                model="cheap-mini", messages=[{"role": "user", "content": "y"}], temperature=0, stream=True
            )
        )
    wait_rows(server, 4)
    found = rows(server, "SELECT stream, cache_hit, cost_usd, cache_saved_usd FROM usage ORDER BY stream, cache_hit")
    (miss, hit, stream_miss, stream_hit) = found
    assert (miss[1], hit[1], stream_miss[1], stream_hit[1]) == (False, True, False, True)
    assert hit[2] == 0 and hit[3] == miss[2] > 0
    assert stream_hit[2] == 0 and stream_hit[3] == stream_miss[2] > 0
    savings = rows(server, "SELECT hits, saved_usd FROM cache_savings")
    assert savings[0][0] == 2 and savings[0][1] == pytest.approx(hit[3] + stream_hit[3])


def test_failed_requests_are_logged_with_their_error(
    start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    server = start_gateway(config(upstream, tmp_path))
    url = server.url + "/v1/chat/completions"
    assert httpx.post(url, json={"model": "nope", "messages": [{"role": "user", "content": "x"}]}).status_code == 404
    failing = {"model": "cheap-mini", "messages": [{"role": "user", "content": "[[fake:status=503]]"}]}
    assert httpx.post(url, json=failing).status_code == 503
    wait_rows(server, 2)
    assert rows(server, "SELECT status, error_type FROM usage ORDER BY status") == [
        [404, "model_not_found"],
        [503, "fake_503"],
    ]


def test_sql_endpoint_refuses_anything_but_reading_the_log(
    start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    (tmp_path / "secret.csv").write_text("a\n1\n")
    server = start_gateway(
        config(upstream, tmp_path, usage={"sql_max_rows": 3, "sql_timeout_seconds": 0.5, "sql_max_chars": 500})
    )
    refused = {
        "DELETE FROM usage": "read_only",
        "INSERT INTO usage (ts, request_id) VALUES (now(), 'x')": "read_only",
        "UPDATE usage SET project = 'x'": "read_only",
        "DROP TABLE usage": "read_only",
        "CREATE TABLE t AS SELECT 1": "read_only",
        f"COPY usage TO '{tmp_path}/out.csv'": "read_only",
        f"ATTACH '{tmp_path}/other.duckdb' AS other": "read_only",
        "SET enable_external_access = true": "read_only",
        "PRAGMA database_list": "read_only",
        f"SELECT * FROM read_csv('{tmp_path}/secret.csv')": "read_only",
        f"SELECT * FROM read_text('{tmp_path}/secret.csv')": "read_only",
        f"SELECT * FROM glob('{tmp_path}/*')": "read_only",
        f"SELECT * FROM read_parquet('{tmp_path}/x.parquet')": "read_only",
        "SELECT * FROM query('DELETE FROM usage')": "read_only",
        "SELECT 1; DELETE FROM usage": "invalid_sql",
        "SELECT " + "1 + " * 200 + "1": "query_too_long",
        "SELEC nonsense": "invalid_sql",
        "SELECT count(*) FROM range(100000000000)": "query_timeout",
    }
    for query, code in refused.items():
        response = sql(server, query)
        assert response.status_code == 400, (query, response.text)
        assert_error_shape(response.json(), code=code)
    # The connection itself cannot read files, even through a replacement scan.
    sneaky = sql(server, f"SELECT * FROM '{tmp_path}/secret.csv'")
    assert sneaky.status_code == 400 and "a\n1" not in sneaky.text
    limited = sql(server, "SELECT * FROM range(10)").json()
    assert limited["row_count"] == 3 and limited["truncated"] is True
    assert rows(server, "SELECT count(*) FROM usage") == [[0]]  # nothing was written or deleted
    denied = sql(server, "SELECT 1", token="wrong")
    assert denied.status_code == 401
    assert_error_shape(denied.json(), code="admin_token_required")


def test_shipped_views_answer(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    server = start_gateway(config(upstream, tmp_path))
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    for model in ("cheap-mini", "cheap-mini", "free-small"):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "v"}])
    wait_rows(server, 3)
    by_model = {r[0]: r for r in rows(server, "SELECT model, requests, cost_usd FROM cost_by_model")}
    assert by_model["cheap-mini"][1] == 2 and by_model["free-small"][1] == 1 and by_model["cheap-mini"][2] > 0
    assert rows(server, "SELECT tier, requests FROM cost_by_tier ORDER BY tier") == [["L0", 1], ["L1", 2]]
    assert rows(server, "SELECT project, requests FROM cost_by_project") == [["default", 3]]
    assert rows(server, "SELECT sum(requests) FROM usage_daily") == [[3]]
    latency = rows(server, "SELECT model, p50_ms, p95_ms, p99_ms FROM latency_by_model WHERE model = 'cheap-mini'")
    assert 0 < latency[0][1] <= latency[0][2] <= latency[0][3]
    assert rows(server, "SELECT count(*) FROM escalations") == [[0]]


def test_gateways_sharing_redis_write_one_log(
    redis_prefix: str, start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Two gateways (as two workers would) publish to one stream; one ingester writes; both answer SQL."""
    # Separate data dirs, as on two hosts: the rows land in the ingester's file either way.
    first = start_gateway(config(upstream, tmp_path / "a", redis_url=REDIS_URL, redis_prefix=redis_prefix))
    second = start_gateway(config(upstream, tmp_path / "b", redis_url=REDIS_URL, redis_prefix=redis_prefix))
    # Election is asynchronous (the winner starts its writer process first): wait for it.
    deadline = time.monotonic() + 20
    while True:
        leaders = [httpx.get(s.url + "/health").json()["usage"]["ingester"] for s in (first, second)]
        if sorted(leaders) == [False, True] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sorted(leaders) == [False, True]
    ids: list[str] = []
    lock = threading.Lock()

    def hit(server: ServerThread, index: int) -> None:
        response = httpx.post(
            server.url + "/v1/chat/completions",
            timeout=20,
            json={"model": "cheap-mini", "messages": [{"role": "user", "content": f"n{index}"}]},
        )
        assert response.status_code == 200
        with lock:
            ids.append(response.headers["x-request-id"])

    threads = [threading.Thread(target=hit, args=((first, second)[i % 2], i)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for server in (first, second):
        wait_rows(server, 40)
        assert rows(server, "SELECT count(DISTINCT request_id) FROM usage") == [[40]]
    logged = {r[0] for r in rows(second, "SELECT request_id FROM usage LIMIT 100")}
    assert logged == set(ids)


def test_spool_spills_to_disk_when_the_store_is_slow_and_loses_nothing(tmp_path: Path) -> None:
    store = UsageStore(tmp_path / "usage.duckdb")
    released = threading.Event()

    def slow_insert(records: list[dict[str, Any]]) -> None:
        released.wait()  # DuckDB held up: nothing can be written yet
        store.insert(records)

    spool = Spool(
        slow_insert,
        tmp_path / "spill",
        name="direct",
        batch_size=50,
        flush_interval=0.05,
        max_pending=100,
        convert=event_record,
    )
    for index in range(1000):
        spool.put(UsageEvent(request_id=f"r{index}", started_at=time.time(), endpoint="/x"))
    deadline = time.time() + 10
    while spool.spilled < 1000 - 100 - 50 and time.time() < deadline:
        time.sleep(0.02)
    assert len(spool._pending) <= 100  # memory stays bounded
    assert spool.spilled >= 850 and any((tmp_path / "spill").iterdir())
    released.set()
    spool.close()
    store.close()
    with duckdb.connect(str(tmp_path / "usage.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*), count(DISTINCT request_id) FROM usage").fetchall() == [(1000, 1000)]
    assert not list((tmp_path / "spill").iterdir())


def test_config_rejects_bad_usage_settings(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="usage.max_pending"):
        config_from_dict({"usage": {"max_pending": 0}}, env={})
