"""One module per tool family; each has `register(server, toolbox)`."""

from . import fs, git

TOOL_MODULES = (fs, git)
