"""Exceptions earmark raises: one family, so callers (and the CLI) can catch them in one place.

Every message names the file (when there is one) and the problem, e.g.
``clip.mp4: no audio stream (streams: video #0)``.
"""

from __future__ import annotations

from pathlib import Path


class EarmarkError(Exception):
    """Base class of every error earmark raises on purpose."""


class ConfigError(EarmarkError, ValueError):
    """A parameter is out of range or inconsistent (hop <= 0, K too large, ...)."""


class UnknownNameError(ConfigError, KeyError):
    """A name (probe, model, strategy, ...) is not registered; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class MediaError(EarmarkError):
    """A media file cannot be used: missing, not media, corrupt, truncated, empty."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # pickles with both arguments, so a worker process's error reaches its parent as is
        return type(self), (self.path, self.problem)


class NoAudioStreamError(MediaError):
    """The file has no audio stream an audio probe could read."""


class NoVideoStreamError(MediaError):
    """The file has no video stream, but one is needed (frame extraction)."""


class SchemaError(EarmarkError):
    """A saved earmark document (index, plan, ...) is malformed or of an unsupported version."""


def unknown_name(kind: str, name: str, valid: list[str] | tuple[str, ...], sort: bool = True) -> UnknownNameError:
    """Build the error for an unregistered name, listing what is valid (sorted unless ``sort=False``)."""
    kinds = kind[:-1] + "ies" if kind.endswith("y") and kind[-2:-1] not in "aeiou" else kind + "s"
    return UnknownNameError(f"unknown {kind} {name!r}; valid {kinds}: {', '.join(sorted(valid) if sort else valid)}")


class EarmarkWarning(UserWarning):
    """Something worth knowing that does not stop the work (e.g. the audio is shorter than the video)."""
