"""Benchmarks: the gateway against a fast fake upstream, side by side with direct calls.

Run `python -m bench --help`. Nothing here is imported by `proxy/`; figures are
printed, never asserted (the test suite only checks that a tiny run works).
"""
