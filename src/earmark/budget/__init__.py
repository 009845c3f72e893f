"""Budgets: token-cost models of target models (``costs``); the planner arrives with the rest of issue 9."""

from .costs import CostModel, cost_model, cost_model_names

__all__ = ["CostModel", "cost_model", "cost_model_names"]
