"""How well each window's picture answers a question: a local CLIP/SigLIP model scores thumbnails against it.

One thumbnail per window (at the window's centre, at the model's input size) is embedded by the image tower and
compared (cosine) with the question's text embedding: the relevance of every second, at the cost of one small
image per second. The weights come from a folder the user names (``save_pretrained`` layout: ``config.json``,
weights, image processor and tokenizer), loaded by transformers' own CLIP / SigLIP classes, never the folder's code.

The pure parts — :func:`normalise` (robust z over the whole video or within local segments), :func:`combine`
(sound and question by ``alpha``) and :func:`label_match` (a semantic probe's labels named by the question) — are
numpy functions that can be tested alone.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .weights import quiet_loading, transformers_folder

TEXT_IMAGE_MODEL_TYPES = ("clip", "siglip")
"""``model_type`` values the loader accepts (transformers' built-in classes)."""
NORMS = ("global", "segment")
DEFAULT_NORM = "global"
"""Read on the train+val clips of benchmarks/question_plans.py (SynthAVE and RealStamp 60 s, two data seeds each):
global recall was higher or equal in every setting (SynthAVE, sound + question at K = 2: 0.93 against segment's
0.65: within a segment without the event, segment-local z-scores lift noise to an event's level); segment-local
only shortens the anchors' longest gap."""
DEFAULT_SEGMENT_S = 30.0
"""Segment-local normalisation: robust z within consecutive segments of this length."""
DEFAULT_ALPHA = 0.5
THUMBNAIL_BATCH = 32
"""Thumbnails decoded and embedded at a time: an hour's 3600 at 224 px would be 540 MB held at once."""
LABEL_BONUS = 2.0
"""Added to a window's question score (in robust-z units) when its semantic labels name a word of the question."""
MIN_SCALE = 1e-3
_STOP = frozenset(("a", "an", "the", "is", "are", "was", "were", "be", "when", "where", "what", "which", "who",
                   "whom", "does", "do", "did", "of", "in", "on", "at", "to", "for", "from", "with", "and", "or",
                   "there", "this", "that", "it", "its", "appear", "appears", "appearing", "show", "shows", "shown",
                   "seen", "see", "heard", "hear", "make", "makes", "sound", "sounds", "happen", "happens", "video",
                   "frame", "frames"))


@dataclass
class TextImageModel:
    """A local CLIP or SigLIP checkpoint: both towers, the image processor and the tokenizer."""

    model: Any
    image_processor: Any
    tokenizer: Any
    path: str
    digest: str
    """sha256 of the folder's weight files, recorded in plans made with it (first 16 hex digits)."""

    @classmethod
    def from_pretrained(cls, path: str | Path) -> TextImageModel:
        """Load from a local folder; never downloads, never runs the folder's code."""
        p, _ = transformers_folder(path, TEXT_IMAGE_MODEL_TYPES, "a CLIP or SigLIP checkpoint",
                                   flag="--text-image-model")
        from safetensors import SafetensorError
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        kw = {"local_files_only": True, "trust_remote_code": False}
        try:
            with quiet_loading():
                model = AutoModel.from_pretrained(p, **kw).eval()
                image_processor = AutoImageProcessor.from_pretrained(p, **kw)
                tokenizer = AutoTokenizer.from_pretrained(p, **kw)
        except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as e:  # a broken or partial folder
            raise ConfigError(f"--text-image-model {p}: cannot load it ({type(e).__name__}: {str(e)[:200]})") from None
        return cls(model, image_processor, tokenizer, str(p), weights_digest(p))

    @property
    def kind(self) -> str:
        return self.model.config.model_type

    @property
    def image_size(self) -> int:
        return int(self.model.config.vision_config.image_size)

    def embed_images(self, images: Sequence[np.ndarray], batch: int = 32) -> np.ndarray:
        """(n, d) unit-length image embeddings of RGB uint8 pictures."""
        import torch
        from PIL import Image

        out = []
        for i in range(0, len(images), batch):
            x = self.image_processor(images=[Image.fromarray(im) for im in images[i:i + batch]], return_tensors="pt")
            with torch.no_grad():
                feats = _pooled(self.model.get_image_features(pixel_values=x["pixel_values"]))
            out.append(feats.float().numpy())
        return _unit(np.concatenate(out)) if out else np.zeros((0, 0), np.float32)

    def embed_text(self, text: str) -> np.ndarray:
        """(d,) unit-length embedding of ``text`` (truncated to the text tower's length)."""
        import torch

        length = int(self.model.config.text_config.max_position_embeddings)
        enc = self.tokenizer([text], truncation=True, max_length=length, return_tensors="pt",
                             padding="max_length" if self.kind == "siglip" else True)
        args = {"input_ids": enc["input_ids"]}
        if "attention_mask" in enc and self.kind != "siglip":  # SigLIP was trained on padded text without a mask
            args["attention_mask"] = enc["attention_mask"]
        with torch.no_grad():
            feats = _pooled(self.model.get_text_features(**args))
        return _unit(feats.float().numpy())[0]


def _pooled(out: Any) -> Any:
    """transformers 5 returns the projected embeddings as ``pooler_output``; older versions return the tensor."""
    return out.pooler_output if hasattr(out, "pooler_output") else out


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def weights_digest(folder: Path) -> str:
    """sha256 of a model folder's weight files (.safetensors, .bin, .pt, .pth, in name order), first 16 hex digits:
    what plans, moments documents and batch configurations record of the weights."""
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.suffix in (".safetensors", ".bin", ".pt", ".pth") and f.is_file():
            with f.open("rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]


def thumbnail_embeddings(video: str | Path, model: TextImageModel, starts: Sequence[float], window_s: float,
                         duration_s: float, video_info: Any = None, batch: int = THUMBNAIL_BATCH) -> np.ndarray:
    """(windows, d) float32 unit embeddings of a thumbnail at the centre of each window, decoded square at the
    model's input size, padded, upright, and embedded ``batch`` at a time as they are decoded: memory holds one
    batch of pictures, whatever the video's length. What questions score and search stores."""
    from ..media.frames import decode_at

    last = np.nextafter(duration_s, 0.0)
    times = [float(min(s + window_s / 2, last)) for s in starts]
    side = model.image_size
    frames = decode_at(video, times, (side, side), fit="pad", video_info=video_info)
    parts = []
    while chunk := [f.image for f in itertools.islice(frames, batch)]:
        parts.append(model.embed_images(chunk, batch=batch))
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def window_relevance(video: str | Path, question: str, model: TextImageModel, starts: Sequence[float],
                     window_s: float, duration_s: float, video_info: Any = None,
                     batch: int = THUMBNAIL_BATCH) -> np.ndarray:
    """Cosine similarity between ``question`` and each window's thumbnail (float32, one per window; the thumbnails
    of :func:`thumbnail_embeddings`)."""
    if not isinstance(question, str) or not question.strip():
        raise ConfigError("--question must be a non-empty text")
    embedded = thumbnail_embeddings(video, model, starts, window_s, duration_s, video_info, batch)
    # One product over every window, as before batching: the same bits whatever the batch.
    sims = embedded @ model.embed_text(question)
    return sims.astype(np.float32)


# --------------------------------------------------------------------------------------------------- pure parts


def robust_z(x: np.ndarray, min_scale: float = MIN_SCALE) -> np.ndarray:
    """``(x - median) / max(1.4826 MAD, min_scale)``."""
    x = np.asarray(x, np.float64)
    if not len(x):
        return x
    med = np.median(x)
    return (x - med) / max(1.4826 * float(np.median(np.abs(x - med))), min_scale)


def normalise(x: np.ndarray, norm: str = DEFAULT_NORM, hop_s: float = 1.0,
              segment_s: float = DEFAULT_SEGMENT_S, min_scale: float = MIN_SCALE) -> np.ndarray:
    """Robust z-scores over the whole video (``global``) or within consecutive segments of ``segment_s`` seconds
    (``segment``: a long video's level drifts, so each stretch is compared with itself). A last segment shorter
    than half a segment joins the one before it. ``min_scale`` floors the spread (a flat stretch is not inflated).

    >>> normalise(np.array([1, 2, 3, 11, 12, 13.0]), "segment", 1.0, 3.0).round(2).tolist()
    [-0.67, 0.0, 0.67, -0.67, 0.0, 0.67]
    >>> normalise(np.array([1, 2, 3, 11, 12, 13.0]), "global").round(2).tolist()
    [-0.81, -0.67, -0.54, 0.54, 0.67, 0.81]
    """
    if norm not in NORMS:
        raise ConfigError(f"question normalisation must be one of {', '.join(NORMS)}, got {norm!r}")
    x = np.asarray(x, np.float64)
    if norm == "global":
        return robust_z(x, min_scale)
    if not segment_s > 0:
        raise ConfigError(f"segment length must be > 0 s, got {segment_s}")
    per = max(1, round(segment_s / hop_s))
    bounds = list(range(0, len(x), per))
    if len(bounds) > 1 and len(x) - bounds[-1] < per / 2:
        bounds.pop()
    out = np.empty_like(x)
    for a, b in zip(bounds, [*bounds[1:], len(x)]):
        out[a:b] = robust_z(x[a:b], min_scale)
    return out


def question_words(question: str) -> set[str]:
    """The content words of a question (lower case, no stop words, a trailing plural 's' dropped)."""
    words = {w for w in re.findall(r"[a-z]+", question.lower()) if w not in _STOP and len(w) > 2}
    return words | {w[:-1] for w in words if w.endswith("s") and len(w) > 3}


def label_match(question: str, labels: Sequence[Sequence[str]] | None) -> np.ndarray | None:
    """1 for windows whose semantic labels (a tagger probe's top classes) share a word with the question ("the
    dog" and "Dog" or "Dog bark"), else 0; None without labels."""
    if labels is None:
        return None
    words = question_words(question)

    def hit(row: Sequence[str]) -> bool:
        return any(words & question_words(label.replace("_", " ")) for label in row)

    return np.array([1.0 if hit(row) else 0.0 for row in labels], np.float32)


def combine(audio_z: np.ndarray, question_z: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * audio + alpha * question``: 0 is sound only, 1 the question only."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"--alpha must be between 0 (sound only) and 1 (question only), got {alpha}")
    return ((1.0 - alpha) * np.asarray(audio_z, np.float64) + alpha * np.asarray(question_z, np.float64)).astype(
        np.float32)
