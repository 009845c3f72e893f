"""Probes: audio, visual and hybrid scorers of per-window eventness, selectable by name."""

from . import dsp as _dsp  # noqa: F401  (registers energy, flux, onset)
from . import learned as _learned  # noqa: F401  (registers vad, linear)
from . import taggers as _taggers  # noqa: F401  (registers ast, clap, panns, yamnet)
from . import transfer as _transfer  # noqa: F401  (registers transfer)
from . import visual as _visual  # noqa: F401  (registers motion, cut, novelty, hybrid)
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
