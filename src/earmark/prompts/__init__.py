"""Prompt templates shipped with earmark (data files)."""
