#!/usr/bin/env bash
# The MCP Inspector CLI (a real MCP client) against the gateway's MCP server:
# over Streamable HTTP (a running `aigw serve`, with the admin token) and over
# stdio (`aigw mcp`), in both protocol eras, listing the tools and calling
# several of them. Exits non-zero on the first unexpected answer.
#
#   scripts/mcp-inspector-check.sh            (tools installed by scripts/mcp-ci-tools.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$(scripts/mcp-ci-tools.sh):$PATH"
export PATH
PYTHON="${PYTHON:-python3}"

work="$(mktemp -d)"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/ws/src" "$work/data"
printf 'hello from the workspace\n' > "$work/ws/src/hello.txt"
cat > "$work/config.yaml" <<YAML
providers: {}
models: []
mcp:
  roots: ["$work/ws"]
YAML
port="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
token="aigw-inspector-$RANDOM$RANDOM"

AIGW_ADMIN_TOKEN="$token" DATA_DIR="$work/data" LOG_LEVEL=warning \
  "$PYTHON" -m proxy serve --config "$work/config.yaml" --port "$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.2
done

# A tool error makes the Inspector exit non-zero; the JSON on stdout is what is checked.
inspect() { mcp-inspector --cli --format json -q --connect-timeout 30000 "$@" 2>/dev/null || true; }
expect() {  # expect NAME PYTHON-EXPRESSION-ON-r  (r = the JSON result)
  local name="$1" check="$2" out
  out="$(cat)"
  if "$PYTHON" -c "import json,sys; r=json.loads(sys.argv[1])['result']; sys.exit(0 if ($check) else 1)" "$out"; then
    echo "ok   $name"
  else
    echo "FAIL $name: $out" >&2
    exit 1
  fi
}

url="http://127.0.0.1:$port/mcp"
auth=(--header "Authorization: Bearer $token")
for era in legacy modern; do
  inspect "$url" "${auth[@]}" --protocol-era "$era" --method tools/list \
    | expect "http/$era tools/list" "{'fs_read','git_diff','run_vitest','redis_get','db_query','chat','route_explain','usage_sql','budget_status','code_agent'} <= {t['name'] for t in r['tools']}"
  inspect "$url" "${auth[@]}" --protocol-era "$era" --method tools/call --tool-name fs_read --tool-arg path=src/hello.txt \
    | expect "http/$era fs_read" "r['structuredContent']['content'] == 'hello from the workspace\n'"
  inspect "$url" "${auth[@]}" --protocol-era "$era" --method tools/call --tool-name fs_read --tool-arg path=../../etc/passwd \
    | expect "http/$era fs_read refuses '..'" "r['isError'] and \"'..'\" in r['content'][0]['text']"
  inspect "$url" "${auth[@]}" --protocol-era "$era" --method tools/call --tool-name route_explain --tool-arg prompt=hello \
    | expect "http/$era route_explain" "r['structuredContent']['model'] == 'demo'"
  inspect "$url" "${auth[@]}" --protocol-era "$era" --method tools/call --tool-name chat --tool-arg prompt=hello \
    | expect "http/$era chat" "r['structuredContent']['route']['model'] == 'demo' and r['structuredContent']['content']"
done
if mcp-inspector --cli --format json -q "$url" --method tools/list >/dev/null 2>&1; then
  echo "FAIL http without the token was accepted" >&2; exit 1
fi
echo "ok   http without the token is refused"

for era in legacy modern; do
  stdio=(-e "DATA_DIR=$work/stdio-data" -e LOG_LEVEL=warning --cwd "$PWD" -- "$PYTHON" -m proxy mcp --config "$work/config.yaml" --root "$work/ws")
  inspect --protocol-era "$era" --method tools/list "${stdio[@]}" \
    | expect "stdio/$era tools/list" "'fs_list' in {t['name'] for t in r['tools']}"
  inspect --protocol-era "$era" --method tools/call --tool-name fs_list --tool-arg path=src "${stdio[@]}" \
    | expect "stdio/$era fs_list" "[e['path'] for e in r['structuredContent']['entries']] == ['src/hello.txt']"
done
echo "MCP Inspector CLI: all checks passed"
