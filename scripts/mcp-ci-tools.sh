#!/usr/bin/env bash
# Install the MCP client tools the MCP checks use, once, into a cache directory
# outside the repository (idempotent: a second run only checks versions):
#   Node.js 22 (the npm registry's `node` package; the conformance suite and the
#   Inspector 2.x need it), @modelcontextprotocol/inspector and
#   @modelcontextprotocol/conformance.
# Prints the directory to put first on PATH.
set -euo pipefail
CACHE="${AIGW_MCP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aigw-ci}"
NODE_VERSION=22
INSPECTOR=@modelcontextprotocol/inspector@2.12.0
CONFORMANCE=@modelcontextprotocol/conformance@0.1.16

mkdir -p "$CACHE/node22" "$CACHE/mcp-tools"
if ! "$CACHE/node22/node_modules/.bin/node" --version 2>/dev/null | grep -q "^v$NODE_VERSION\."; then
  (cd "$CACHE/node22" && { [ -f package.json ] || echo '{"private":true}' > package.json; } \
    && npm install --no-audit --no-fund --loglevel=error "node@$NODE_VERSION" >&2)
fi
export PATH="$CACHE/node22/node_modules/.bin:$PATH"
marker="$CACHE/mcp-tools/.installed-$(echo "$INSPECTOR $CONFORMANCE" | tr -c 'a-zA-Z0-9.\n' '_')"
if [ ! -f "$marker" ]; then
  (cd "$CACHE/mcp-tools" && { [ -f package.json ] || echo '{"private":true}' > package.json; } \
    && npm install --no-audit --no-fund --loglevel=error "$INSPECTOR" "$CONFORMANCE" >&2 && touch "$marker")
fi
echo "$CACHE/node22/node_modules/.bin:$CACHE/mcp-tools/node_modules/.bin"
