"""Budgets: token-cost models of target models (``costs``) and equal-token planning.

``arithmetic`` holds the pure functions on numbers, ``strategies`` the strategies' rules and layouts, and
``planner`` wires them to an index and a cost model (:func:`earmark.budget.planner.plan`, ``earmark.plan``).
"""

from .costs import CostModel, cost_model, cost_model_names

__all__ = ["CostModel", "cost_model", "cost_model_names"]
