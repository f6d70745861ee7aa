"""Routing: classify a request (pure) and pick a tier and model (rules)."""

from .classify import classify
from .router import VIRTUAL_MODELS, Router, tier_index

__all__ = ["VIRTUAL_MODELS", "Router", "classify", "tier_index"]
