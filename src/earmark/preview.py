"""Cheap per-window preview features, measured for `earmark search` (a video's moments document) and `earmark
batch` (its Parquet): motion and appearance change from one decode of the thumbnails, and one text-image embedding
per window's thumbnail (with the model that made them recorded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import MediaError, SchemaError
from .types import IndexResult

VISUAL = {"fps": 2.0, "size": 64}
"""The thumbnails motion and appearance change are measured on (the visual probes' defaults)."""


def visual_change(result: IndexResult) -> tuple[np.ndarray, np.ndarray]:
    """(motion, appearance change) robust z per window of ``result``'s timeline, from one decode of its video's
    thumbnails (the ``motion`` and ``novelty`` probes' measures, normalised as those probes normalise)."""
    from .probes import get_probe, normalise
    from .probes.visual import change_values, window_max

    vi = _indexed_video(result, "motion and appearance change are measured on")
    tl = result.timeline
    probes = [get_probe("motion", **VISUAL), get_probe("novelty", **VISUAL)]
    times, values = change_values(vi, probes)
    out = []
    for prb, v in zip(probes, values):
        raw = window_max(times, v, tl.starts, tl.window_s)
        out.append(normalise(raw, np.ones(len(raw)), prb.config).scores)
    return out[0], out[1]


def picture_embeddings(result: IndexResult, model: Any) -> np.ndarray:
    """(windows, d) float16 unit embeddings of a thumbnail at each window's centre (the pictures
    :func:`earmark.probes.question.window_relevance` scores: :func:`~earmark.probes.question.thumbnail_embeddings`)."""
    from .probes.question import thumbnail_embeddings

    vi = _indexed_video(result, "pictures are embedded from")
    tl = result.timeline
    return thumbnail_embeddings(vi.path, model, tl.starts, tl.window_s, tl.duration_s, video_info=vi).astype(np.float16)


def model_record(model: Any) -> dict[str, Any]:
    """What a moments document keeps of the text-image model that embedded its pictures."""
    return {"path": str(model.path), "type": model.kind, "digest": model.digest, "image_size": model.image_size}


def _indexed_video(result: IndexResult, why: str):
    """The index's VideoInfo, once its file is checked to be the one the index was made from (no second probe)."""
    from .errors import NoVideoStreamError
    from .media.container import fingerprint

    path = result.info.path
    if not Path(path).is_file():
        raise MediaError(path, f"not found: {why} the indexed video")
    if fingerprint(path) != result.info.fingerprint:
        raise SchemaError(f"{path}: the file changed since it was indexed (fingerprint differs); index it again")
    if result.info.video is None:
        raise NoVideoStreamError(path, f"no video stream: {why} the picture")
    return result.info


def load_text_image_model(model: Any) -> Any:
    """A :class:`~earmark.probes.question.TextImageModel` from a local folder (or the model itself)."""
    from .probes.question import TextImageModel

    if isinstance(model, TextImageModel):
        return model
    return TextImageModel.from_pretrained(model)  # quiet while it loads; the caller's logging settings stay
