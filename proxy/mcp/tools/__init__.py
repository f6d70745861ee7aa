"""One module per tool family; each has `register(server, toolbox)`."""

from . import code_agent, db, fs, gateway, git, redis, testing

TOOL_MODULES = (fs, git, testing, redis, db, gateway, code_agent)
