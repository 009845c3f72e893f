"""Optional extras: which package each one brings, and the one-line error when a command needs a missing one.

The core install (index with the DSP probes, plan, extract, prompt, report, demo) needs none of them;
heavy packages are imported only inside what uses them, so ``earmark --help`` starts without torch.
"""

from __future__ import annotations

import importlib.util

from .errors import EarmarkError

EXTRAS: dict[str, tuple[str, ...]] = {
    "eval": ("torch", "transformers", "matplotlib", "skimage"),
    "vlm": ("torch", "transformers"),
    "probes": ("onnxruntime", "silero_vad", "torch"),
    "ray": ("ray",),
    "duckdb": ("duckdb",),
}
"""Import names each extra of ``pyproject.toml`` provides (the ones earmark imports)."""

PIP_NAMES = {"skimage": "scikit-image", "silero_vad": "silero-vad"}


class MissingExtraError(EarmarkError):
    """A command needs an optional extra that is not installed."""


def install_hint(extra: str) -> str:
    return f'pip install -e ".[{extra}]"'


def importable(package: str) -> bool:
    """Whether top-level ``package`` is installed (found without importing it)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def missing(package: str, extra: str) -> str | None:
    """None when ``package`` can be imported; else what to install (for ``unavailable()`` texts)."""
    if not importable(package):
        return f"needs the {PIP_NAMES.get(package, package)} package: {install_hint(extra)}"
    return None


def require_extra(what: str, extra: str, packages: tuple[str, ...] | None = None) -> None:
    """Raise :class:`MissingExtraError` (one line: what needs which extra, and the install command) unless every
    package of ``extra`` (or just ``packages``) can be imported. Checks without importing anything."""
    absent = [p for p in (packages or EXTRAS[extra]) if not importable(p)]
    if absent:
        names = ", ".join(PIP_NAMES.get(p, p) for p in absent)
        raise MissingExtraError(f"{what} needs the [{extra}] extra ({names} missing): {install_hint(extra)}")


def extra_for_module(name: str | None) -> str | None:
    """The extra that provides top-level module ``name`` (for a ModuleNotFoundError the CLI turns into one line)."""
    top = (name or "").split(".")[0]
    return next((extra for extra, pkgs in EXTRAS.items() if top in pkgs), None)
