"""MCP server mode: the gateway's tools for Claude Desktop, VS Code and other MCP clients."""
