"""The `aigw` command line."""
