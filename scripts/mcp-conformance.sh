#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance) against
# the gateway's /mcp: the scenarios that need no fixture tools, resources or
# prompts of the suite's own reference server.
#
#   scripts/mcp-conformance.sh           (tools installed by scripts/mcp-ci-tools.sh)
#
# Not run: scenarios that call the suite's fixture tools (tools-call-*,
# server-sse-polling's test_reconnection, json-schema-2020-12, elicitation-*),
# read its fixture resources or prompts (resources-read-*, resources-templates-read,
# resources-(un)subscribe, prompts-get-*), or exercise a capability this server
# does not declare (completion-complete). logging-set-level runs: the server
# declares `logging` and serves logging/setLevel (proxy/mcp/clientlog.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$(scripts/mcp-ci-tools.sh):$PATH"
export PATH
PYTHON="${PYTHON:-python3}"
SCENARIOS=(server-initialize ping tools-list resources-list prompts-list logging-set-level dns-rebinding-protection
           server-sse-multiple-streams)

work="$(mktemp -d)"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/ws" "$work/data"
port="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" scripts/mcp_conformance_server.py "$port" "$work/data" "$work/ws" \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.2
done

failed=0
for scenario in "${SCENARIOS[@]}"; do
  if out="$(conformance server --url "http://127.0.0.1:$port/mcp" --scenario "$scenario" 2>&1)" \
      && grep -q ", 0 failed" <<<"$out"; then
    echo "ok   $scenario: $(grep -o 'Passed: [0-9/]*' <<<"$out")"
  else
    echo "FAIL $scenario"; echo "$out" | tail -20; failed=1
  fi
done
exit $failed
