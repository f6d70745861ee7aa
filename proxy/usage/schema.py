"""DuckDB schema as numbered migrations, recorded in `_migrations` (after simonw/llm)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

from ..migrations import Migrations

migration = Migrations()


@migration
def m001_usage(db: duckdb.DuckDBPyConnection) -> None:
    db.execute(
        """
        CREATE TABLE usage (
            ts TIMESTAMPTZ NOT NULL,
            request_id VARCHAR NOT NULL,
            endpoint VARCHAR,
            project VARCHAR,
            token_id VARCHAR,
            client VARCHAR,
            conversation_id VARCHAR,
            task VARCHAR,
            complexity VARCHAR,
            tier VARCHAR,
            requested_model VARCHAR,
            routed_model VARCHAR,
            provider VARCHAR,
            input_tokens BIGINT,
            output_tokens BIGINT,
            cached_tokens BIGINT,
            cost_usd DECIMAL(18, 9),
            cost_estimated BOOLEAN,
            latency_ms DOUBLE,
            ttft_ms DOUBLE,
            status INTEGER,
            error_type VARCHAR,
            cache_hit BOOLEAN,
            stream BOOLEAN,
            escalated_from VARCHAR,
            cross_check VARCHAR,
            route_reasons VARCHAR[]
        )
        """
    )


@migration
def m002_cache_saved(db: duckdb.DuckDBPyConnection) -> None:
    """What a cache hit would have cost without the cache (its own cost is $0)."""
    db.execute("ALTER TABLE usage ADD COLUMN cache_saved_usd DECIMAL(18, 9) DEFAULT 0")


@migration
def m003_views(db: duckdb.DuckDBPyConnection) -> None:
    """The shipped views (documented in the README); later changes come as new migrations."""
    answered = "status < 400"
    db.execute(f"""
        CREATE OR REPLACE VIEW usage_daily AS
        SELECT CAST(ts AS DATE) AS day, project, count(*) AS requests,
               sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
               sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE cache_hit) AS cache_hits,
               count(*) FILTER (WHERE NOT ({answered})) AS errors
        FROM usage GROUP BY ALL ORDER BY day DESC, cost_usd DESC
    """)
    db.execute("""
        CREATE OR REPLACE VIEW cost_by_model AS
        SELECT routed_model AS model, provider, count(*) AS requests,
               sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
               sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd,
               count(*) FILTER (WHERE cost_estimated) AS estimated_requests
        FROM usage WHERE routed_model IS NOT NULL GROUP BY ALL ORDER BY cost_usd DESC
    """)
    db.execute("""
        CREATE OR REPLACE VIEW cost_by_tier AS
        SELECT tier, count(*) AS requests, sum(input_tokens) AS input_tokens,
               sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd
        FROM usage WHERE tier IS NOT NULL GROUP BY ALL ORDER BY tier
    """)
    db.execute("""
        CREATE OR REPLACE VIEW cost_by_project AS
        SELECT project, count(*) AS requests, sum(input_tokens) AS input_tokens,
               sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd,
               sum(cache_saved_usd) AS saved_usd
        FROM usage GROUP BY ALL ORDER BY cost_usd DESC
    """)
    db.execute(f"""
        CREATE OR REPLACE VIEW latency_by_model AS
        SELECT routed_model AS model, count(*) AS requests,
               quantile_cont(latency_ms, 0.50) AS p50_ms, quantile_cont(latency_ms, 0.95) AS p95_ms,
               quantile_cont(latency_ms, 0.99) AS p99_ms, avg(ttft_ms) AS avg_ttft_ms
        FROM usage WHERE {answered} AND NOT cache_hit AND routed_model IS NOT NULL
        GROUP BY ALL ORDER BY requests DESC
    """)
    db.execute("""
        CREATE OR REPLACE VIEW cache_savings AS
        SELECT count(*) FILTER (WHERE cache_hit) AS hits, count(*) AS requests,
               coalesce(count(*) FILTER (WHERE cache_hit) / nullif(count(*), 0), 0) AS hit_rate,
               coalesce(sum(cache_saved_usd), 0) AS saved_usd
        FROM usage WHERE routed_model IS NOT NULL
    """)
    db.execute("""
        CREATE OR REPLACE VIEW escalations AS
        SELECT ts, request_id, project, escalated_from, routed_model, tier, status, cost_usd, route_reasons
        FROM usage WHERE escalated_from IS NOT NULL ORDER BY ts DESC
    """)


def migrate(db: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations not yet recorded; return the names applied."""
    return migration.apply(db)
