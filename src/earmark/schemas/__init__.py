"""JSON Schemas of earmark's saved documents (versioned with ``earmark.SCHEMA_VERSION``)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def load_schema(kind: str = "index", version: int = 1) -> dict[str, Any]:
    """The JSON Schema of a saved document, e.g. ``load_schema("index", 1)``."""
    text = resources.files(__name__).joinpath(f"{kind}.v{version}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)
