"""Media I/O with PyAV: container facts (``info``), streamed audio decode, writing test/demo media.

This layer knows nothing of probes, models or budgets.
"""

from .audio import AudioChunks, stream_audio
from .container import info, open_container

__all__ = ["AudioChunks", "info", "open_container", "stream_audio"]
