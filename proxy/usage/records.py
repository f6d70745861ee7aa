"""A usage event as a plain record: the form it travels in (spool, Redis, spill files, the writer)."""

from __future__ import annotations

import dataclasses

from ..types import JSON, UsageEvent

FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(UsageEvent))
# The table calls the start time `ts`.
COLUMNS: tuple[str, ...] = tuple("ts" if name == "started_at" else name for name in FIELDS)


def event_record(event: UsageEvent) -> JSON:
    """An event as plain JSON-able values."""
    return {name: getattr(event, name) for name in FIELDS}
