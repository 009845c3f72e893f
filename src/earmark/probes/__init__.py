"""Probes: audio (and later visual) scorers of per-window eventness, selectable by name."""

from . import dsp as _dsp  # noqa: F401  (registers energy, flux, onset)
from .base import (
    FRAME_HOP,
    SAMPLE_RATE,
    Probe,
    ProbeConfig,
    WindowGrid,
    get_probe,
    normalise,
    probe_classes,
    probe_names,
    register_probe,
    window_grid,
)

__all__ = ["FRAME_HOP", "SAMPLE_RATE", "Probe", "ProbeConfig", "WindowGrid", "get_probe", "normalise",
           "probe_classes", "probe_names", "register_probe", "window_grid"]
