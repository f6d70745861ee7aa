"""Configuration: `config.yaml` plus the documented environment variables.

This is the only module that reads the environment. `load_config()` returns a
frozen, validated `Config`; everything else receives it. Errors name the key
path (`routing.rules[2].tier: ...`) so a typo is fixed in one look.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

Tier = Literal["L0", "L1", "L2", "L3"]
Task = Literal["chat", "code", "analyze", "create_project"]
Complexity = Literal["low", "medium", "high", "critical"]
ProviderKind = Literal["openai", "anthropic", "demo"]

TIERS: tuple[Tier, ...] = ("L0", "L1", "L2", "L3")
TASKS: tuple[Task, ...] = ("chat", "code", "analyze", "create_project")
PACKAGED_EXAMPLE = Path(__file__).with_name("config.example.yaml")

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    data_dir: str = "./data"
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Bearer token for the admin API and dashboard (AIGW_ADMIN_TOKEN). Unset: one
    # is generated on first start and kept in `data_dir/admin_token` (mode 0600).
    admin_token: str | None = None


class ProviderConfig(_Frozen):
    kind: ProviderKind
    base_url: str = ""
    api_key: str | None = None
    enabled: bool = True
    timeout_seconds: float = Field(120.0, gt=0)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    headers: dict[str, str] = {}
    # Only used when the gateway must decide at start-up whether a keyless local
    # server (Ollama, vLLM) is really there.
    probe: bool = False
    # Models this provider can serve besides those listed under `models`.
    supports_embeddings: bool = False
    supports_completions: bool = False

    @property
    def usable(self) -> bool:
        """A keyed provider without its key would only ever answer 401."""
        if not self.enabled:
            return False
        if self.kind == "demo" or self.probe:
            return True
        return bool(self.api_key)


class Price(_Frozen):
    """USD per one million tokens."""

    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)
    cached_input: float | None = Field(None, ge=0)


class ModelConfig(_Frozen):
    id: str
    provider: str
    tier: Tier
    upstream_id: str | None = None
    price: Price = Price()
    context_window: int = Field(128_000, gt=0)
    tasks: tuple[Task, ...] = TASKS
    enabled: bool = True

    @property
    def upstream_model(self) -> str:
        return self.upstream_id or self.id


class RouteRule(_Frozen):
    """First matching rule decides the tier for a classified request."""

    task: Task | None = None
    complexity: Complexity | None = None
    tier: Tier


class RetryConfig(_Frozen):
    """Retries of one upstream call on 429, 5xx and connection errors."""

    attempts: int = Field(2, ge=1, le=10)  # tries per candidate model; 1 = no retry
    backoff_seconds: float = Field(0.25, ge=0)  # base of the exponential backoff (full jitter)
    max_backoff_seconds: float = Field(8.0, ge=0)
    # A Retry-After longer than this moves on to the next candidate instead of waiting.
    max_retry_after_seconds: float = Field(5.0, ge=0)


class HealthConfig(_Frozen):
    """Passive health per provider and per model, with a circuit breaker."""

    failure_threshold: int = Field(3, ge=1)  # consecutive failures that open the circuit
    error_rate: float = Field(0.5, gt=0, le=1)  # ... or this share of failures over the window
    window: int = Field(20, ge=2)  # recent calls remembered per model
    min_calls: int = Field(10, ge=1)  # calls in the window before the error rate counts
    cooldown_seconds: float = Field(30.0, gt=0)  # open -> half-open (one trial call) after this
    # With Redis: failures of all workers and replicas count towards failure_threshold within this window.
    failure_window_seconds: float = Field(60.0, gt=0)


class OpenRouterFreeConfig(_Frozen):
    """L0 fallback to OpenRouter's zero-priced models when L0 has no usable model."""

    enabled: bool = True
    provider: str = "openrouter"  # the configured provider whose /models list is read
    top: int = Field(5, ge=1, le=50)
    refresh_seconds: float = Field(3600.0, gt=0)


class RoutingConfig(_Frozen):
    default_tier: Tier = "L0"
    max_tier: Tier = "L3"
    complexity_tiers: dict[Complexity, Tier] = {
        "low": "L0",
        "medium": "L1",
        "high": "L2",
        "critical": "L3",
    }
    rules: tuple[RouteRule, ...] = ()
    task_models: dict[Task, tuple[str, ...]] = {}
    # Names a client may send that stand for a tier, a task or a concrete model
    # (an IDE that always sends `gpt-4o`, say).
    aliases: dict[str, str] = {}
    auto_escalate: bool = False
    cross_check: bool = False
    # Tiers switched off (from the dashboard, say): their models are not routed to.
    disabled_tiers: tuple[Tier, ...] = ()
    retry: RetryConfig = RetryConfig()
    health: HealthConfig = HealthConfig()
    # How long an `escalation_required` approval token stays valid (single use).
    escalation_token_ttl_seconds: float = Field(600.0, gt=0)
    # Cross-check also applies to these tasks whatever the quality hint; the judge
    # model (a cheap one) compares prose answers; code and JSON are compared structurally.
    cross_check_tasks: tuple[Task, ...] = ()
    cross_check_judge: str | None = None
    openrouter_free: OpenRouterFreeConfig = OpenRouterFreeConfig()


CacheMode = Literal["auto", "always", "never"]


class CacheRule(_Frozen):
    """First matching rule decides how answers are cached; unset fields match anything."""

    project: str | None = None
    task: Task | None = None
    tier: Tier | None = None
    model: str | None = None
    # auto: only deterministic requests (temperature 0 or a seed, n <= 1);
    # always: every successful answer; never: not even with `x-gateway-cache: force`.
    mode: CacheMode


class CacheConfig(_Frozen):
    enabled: bool = True
    ttl_seconds: int = Field(3600, gt=0)
    # In-process LRU (used when redis_url is unset): total bytes of stored answers.
    memory_max_bytes: int = Field(64 * 1024 * 1024, gt=0)
    max_entry_bytes: int = Field(1024 * 1024, gt=0)
    rules: tuple[CacheRule, ...] = ()


class UsageConfig(_Frozen):
    """The DuckDB usage log and the read-only SQL over it."""

    enabled: bool = True
    batch_size: int = Field(2000, gt=0)
    flush_interval_seconds: float = Field(0.5, gt=0)
    # Events held in memory while DuckDB (or Redis) is slow; beyond this they
    # are spilled to data_dir/usage-spill and written later, never dropped.
    max_pending: int = Field(10_000, gt=0)
    # With Redis: how long the elected ingester's lock lives without renewal,
    # i.e. how soon another worker takes over writing after it dies.
    ingester_lock_seconds: float = Field(10.0, gt=0)
    sql_max_rows: int = Field(1000, gt=0)
    sql_timeout_seconds: float = Field(10.0, gt=0)
    sql_max_chars: int = Field(10_000, gt=0)
    # Rows older than this many days (whole UTC days) leave the DuckDB file, so
    # it cannot grow without bound; null keeps everything.
    retention_days: int | None = Field(90, gt=0)
    # Before they leave, old days are written to data_dir/usage-archive/usage-<day>.parquet
    # (one file per day; DuckDB reads them with read_parquet). false drops them.
    archive: bool = True
    retention_check_seconds: float = Field(3600.0, gt=0)


class ConversationConfig(_Frozen):
    """The seed's stateful API: hot tier (Redis or in-process), cold tier (DuckDB), compression."""

    # How long a conversation stays in the hot tier after its last use; it is
    # rebuilt from DuckDB after that.
    hot_ttl_seconds: int = Field(3600, gt=0)
    # Bound of the in-process hot tier (used when no Redis is configured).
    hot_max_conversations: int = Field(10_000, gt=0)
    # Summarise once this many messages are held verbatim (the seed's 50) ...
    compress_after_messages: int = Field(50, ge=4)
    # ... or once the prompt would pass this share of the model's context window.
    compress_at_context_fraction: float = Field(0.75, gt=0, le=1)
    # Messages kept verbatim after a compression (the seed says 5-10).
    keep_recent_messages: int = Field(8, ge=1)
    # Model (tier, task, alias or id) that writes the summaries: a cheap one.
    summary_model: str = "L0"
    # Longest a turn may hold a conversation's lock (across workers via Redis).
    lock_timeout_seconds: float = Field(300.0, gt=0)

    @model_validator(mode="after")
    def _keep_fewer_than_limit(self) -> ConversationConfig:
        if self.keep_recent_messages >= self.compress_after_messages:
            raise ValueError("keep_recent_messages must be below compress_after_messages")
        return self


class Limits(_Frozen):
    """Spending and traffic limits of a project or a gateway token; unset means unlimited."""

    daily_usd: float | None = Field(None, ge=0)
    monthly_usd: float | None = Field(None, ge=0)
    total_usd: float | None = Field(None, ge=0)
    max_tier: Tier | None = None
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)

    def merged(self, override: Limits | None) -> Limits:
        """`override`'s set fields over these (an admin API change over the config file)."""
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_unset=True))


AlertKind = Literal["cost", "latency_p95", "error_rate", "provider_down"]


class AlertRule(_Frozen):
    """Fires when its figure over the last `window_seconds` passes `threshold`; then rests for `cooldown_seconds`."""

    kind: AlertKind
    # cost: USD; latency_p95: milliseconds; error_rate and provider_down: share of requests failing (0..1).
    threshold: float = Field(ge=0)
    window_seconds: int = Field(3600, ge=10)
    cooldown_seconds: int = Field(3600, ge=0)
    # Fewer requests than this in the window never fire latency, error or provider rules.
    min_requests: int = Field(5, ge=1)
    project: str | None = None  # cost of one project only
    provider: str | None = None  # provider_down for one provider only (default: each)
    channels: tuple[str, ...] = ()  # empty: every channel
    enabled: bool = True


class AlertChannel(_Frozen):
    kind: Literal["webhook", "slack", "email"]
    url: str | None = None  # webhook and slack (an incoming-webhook URL)
    smtp_host: str | None = None
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    email_from: str = "aigw@localhost"
    email_to: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _complete(self) -> AlertChannel:
        if self.kind in ("webhook", "slack") and not self.url:
            raise ValueError(f"a {self.kind} channel needs 'url'")
        if self.kind == "email" and not (self.smtp_host and self.email_to):
            raise ValueError("an email channel needs 'smtp_host' and 'email_to'")
        return self


class AlertsConfig(_Frozen):
    enabled: bool = True
    interval_seconds: float = Field(15.0, gt=0)
    # COST_ALERT_THRESHOLD: adds the rule `cost_threshold`, spend over this many USD in 24 hours.
    cost_threshold_usd: float | None = Field(None, ge=0)
    rules: dict[str, AlertRule] = {}
    channels: dict[str, AlertChannel] = {}


class AuthConfig(_Frozen):
    # With no gateway token created yet, a gateway bound to loopback serves /v1
    # without a token (and says so at start). A non-loopback bind never does.
    open_on_loopback: bool = True


class BudgetConfig(_Frozen):
    # Output tokens reserved for a request that sets no max_tokens / max_completion_tokens.
    reserve_max_tokens: int = Field(4096, ge=1)
    # Once a budget is this fraction spent, routing is capped at `steer_max_tier`.
    steer_at: float | None = Field(0.8, gt=0, le=1)
    steer_max_tier: Tier = "L0"
    # A reservation whose request never settled (a crashed worker) is released after this.
    reservation_ttl_seconds: float = Field(600, gt=0)


class ResponsesConfig(_Frozen):
    """`POST /v1/responses`: how long stored responses serve `previous_response_id`."""

    store_ttl_seconds: int = Field(30 * 24 * 3600, gt=0)
    # In-process store (used when redis_url is unset): responses kept at most.
    memory_max_items: int = Field(10_000, gt=0)


class McpConfig(_Frozen):
    """The MCP server's tools (`aigw mcp` on stdio, `/mcp` over HTTP)."""

    # Serve Streamable HTTP at /mcp in the gateway (behind the admin/gateway token).
    http_enabled: bool = True
    # Legacy (2025-11-25) HTTP clients get no server-side session; elicitation then
    # needs the 2026-07-28 protocol. Modern clients are always stateless.
    stateless_http: bool = False
    # Host and Origin values /mcp accepts besides loopback (DNS-rebinding protection).
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    # Directories the file, git and test tools may touch when the client sends no
    # MCP roots (default: the directory aigw starts in).
    roots: tuple[str, ...] = ()
    max_read_bytes: int = Field(1024 * 1024, gt=0)
    max_write_bytes: int = Field(1024 * 1024, gt=0)
    max_list_entries: int = Field(2000, gt=0)
    max_output_bytes: int = Field(64 * 1024, gt=0)
    # redis_* tools see only keys under redis_prefix + this.
    redis_key_prefix: str = Field("mcp:", min_length=1)
    redis_max_ttl_seconds: int = Field(30 * 24 * 3600, gt=0)
    # db_* tools act on data_dir/workspace.duckdb; writes only when enabled, only
    # into the listed tables.
    db_write_enabled: bool = False
    db_allowed_tables: tuple[str, ...] = ()
    db_max_rows: int = Field(500, gt=0)
    test_timeout_seconds: float = Field(300.0, gt=0)
    git_timeout_seconds: float = Field(30.0, gt=0)


class Config(_Frozen):
    # `http` serves the OpenAI API (and /mcp); `mcp` makes `aigw serve` speak MCP on
    # stdio instead (env MODE=mcp, for containers started by an MCP client).
    mode: Literal["http", "mcp"] = "http"
    server: ServerConfig = ServerConfig()
    auth: AuthConfig = AuthConfig()
    budgets: BudgetConfig = BudgetConfig()
    alerts: AlertsConfig = AlertsConfig()
    # Limits per project, by name; the admin API can override them at run time.
    projects: dict[str, Limits] = {}
    redis_url: str | None = None
    # Every Redis key the gateway writes starts with this, so several gateways
    # (or test runs) can share one Redis without seeing each other's state.
    redis_prefix: str = "aigw:"
    providers: dict[str, ProviderConfig] = {}
    models: tuple[ModelConfig, ...] = ()
    routing: RoutingConfig = RoutingConfig()
    cache: CacheConfig = CacheConfig()
    usage: UsageConfig = UsageConfig()
    conversations: ConversationConfig = ConversationConfig()
    responses: ResponsesConfig = ResponsesConfig()
    mcp: McpConfig = McpConfig()
    source: str = "<embedded defaults>"

    @field_validator("models")
    @classmethod
    def _unique_model_ids(cls, models: tuple[ModelConfig, ...]) -> tuple[ModelConfig, ...]:
        seen: set[str] = set()
        for model in models:
            if model.id in seen:
                raise ValueError(f"model id {model.id!r} is listed twice")
            seen.add(model.id)
        return models

    @model_validator(mode="after")
    def _references_exist(self) -> Config:
        for index, model in enumerate(self.models):
            if model.provider not in self.providers:
                raise ValueError(
                    f"models[{index}].provider: unknown provider {model.provider!r} "
                    f"(configured: {', '.join(sorted(self.providers)) or 'none'})"
                )
        known = {m.id for m in self.models}
        for task, names in self.routing.task_models.items():
            for name in names:
                if name not in known:
                    raise ValueError(f"routing.task_models.{task}: unknown model {name!r}")
        judge = self.routing.cross_check_judge
        if judge is not None and judge not in known:
            raise ValueError(f"routing.cross_check_judge: unknown model {judge!r}")
        targets = known | set(TIERS) | set(TASKS) | {"auto"}
        for alias, target in self.routing.aliases.items():
            if target not in targets:
                raise ValueError(f"routing.aliases.{alias}: unknown target {target!r}")
        return self

    def model(self, model_id: str) -> ModelConfig | None:
        for model in self.models:
            if model.id == model_id:
                return model
        return None


def _expand_env(value: Any, env: Mapping[str, str]) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string of the YAML tree."""
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            return env.get(match.group(1)) or (match.group(2) or "")

        expanded = _ENV_REF.sub(repl, value)
        return expanded if expanded != "" or value == "" else None
    if isinstance(value, list):
        return [_expand_env(item, env) for item in value]
    if isinstance(value, dict):
        return {key: _expand_env(item, env) for key, item in value.items()}
    return value


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The seed's environment variables, layered over the YAML."""
    server = raw.setdefault("server", {})
    routing = raw.setdefault("routing", {})
    providers: dict[str, Any] = raw.setdefault("providers", {})
    models: list[dict[str, Any]] = raw.setdefault("models", [])

    if env.get("AIGW_HOST"):
        server["host"] = env["AIGW_HOST"]
    if env.get("MODE"):
        raw["mode"] = env["MODE"].strip().lower()
    if "API_PORT" in env:
        server["port"] = int(env["API_PORT"])
    if "LOG_LEVEL" in env:
        server["log_level"] = env["LOG_LEVEL"].lower()
    if env.get("COST_ALERT_THRESHOLD"):
        raw.setdefault("alerts", {})["cost_threshold_usd"] = float(env["COST_ALERT_THRESHOLD"])
    if env.get("AIGW_ADMIN_TOKEN"):
        server["admin_token"] = env["AIGW_ADMIN_TOKEN"]
    if "DATA_DIR" in env:
        server["data_dir"] = env["DATA_DIR"]
    if env.get("REDIS_URL"):
        raw["redis_url"] = env["REDIS_URL"]
    if env.get("REDIS_PREFIX"):
        raw["redis_prefix"] = env["REDIS_PREFIX"]
    if "DEFAULT_LAYER" in env:
        routing["default_tier"] = env["DEFAULT_LAYER"]
    if "MAX_ESCALATION_LAYER" in env:
        routing["max_tier"] = env["MAX_ESCALATION_LAYER"]
    if "ENABLE_AUTO_ESCALATE" in env:
        routing["auto_escalate"] = _truthy(env["ENABLE_AUTO_ESCALATE"])
    if "ENABLE_CROSS_CHECK" in env:
        routing["cross_check"] = _truthy(env["ENABLE_CROSS_CHECK"])

    for key, provider_name in (
        ("OPENAI_API_KEY", "openai"),
        ("ANTHROPIC_API_KEY", "anthropic"),
        ("OPENROUTER_API_KEY", "openrouter"),
    ):
        if env.get(key) and provider_name in providers and not providers[provider_name].get("api_key"):
            providers[provider_name]["api_key"] = env[key]

    known = {m.get("id") for m in models}

    def ensure_model(model_id: str, provider: str, tier: str) -> None:
        if model_id not in known:
            models.append({"id": model_id, "provider": provider, "tier": tier})
            known.add(model_id)

    if _truthy(env.get("OSS_MODEL_ENABLED", "false")):
        endpoint = env.get("OSS_MODEL_ENDPOINT", "http://127.0.0.1:11434").rstrip("/")
        providers["ollama"] = {
            **providers.get("ollama", {}),
            "kind": "openai",
            "base_url": endpoint if endpoint.endswith("/v1") else endpoint + "/v1",
            "probe": True,
            "enabled": True,
        }
        ensure_model(env.get("OSS_MODEL_NAME", "llama3:8b"), "ollama", "L0")

    if "openrouter" in providers:
        for model_id in _split(env.get("OPENROUTER_FALLBACK_MODELS", "")):
            ensure_model(model_id, "openrouter", "L0")

    task_models: dict[str, Any] = routing.setdefault("task_models", {})
    for task in TASKS:
        names = _split(env.get(f"{task.upper()}_MODELS", ""))
        if names:
            for name in names:
                ensure_model(name, "openrouter" if "openrouter" in providers else _first_provider(providers), "L0")
            task_models[task] = names

    aliases: dict[str, Any] = routing.setdefault("aliases", {})
    openai_key_missing = not (providers.get("openai") or {}).get("api_key")
    anthropic_key_missing = not (providers.get("anthropic") or {}).get("api_key")
    if env.get("OPENROUTER_REPLACE_OPENAI") and openai_key_missing and "openrouter" in providers:
        target = env["OPENROUTER_REPLACE_OPENAI"]
        ensure_model(target, "openrouter", "L1")
        for model in models:
            if model.get("provider") == "openai":
                aliases[model["id"]] = target
                model["enabled"] = False
    if env.get("OPENROUTER_REPLACE_CLAUDE") and anthropic_key_missing and "openrouter" in providers:
        target = env["OPENROUTER_REPLACE_CLAUDE"]
        ensure_model(target, "openrouter", "L2")
        for model in models:
            if model.get("provider") == "anthropic":
                aliases[model["id"]] = target
                model["enabled"] = False
    return raw


def _first_provider(providers: Mapping[str, Any]) -> str:
    return next(iter(providers), "demo")


def _ensure_demo(raw: dict[str, Any]) -> None:
    """The built-in demo model is always present so a keyless start still answers."""
    providers = raw.setdefault("providers", {})
    providers.setdefault("demo", {"kind": "demo"})
    models = raw.setdefault("models", [])
    if not any(m.get("provider") == "demo" for m in models):
        models.append(
            {
                "id": "demo",
                "provider": "demo",
                "tier": "L0",
                "price": {"input": 0, "output": 0},
                "context_window": 32_000,
            }
        )


def _format_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        path = ""
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}" if path else message)
    return "; ".join(lines)


def config_from_dict(raw: Mapping[str, Any], *, env: Mapping[str, str] | None = None, source: str = "<dict>") -> Config:
    """Validate a config tree (as parsed from YAML) with env overrides applied."""
    env = os.environ if env is None else env
    tree = _expand_env(dict(raw), env)
    tree = _apply_env(tree, env)
    _ensure_demo(tree)
    tree["source"] = source
    try:
        return Config.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(f"{source}: {_format_error(error)}") from None


def _merge(base: Any, overlay: Any) -> Any:
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return overlay


def apply_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """Layer runtime overrides (admin API, dashboard) over a validated config.

    Mappings merge key by key; `models` is keyed by model id, where `null`
    removes a model, a known id is edited and a new id is added.
    """
    if not overrides:
        return config
    tree = config.model_dump(mode="python")
    models = {m["id"]: m for m in tree["models"]}
    for model_id, change in (overrides.get("models") or {}).items():
        if change is None:
            models.pop(model_id, None)
        else:
            models[model_id] = _merge(models.get(model_id, {"id": model_id}), {**change, "id": model_id})
    tree = _merge(tree, {k: v for k, v in overrides.items() if k != "models"})
    tree["models"] = list(models.values())
    tree["source"] = config.source + " + runtime overrides"
    try:
        return Config.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(f"runtime overrides: {_format_error(error)}") from None


def find_config_path(explicit: str | None, env: Mapping[str, str] | None = None) -> Path:
    """`--config`, then `AIGW_CONFIG`, then ./config.yaml, then the packaged example."""
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit)
    if env.get("AIGW_CONFIG"):
        return Path(env["AIGW_CONFIG"])
    local = Path("config.yaml")
    return local if local.exists() else PACKAGED_EXAMPLE


def load_config(path: str | Path | None = None, *, env: Mapping[str, str] | None = None) -> Config:
    """Read, expand, override and validate; raise `ConfigError` naming the bad key."""
    config_path = find_config_path(str(path) if path else None, env)
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config {config_path}: {error.strerror}") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{config_path}: invalid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: the top level must be a mapping")
    return config_from_dict(raw, env=env, source=str(config_path))


class CliSettings(_Frozen):
    """Where the `aigw` client commands find a running gateway, and how much context they send."""

    url: str = "http://localhost:3000"
    token: str | None = None
    timeout_seconds: float = Field(300.0, gt=0)
    context_bytes: int = Field(48_000, ge=0)


def cli_settings(env: Mapping[str, str] | None = None) -> CliSettings:
    """`AIGW_URL` (or the seed's `MCP_ENDPOINT`), `AIGW_TOKEN`, `AIGW_TIMEOUT`, `AIGW_CONTEXT_BYTES`."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    url = env.get("AIGW_URL") or env.get("MCP_ENDPOINT")
    if url:
        raw["url"] = url.rstrip("/")
    if env.get("AIGW_TOKEN"):
        raw["token"] = env["AIGW_TOKEN"]
    if env.get("AIGW_TIMEOUT"):
        raw["timeout_seconds"] = env["AIGW_TIMEOUT"]
    if env.get("AIGW_CONTEXT_BYTES"):
        raw["context_bytes"] = env["AIGW_CONTEXT_BYTES"]
    try:
        return CliSettings.model_validate(raw)
    except ValidationError as error:
        message = _format_error(error)
        for field_name, variable in _CLI_ENV_NAMES.items():
            message = message.replace(f"{field_name}:", f"{variable}:")
        raise ConfigError(message) from None


_CLI_ENV_NAMES = {"timeout_seconds": "AIGW_TIMEOUT", "context_bytes": "AIGW_CONTEXT_BYTES", "url": "AIGW_URL"}
