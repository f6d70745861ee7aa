// AI MCP Gateway admin dashboard: plain ES module, no build step.
// Every figure comes from the gateway's own APIs; nothing here is made up.

const REFRESH_MS = 3000;
const TIERS = ["L0", "L1", "L2", "L3"];
const state = { token: sessionStorage.getItem("aigw-admin") || "", timer: null, charts: [], stop: [] };

// -- plumbing ------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (raw) return response;
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

async function sql(query) {
  return api("/v1/admin/sql", { method: "POST", body: { sql: query } });
}

function rowsOf(result) {
  return result.rows.map((row) => Object.fromEntries(result.columns.map((c, i) => [c, row[i]])));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const fmt = {
  usd: (v) => `$${Number(v || 0).toFixed(Number(v || 0) < 1 ? 6 : 2)}`,
  int: (v) => Number(v || 0).toLocaleString(),
  ms: (v) => (v === null || v === undefined ? "–" : `${Number(v).toFixed(1)} ms`),
  pct: (v) => `${(Number(v || 0) * 100).toFixed(1)}%`,
  time: (v) => (v ? new Date(typeof v === "number" ? v * 1000 : v).toLocaleString() : "–"),
};

function toast(message) {
  const node = el("div", { class: "toast", role: "status" }, message);
  document.body.append(node);
  setTimeout(() => node.remove(), 2500);
}

function notice(message) {
  return el("div", { class: "notice" }, message);
}

function unavailable(error, what) {
  if (error instanceof ApiError && (error.status === 404 || error.status === 405)) {
    return notice(`${what} is not available on this gateway version.`);
  }
  return el("p", { class: "error" }, `${what}: ${error.message}`);
}

function table(columns, rows, render = {}) {
  return el("div", { class: "tablewrap" }, el("table", {},
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, c)))),
    el("tbody", {}, rows.length ? rows.map((row) => el("tr", {}, columns.map((c) => el("td", {}, render[c] ? render[c](row) : formatCell(row[c])))))
      : el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, "no rows"))),
  ));
}

function formatCell(value) {
  if (value === null || value === undefined) return "–";
  if (Array.isArray(value)) return value.join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function chart(canvas, type, labels, datasets) {
  const instance = new window.Chart(canvas, {
    type,
    data: { labels, datasets },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { labels: { color: "#8a96a3" } } },
      scales: type === "doughnut" ? {} : {
        x: { ticks: { color: "#8a96a3", maxRotation: 0, autoSkip: true }, grid: { color: "#28313b" } },
        y: { ticks: { color: "#8a96a3" }, grid: { color: "#28313b" }, beginAtZero: true },
      },
    },
  });
  state.charts.push(instance);
  return instance;
}

function every(fn) {
  fn();
  state.timer = setInterval(fn, REFRESH_MS);
}

function cleanup() {
  clearInterval(state.timer);
  state.timer = null;
  state.charts.forEach((c) => c.destroy());
  state.charts = [];
  state.stop.forEach((stop) => stop());
  state.stop = [];
}

// -- pages -------------------------------------------------------------------

const OVERVIEW_SQL = `SELECT count(*) AS requests,
  coalesce(sum(cost_usd), 0) AS cost_usd,
  coalesce(sum(input_tokens + output_tokens), 0) AS tokens,
  quantile_cont(latency_ms, 0.5) AS p50_ms,
  quantile_cont(latency_ms, 0.95) AS p95_ms,
  avg(CASE WHEN cache_hit THEN 1 ELSE 0 END) AS cache_hit_rate,
  count(*) FILTER (WHERE status >= 400) AS errors
FROM usage WHERE ts > now() - INTERVAL 24 HOUR`;

const TIER_SQL = `SELECT tier, count(*) AS requests, coalesce(sum(cost_usd), 0) AS cost_usd
FROM usage WHERE ts > now() - INTERVAL 24 HOUR GROUP BY tier ORDER BY tier`;

async function overview(root) {
  const stats = el("div", { class: "grid", id: "overview-stats" });
  const tiers = el("div", { class: "card", id: "overview-tiers" }, el("h2", {}, "Tiers"));
  const health = el("div", { class: "card", id: "overview-health" }, el("h2", {}, "Service health"));
  root.append(el("h1", {}, "Overview"), el("p", { class: "muted" }, "Last 24 hours."), stats, el("div", { class: "grid2" }, tiers, health));

  every(async () => {
    const [usage, byTier, healthBody, config] = await Promise.allSettled([
      sql(OVERVIEW_SQL), sql(TIER_SQL), fetch("/health").then((r) => r.json()), api("/admin/config"),
    ]);
    stats.replaceChildren();
    if (usage.status === "fulfilled") {
      const row = rowsOf(usage.value)[0] || {};
      const cards = [
        ["Requests", fmt.int(row.requests), "stat-requests"], ["Cost", fmt.usd(row.cost_usd), "stat-cost"],
        ["Tokens", fmt.int(row.tokens), "stat-tokens"], ["Latency p50", fmt.ms(row.p50_ms), "stat-p50"],
        ["Latency p95", fmt.ms(row.p95_ms), "stat-p95"], ["Cache hit rate", fmt.pct(row.cache_hit_rate), "stat-hits"],
        ["Errors", fmt.int(row.errors), "stat-errors"],
      ];
      for (const [label, value, id] of cards) {
        stats.append(el("div", { class: "card stat" }, el("div", { class: "muted" }, label), el("div", { class: "value", id }, value)));
      }
    } else {
      stats.append(unavailable(usage.reason, "Usage figures"));
    }
    const perTier = byTier.status === "fulfilled" ? Object.fromEntries(rowsOf(byTier.value).map((r) => [r.tier, r])) : {};
    const effective = config.status === "fulfilled" ? config.value.effective : null;
    const disabled = new Set(effective ? effective.routing.disabled_tiers : []);
    const providersUp = healthBody.status === "fulfilled" ? healthBody.value.providers : {};
    tiers.replaceChildren(el("h2", {}, "Tiers"), table(["tier", "status", "models", "requests", "cost"], TIERS.map((tier) => {
      const models = effective ? effective.models.filter((m) => m.tier === tier && m.enabled && effective.providers[m.provider]?.enabled
        && providersUp[m.provider]?.status === "up") : [];
      return { tier, status: disabled.has(tier) ? "off" : models.length ? "on" : "no model", models: models.map((m) => m.id),
        requests: perTier[tier]?.requests || 0, cost: fmt.usd(perTier[tier]?.cost_usd) };
    }), { status: (r) => el("span", { class: `badge ${r.status === "on" ? "on" : "off"}` }, r.status) }));
    if (healthBody.status === "fulfilled") {
      const h = healthBody.value;
      const services = [
        { service: "DuckDB usage log", status: h.database ? "up" : "down" },
        { service: "Redis", status: h.redisConfigured === false ? "not configured" : h.redis ? "up" : "down" },
        ...Object.entries(h.providers).map(([name, p]) => ({ service: `provider ${name}`, status: p.status })),
      ];
      health.replaceChildren(el("h2", {}, "Service health"), table(["service", "status"], services,
        { status: (r) => el("span", { class: `badge ${r.status}` }, r.status) }));
    }
  });
}

const RANGES = { "1h": ["1 HOUR", "1 minute"], "24h": ["24 HOUR", "30 minutes"], "7d": ["7 DAY", "3 hours"], "30d": ["30 DAY", "1 day"] };

function analyticsQueries(range) {
  const [span, bucket] = RANGES[range];
  const where = `WHERE ts > now() - INTERVAL ${span}`;
  return [
    { id: "requests", title: "Requests and errors over time", type: "line",
      sql: `SELECT time_bucket(INTERVAL '${bucket}', ts) AS t, count(*) AS requests, count(*) FILTER (WHERE status >= 400) AS errors\nFROM usage ${where} GROUP BY 1 ORDER BY 1`,
      series: ["requests", "errors"], label: "t" },
    { id: "cost", title: "Cost over time (USD)", type: "line",
      sql: `SELECT time_bucket(INTERVAL '${bucket}', ts) AS t, sum(cost_usd) AS cost_usd, sum(cache_saved_usd) AS saved_by_cache_usd\nFROM usage ${where} GROUP BY 1 ORDER BY 1`,
      series: ["cost_usd", "saved_by_cache_usd"], label: "t" },
    { id: "latency", title: "Latency trend (ms)", type: "line",
      sql: `SELECT time_bucket(INTERVAL '${bucket}', ts) AS t, quantile_cont(latency_ms, 0.5) AS p50, quantile_cont(latency_ms, 0.95) AS p95\nFROM usage ${where} GROUP BY 1 ORDER BY 1`,
      series: ["p50", "p95"], label: "t" },
    { id: "by-model", title: "Cost and requests by model", type: "bar",
      sql: `SELECT coalesce(routed_model, '(none)') AS model, count(*) AS requests, sum(cost_usd) AS cost_usd\nFROM usage ${where} GROUP BY 1 ORDER BY cost_usd DESC, requests DESC LIMIT 15`,
      series: ["requests", "cost_usd"], label: "model" },
    { id: "by-tier", title: "By tier", type: "bar",
      sql: `SELECT coalesce(tier, '(none)') AS tier, count(*) AS requests, sum(cost_usd) AS cost_usd\nFROM usage ${where} GROUP BY 1 ORDER BY 1`,
      series: ["requests", "cost_usd"], label: "tier" },
    { id: "by-task", title: "By task", type: "bar",
      sql: `SELECT coalesce(task, '(none)') AS task, count(*) AS requests, sum(cost_usd) AS cost_usd\nFROM usage ${where} GROUP BY 1 ORDER BY requests DESC`,
      series: ["requests", "cost_usd"], label: "task" },
    { id: "by-project", title: "By project", type: "bar",
      sql: `SELECT project, count(*) AS requests, sum(cost_usd) AS cost_usd\nFROM usage ${where} GROUP BY 1 ORDER BY cost_usd DESC, requests DESC LIMIT 15`,
      series: ["requests", "cost_usd"], label: "project" },
    { id: "errors", title: "Errors by type", type: "bar",
      sql: `SELECT coalesce(error_type, 'http_' || status) AS error, count(*) AS errors\nFROM usage ${where} AND status >= 400 GROUP BY 1 ORDER BY errors DESC LIMIT 15`,
      series: ["errors"], label: "error" },
    { id: "escalations", title: "Escalations", type: "bar",
      sql: `SELECT escalated_from || ' -> ' || tier AS escalation, count(*) AS requests, sum(cost_usd) AS cost_usd\nFROM usage ${where} AND escalated_from IS NOT NULL GROUP BY 1 ORDER BY requests DESC`,
      series: ["requests"], label: "escalation" },
  ];
}

const COLORS = ["#4fa3ff", "#f85149", "#3fb950", "#d29922", "#a371f7"];

async function analytics(root) {
  let range = sessionStorage.getItem("aigw-range") || "24h";
  const picker = el("div", { class: "row" }, Object.keys(RANGES).map((r) => el("button", {
    class: r === range ? "" : "secondary", "data-range": r,
    onclick: () => { sessionStorage.setItem("aigw-range", r); route(); },
  }, r)));
  const charts = el("div", { class: "grid2" });
  const box = el("textarea", { class: "sql", id: "sql-box", spellcheck: "false" }, "SELECT * FROM cost_by_model LIMIT 20");
  const out = el("div", { id: "sql-result" });
  const run = async () => {
    out.replaceChildren(el("p", { class: "muted" }, "running…"));
    try {
      const result = await sql(box.value);
      out.replaceChildren(el("p", { class: "muted" }, `${result.row_count} rows${result.truncated ? " (truncated)" : ""}`),
        table(result.columns, rowsOf(result)));
    } catch (error) {
      out.replaceChildren(el("p", { class: "error" }, error.message));
    }
  };
  root.append(el("h1", {}, "Analytics"), picker, charts,
    el("div", { class: "card" }, el("h2", {}, "SQL (read-only)"), box, el("div", { class: "row" }, el("button", { id: "sql-run", onclick: run }, "Run")), out));

  const queries = analyticsQueries(range);
  const instances = {};
  for (const q of queries) {
    const canvas = el("canvas", { id: `chart-${q.id}` });
    charts.append(el("div", { class: "card" }, el("h2", {}, q.title), el("div", { class: "chart" }, canvas),
      el("details", { class: "sql" }, el("summary", {}, "SQL"), el("pre", {}, q.sql))));
    instances[q.id] = chart(canvas, q.type, [], q.series.map((s, i) => ({ label: s, data: [], borderColor: COLORS[i], backgroundColor: COLORS[i] })));
  }
  every(async () => {
    await Promise.all(queries.map(async (q) => {
      try {
        const rows = rowsOf(await sql(q.sql));
        const c = instances[q.id];
        c.data.labels = rows.map((r) => (q.label === "t" ? new Date(r.t).toLocaleString() : r[q.label]));
        q.series.forEach((s, i) => { c.data.datasets[i].data = rows.map((r) => Number(r[s] || 0)); });
        c.update();
      } catch (error) {
        const canvas = document.getElementById(`chart-${q.id}`);
        if (canvas) canvas.parentElement.replaceWith(unavailable(error, q.title));
      }
    }));
  });
}

async function tokens(root) {
  const list = el("div", { id: "token-list" });
  const created = el("div", { id: "token-created" });
  const form = el("form", { class: "card", id: "token-form" },
    el("h2", {}, "Create a token"),
    el("div", { class: "row" },
      el("label", {}, "Name", el("input", { name: "name", id: "token-name" })),
      el("label", {}, "Project", el("input", { name: "project", id: "token-project", value: "default" })),
      el("label", {}, "Daily budget (USD)", el("input", { name: "daily", type: "number", step: "0.01", min: "0" })),
      el("label", {}, "Max tier", el("select", { name: "max_tier" }, el("option", { value: "" }, "any"), TIERS.map((t) => el("option", { value: t }, t)))),
      el("label", {}, "Expires in days", el("input", { name: "days", type: "number", min: "1" })),
      el("button", { type: "submit", id: "token-create" }, "Create")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const limits = {};
    if (data.get("daily")) limits.daily_usd = Number(data.get("daily"));
    if (data.get("max_tier")) limits.max_tier = data.get("max_tier");
    const body = { name: data.get("name") || "", project: data.get("project") || "default", limits };
    if (data.get("days")) body.expires_in_days = Number(data.get("days"));
    try {
      const token = await api("/admin/tokens", { method: "POST", body });
      const base = `${location.origin}/v1`;
      created.replaceChildren(el("div", { class: "card" },
        el("h2", {}, `Token ${token.id} created`),
        el("p", { class: "warn" }, "Copy the secret now: it is not shown again."),
        el("div", { class: "secret", id: "token-secret" }, token.secret),
        el("div", { class: "row" }, el("button", { class: "secondary", onclick: () => navigator.clipboard.writeText(token.secret).then(() => toast("copied")) }, "Copy")),
        el("h2", {}, "curl"),
        el("pre", {}, `curl ${base}/chat/completions \\\n  -H "Authorization: Bearer ${token.secret}" \\\n  -H "Content-Type: application/json" \\\n  -d '{"model": "auto", "messages": [{"role": "user", "content": "Hello"}]}'`),
        el("h2", {}, "openai SDK"),
        el("pre", {}, `from openai import OpenAI\nclient = OpenAI(base_url="${base}", api_key="${token.secret}")\nprint(client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Hello"}]).choices[0].message.content)`)));
      load();
    } catch (error) {
      created.replaceChildren(el("p", { class: "error" }, error.message));
    }
  });
  const load = async () => {
    try {
      const { data } = await api("/admin/tokens");
      list.replaceChildren(table(["id", "name", "project", "status", "limits", "created_at", "expires_at", ""], data, {
        status: (t) => el("span", { class: `badge ${t.status}` }, t.status),
        created_at: (t) => fmt.time(t.created_at), expires_at: (t) => fmt.time(t.expires_at),
        "": (t) => t.status === "active" ? el("button", { class: "danger", "data-revoke": t.id, onclick: async () => {
          await api(`/admin/tokens/${encodeURIComponent(t.id)}`, { method: "DELETE" });
          toast(`revoked ${t.id}`);
          load();
        } }, "Revoke") : "",
      }));
    } catch (error) {
      list.replaceChildren(unavailable(error, "Gateway tokens"));
    }
  };
  root.append(el("h1", {}, "Gateway tokens"), form, created, el("div", { class: "card" }, el("h2", {}, "Tokens"), list));
  load();
}

async function logs(root) {
  const view = el("div", { class: "log", id: "log-view" });
  const level = el("select", { id: "log-level" }, ["DEBUG", "INFO", "WARNING", "ERROR"].map((l) => el("option", { value: l, selected: l === "INFO" }, l)));
  const text = el("input", { id: "log-filter", placeholder: "filter text" });
  const pause = el("button", { class: "secondary", id: "log-pause" }, "Pause");
  let paused = false;
  let controller = null;
  const lines = [];
  const draw = () => {
    const floor = ["DEBUG", "INFO", "WARNING", "ERROR"].indexOf(level.value);
    const needle = text.value.toLowerCase();
    const shown = lines.filter((l) => ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].indexOf(l.level) >= floor
      && (!needle || l.message.toLowerCase().includes(needle) || l.logger.includes(needle)));
    view.replaceChildren(...shown.slice(-500).map((l) => el("div", { class: `lvl-${l.level}` },
      `${new Date(l.ts * 1000).toISOString().slice(11, 19)} ${l.level.padEnd(7)} ${l.logger}: ${l.message}`)));
    view.scrollTop = view.scrollHeight;
  };
  const follow = async () => {
    controller = new AbortController();
    const after = lines.length ? lines[lines.length - 1].seq : 0;
    try {
      const response = await fetch(`/admin/logs/stream?after=${after}`, { headers: { authorization: `Bearer ${state.token}` }, signal: controller.signal });
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = frame.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
          if (data) { lines.push(JSON.parse(data)); if (lines.length > 2000) lines.shift(); }
        }
        if (!paused) draw();
      }
    } catch (error) {
      if (error.name !== "AbortError") view.append(el("div", { class: "lvl-ERROR" }, `log stream: ${error.message}`));
    }
  };
  pause.addEventListener("click", () => { paused = !paused; pause.textContent = paused ? "Resume" : "Pause"; if (!paused) draw(); });
  level.addEventListener("change", draw);
  text.addEventListener("input", draw);
  const download = el("button", { class: "secondary", id: "log-download", onclick: async () => {
    const response = await api("/admin/logs?format=text&limit=2000", { raw: true });
    const url = URL.createObjectURL(await response.blob());
    el("a", { href: url, download: "aigw.log" }).click();
    URL.revokeObjectURL(url);
  } }, "Download");

  const requestFilter = el("input", { id: "req-filter", placeholder: "model, project or status" });
  const requests = el("div", { id: "request-log" });
  const loadRequests = async () => {
    const f = requestFilter.value.trim().replaceAll("'", "''");
    const where = f ? `WHERE routed_model ILIKE '%${f}%' OR project ILIKE '%${f}%' OR CAST(status AS VARCHAR) = '${f}'` : "";
    try {
      const result = await sql(`SELECT ts, request_id, project, task, tier, routed_model, status, input_tokens, output_tokens, cost_usd, latency_ms, cache_hit FROM usage ${where} ORDER BY ts DESC LIMIT 100`);
      requests.replaceChildren(table(result.columns, rowsOf(result), { ts: (r) => fmt.time(r.ts) }));
    } catch (error) {
      requests.replaceChildren(unavailable(error, "Request log"));
    }
  };
  requestFilter.addEventListener("change", loadRequests);
  root.append(el("h1", {}, "Logs"),
    el("div", { class: "card" }, el("h2", {}, "Gateway log (live)"), el("div", { class: "row" }, level, text, pause, download), view),
    el("div", { class: "card" }, el("h2", {}, "Request log"), el("div", { class: "row" }, requestFilter), requests));
  state.stop.push(() => controller && controller.abort());
  follow();
  every(loadRequests);
}

async function patchConfig(change, message) {
  try {
    await api("/admin/config", { method: "PATCH", body: change });
    toast(message);
    return true;
  } catch (error) {
    toast(`refused: ${error.message}`);
    return false;
  }
}

async function providers(root) {
  const body = el("div", { id: "provider-list" });
  root.append(el("h1", {}, "Providers"), body);
  const load = async () => {
    const [config, health, errors] = await Promise.allSettled([
      api("/admin/config"), fetch("/health").then((r) => r.json()),
      sql("SELECT provider, ts, status, error_type FROM usage WHERE status >= 400 AND provider IS NOT NULL ORDER BY ts DESC LIMIT 50"),
    ]);
    if (config.status !== "fulfilled") { body.replaceChildren(unavailable(config.reason, "Configuration")); return; }
    const recent = errors.status === "fulfilled" ? rowsOf(errors.value) : [];
    const up = health.status === "fulfilled" ? health.value.providers : {};
    body.replaceChildren(...Object.entries(config.value.effective.providers).map(([name, p]) => {
      const key = el("input", { type: "password", placeholder: p.api_key ? "key set: type to replace" : "no key: type to set", "data-key": name });
      const url = el("input", { value: p.base_url || "", "data-url": name, size: 40 });
      return el("div", { class: "card", "data-provider": name },
        el("h2", {}, name, " ", el("span", { class: `badge ${up[name]?.status || "down"}` }, up[name]?.status || "not in use"),
          " ", el("span", { class: "badge" }, p.kind)),
        el("div", { class: "row" },
          el("button", { class: p.enabled ? "danger" : "", "data-toggle": name,
            onclick: () => patchConfig({ providers: { [name]: { enabled: !p.enabled } } }, `${name} ${p.enabled ? "disabled" : "enabled"}`).then(load) },
            p.enabled ? "Disable" : "Enable"),
          el("label", {}, "API key", key), el("label", {}, "Base URL", url),
          el("button", { class: "secondary", "data-save": name, onclick: () => {
            const change = { base_url: url.value };
            if (key.value) change.api_key = key.value;
            patchConfig({ providers: { [name]: change } }, `${name} saved`).then(load);
          } }, "Save")),
        el("p", { class: "muted" }, "Recent errors"),
        table(["ts", "status", "error_type"], recent.filter((r) => r.provider === name).slice(0, 5), { ts: (r) => fmt.time(r.ts) }));
    }));
  };
  load();
}

async function models(root) {
  const body = el("div", { id: "model-list" });
  root.append(el("h1", {}, "Models"), body);
  const load = async () => {
    let config;
    try { config = (await api("/admin/config")).effective; } catch (error) { body.replaceChildren(unavailable(error, "Configuration")); return; }
    const disabled = new Set(config.routing.disabled_tiers);
    const tierRow = el("div", { class: "row", id: "tier-toggles" }, TIERS.map((tier) => el("button", {
      class: disabled.has(tier) ? "secondary" : "", "data-tier": tier,
      onclick: () => {
        const next = disabled.has(tier) ? [...disabled].filter((t) => t !== tier) : [...disabled, tier];
        patchConfig({ routing: { disabled_tiers: next } }, `tier ${tier} ${disabled.has(tier) ? "enabled" : "disabled"}`).then(load);
      } }, `${tier}: ${disabled.has(tier) ? "off" : "on"}`)));
    const providerNames = Object.keys(config.providers);
    const form = el("form", { class: "row", id: "model-form" },
      el("label", {}, "Model id", el("input", { name: "id", required: true })),
      el("label", {}, "Provider", el("select", { name: "provider" }, providerNames.map((p) => el("option", { value: p }, p)))),
      el("label", {}, "Tier", el("select", { name: "tier" }, TIERS.map((t) => el("option", { value: t }, t)))),
      el("label", {}, "Input $/1M", el("input", { name: "input", type: "number", step: "0.001", min: "0", value: "0" })),
      el("label", {}, "Output $/1M", el("input", { name: "output", type: "number", step: "0.001", min: "0", value: "0" })),
      el("button", { type: "submit" }, "Add or update"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const d = new FormData(form);
      patchConfig({ models: { [d.get("id")]: { provider: d.get("provider"), tier: d.get("tier"),
        price: { input: Number(d.get("input")), output: Number(d.get("output")) } } } }, `model ${d.get("id")} saved`).then(load);
    });
    body.replaceChildren(el("div", { class: "card" }, el("h2", {}, "Tiers"), tierRow),
      el("div", { class: "card" }, el("h2", {}, "Add or edit a model"), form),
      el("div", { class: "card" }, table(["id", "provider", "tier", "price", "enabled", ""], config.models, {
        tier: (m) => el("select", { "data-move": m.id, onchange: (e) => patchConfig({ models: { [m.id]: { tier: e.target.value } } }, `${m.id} moved to ${e.target.value}`).then(load) },
          TIERS.map((t) => el("option", { value: t, selected: t === m.tier }, t))),
        price: (m) => `${m.price.input} / ${m.price.output}`,
        enabled: (m) => el("button", { class: "secondary", onclick: () => patchConfig({ models: { [m.id]: { enabled: !m.enabled } } }, `${m.id} ${m.enabled ? "disabled" : "enabled"}`).then(load) }, m.enabled ? "on" : "off"),
        "": (m) => el("button", { class: "danger", "data-remove": m.id, onclick: () => patchConfig({ models: { [m.id]: null } }, `${m.id} removed`).then(load) }, "Remove"),
      })));
  };
  load();
}

async function alerts(root) {
  const body = el("div", { id: "alerts" });
  root.append(el("h1", {}, "Alerts"), body);
  const ruleForm = el("form", { class: "row", id: "rule-form" },
    el("label", {}, "Name", el("input", { name: "name", required: true })),
    el("label", {}, "Kind", el("select", { name: "kind" }, ["cost", "latency_p95", "error_rate", "provider_down"].map((k) => el("option", { value: k }, k)))),
    el("label", {}, "Threshold", el("input", { name: "threshold", type: "number", step: "any", min: "0", required: true })),
    el("label", {}, "Window (s)", el("input", { name: "window_seconds", type: "number", min: "10", value: "3600" })),
    el("label", {}, "Cool-down (s)", el("input", { name: "cooldown_seconds", type: "number", min: "0", value: "3600" })),
    el("button", { type: "submit" }, "Save rule"));
  ruleForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const d = new FormData(ruleForm);
    try {
      await api(`/admin/alerts/rules/${encodeURIComponent(d.get("name"))}`, { method: "PUT", body: {
        kind: d.get("kind"), threshold: Number(d.get("threshold")), window_seconds: Number(d.get("window_seconds")),
        cooldown_seconds: Number(d.get("cooldown_seconds")) } });
      toast(`rule ${d.get("name")} saved`);
      load();
    } catch (error) { toast(`refused: ${error.message}`); }
  });
  const channelForm = el("form", { class: "row", id: "channel-form" },
    el("label", {}, "Name", el("input", { name: "name", required: true })),
    el("label", {}, "Kind", el("select", { name: "kind" }, ["webhook", "slack"].map((k) => el("option", { value: k }, k)))),
    el("label", {}, "URL", el("input", { name: "url", required: true, size: 40 })),
    el("button", { type: "submit" }, "Save channel"));
  channelForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const d = new FormData(channelForm);
    try {
      await api(`/admin/alerts/channels/${encodeURIComponent(d.get("name"))}`, { method: "PUT", body: { kind: d.get("kind"), url: d.get("url") } });
      toast(`channel ${d.get("name")} saved`);
      load();
    } catch (error) { toast(`refused: ${error.message}`); }
  });
  const load = async () => {
    let rules, channels, firings;
    try {
      [rules, channels, firings] = await Promise.all([api("/admin/alerts/rules"), api("/admin/alerts/channels"), api("/admin/alerts/firings")]);
    } catch (error) { body.replaceChildren(unavailable(error, "Alerts")); return; }
    const ruleBody = (r) => ({ kind: r.kind, threshold: r.threshold, window_seconds: r.window_seconds, cooldown_seconds: r.cooldown_seconds,
      min_requests: r.min_requests, project: r.project, provider: r.provider, channels: r.channels, enabled: r.enabled });
    body.replaceChildren(
      el("div", { class: "card" }, el("h2", {}, "Rules"), ruleForm, table(["name", "kind", "threshold", "window_seconds", "cooldown_seconds", "enabled", ""], rules.data, {
        enabled: (r) => el("button", { class: "secondary", "data-rule-toggle": r.name, onclick: async () => {
          await api(`/admin/alerts/rules/${encodeURIComponent(r.name)}`, { method: "PUT", body: { ...ruleBody(r), enabled: !r.enabled } });
          toast(`rule ${r.name} ${r.enabled ? "disabled" : "enabled"}`);
          load();
        } }, r.enabled ? "on" : "off"),
        "": (r) => el("button", { class: "danger", onclick: async () => { await api(`/admin/alerts/rules/${encodeURIComponent(r.name)}`, { method: "DELETE" }); load(); } }, "Delete"),
      })),
      el("div", { class: "card" }, el("h2", {}, "Channels"), channelForm, table(["name", "kind", "url", ""], channels.data, {
        "": (c) => el("span", {},
          el("button", { class: "secondary", "data-channel-test": c.name, onclick: async () => {
            const result = await api(`/admin/alerts/channels/${encodeURIComponent(c.name)}/test`, { method: "POST" });
            toast(`test through ${c.name}: ${result.delivery}`);
          } }, "Send test"), " ",
          el("button", { class: "danger", onclick: async () => { await api(`/admin/alerts/channels/${encodeURIComponent(c.name)}`, { method: "DELETE" }); load(); } }, "Delete")),
      })),
      el("div", { class: "card" }, el("h2", {}, "Recent firings"), table(["fired_at", "rule", "kind", "subject", "value", "threshold", "deliveries"], firings.data)));
  };
  load();
}

async function settings(root) {
  let config;
  try { config = (await api("/admin/config")).effective; } catch (error) { root.append(unavailable(error, "Configuration")); return; }
  const r = config.routing;
  const select = (name, options, value) => el("select", { name, id: `set-${name}` }, options.map((o) => el("option", { value: o, selected: o === value }, o)));
  const check = (name, value) => el("input", { type: "checkbox", name, id: `set-${name}`, checked: value });
  const taskLists = ["chat", "code", "analyze", "create_project"].map((task) => el("label", {}, `${task} models (comma-separated)`,
    el("input", { name: `task_${task}`, value: (r.task_models[task] || []).join(", "), size: 50 })));
  const form = el("form", { class: "card", id: "settings-form" },
    el("div", { class: "row" },
      el("label", {}, "Log level", select("log_level", ["debug", "info", "warning", "error"], config.server.log_level)),
      el("label", {}, "Default layer", select("default_tier", TIERS, r.default_tier)),
      el("label", {}, "Max escalation layer", select("max_tier", TIERS, r.max_tier)),
      el("label", {}, "Auto-escalate", check("auto_escalate", r.auto_escalate)),
      el("label", {}, "Cross-check", check("cross_check", r.cross_check)),
      el("label", {}, "Cache", check("cache_enabled", config.cache ? config.cache.enabled : false)),
      el("label", {}, "Cost tracking (usage log)", check("usage_enabled", config.usage ? config.usage.enabled : true))),
    taskLists, el("button", { type: "submit", id: "settings-save" }, "Save"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const d = new FormData(form);
    const taskModels = {};
    for (const task of ["chat", "code", "analyze", "create_project"]) {
      taskModels[task] = String(d.get(`task_${task}`) || "").split(",").map((s) => s.trim()).filter(Boolean);
    }
    const change = {
      server: { log_level: d.get("log_level") },
      routing: { default_tier: d.get("default_tier"), max_tier: d.get("max_tier"), auto_escalate: d.get("auto_escalate") === "on",
        cross_check: d.get("cross_check") === "on", task_models: taskModels },
    };
    if (config.cache) change.cache = { enabled: d.get("cache_enabled") === "on" };
    if (config.usage) change.usage = { enabled: d.get("usage_enabled") === "on" };
    patchConfig(change, "settings saved");
  });
  root.append(el("h1", {}, "Settings"),
    el("p", { class: "muted" }, "Changes apply at once in every worker and replica, and persist across restarts as runtime overrides over config.yaml."),
    form);
}

// -- shell -------------------------------------------------------------------

const PAGES = { overview, analytics, tokens, logs, providers, models, alerts, settings };

function route() {
  cleanup();
  const name = (location.hash.replace(/^#\//, "") || "overview").split("?")[0];
  const page = PAGES[name] ? name : "overview";
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  document.getElementById("nav").classList.remove("open");
  const root = document.getElementById("page");
  root.replaceChildren();
  root.dataset.page = page;
  PAGES[page](root).catch((error) => root.append(el("p", { class: "error" }, error.message)));
}

async function signIn(token) {
  state.token = token;
  await api("/admin/config");
  sessionStorage.setItem("aigw-admin", token);
}

function showShell() {
  document.getElementById("login").hidden = true;
  document.getElementById("shell").hidden = false;
  route();
}

function showLogin(message = "") {
  cleanup();
  document.getElementById("shell").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message;
}

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await signIn(document.getElementById("login-token").value.trim());
    showShell();
  } catch (error) {
    showLogin(error instanceof ApiError && error.status === 401 ? "That is not the admin token." : error.message);
  }
});
document.getElementById("logout").addEventListener("click", () => { sessionStorage.removeItem("aigw-admin"); state.token = ""; showLogin(); });
document.getElementById("menu").addEventListener("click", () => document.getElementById("nav").classList.toggle("open"));
window.addEventListener("hashchange", () => { if (state.token) route(); });

if (state.token) {
  signIn(state.token).then(showShell, () => showLogin());
} else {
  showLogin();
}
