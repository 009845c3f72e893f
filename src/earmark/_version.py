"""The version, in one place: the package, the documents it writes and the wheel (pyproject reads it) share it."""

__version__ = "0.1.0"
