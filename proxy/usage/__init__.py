"""The usage log: schema migrations and the single DuckDB writer."""

from .writer import UsageWriter

__all__ = ["UsageWriter"]
