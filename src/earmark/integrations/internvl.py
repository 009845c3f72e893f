"""InternVL's ``load_video`` with earmark's plan: tiles per frame from a shared tile budget, and real times.

InternVL's own recipe samples ``num_segments`` frames evenly and tiles each with the same ``max_num``; the lever
earmark moves is *tiles per frame*: the ``internvl`` cost model prices a frame by its tiles (448 px, 256 tokens
each, plus a thumbnail tile when there is more than one), and a plan spends one tile budget over the frames —
more tiles where the sound points. ``load_video`` returns what InternVL's ``model.chat`` takes::

    from earmark.integrations.internvl import load_video

    v = load_video("clip.mp4", {"budget": 12 * 256, "strategy": "anchored"})
    question = v.prefix + "What makes the loud sound?"          # "Frame-1 (t=0.40s): <image>\\n..."
    response = model.chat(tokenizer, v.pixel_values.to(torch.bfloat16).cuda(), question, generation_config,
                          num_patches_list=v.num_patches_list)

Each frame is decoded at its planned size (tile grid x 448 px) and cut into tiles exactly as InternVL's
``dynamic_preprocess`` cuts an image resized to that grid; the thumbnail is the frame resized to 448x448 (InternVL
resizes the original picture: the same up to the resampling of an already resized frame).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..budget.costs import canonical_model_name
from ..errors import ConfigError
from ..types import Frame, Plan
from .common import EarmarkOptions, plan_video

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TILE = 448


@dataclass(frozen=True)
class InternVLVideo:
    """What InternVL's chat needs for one planned video."""

    pixel_values: Any
    """torch float32 tensor (tiles, 3, 448, 448), ImageNet-normalised, frame by frame."""
    num_patches_list: list[int]
    """Tiles of each frame (thumbnail included), in order: ``model.chat(..., num_patches_list=...)``."""
    times_s: list[float]
    """Each frame's real presentation time."""
    plan: Plan

    @property
    def prefix(self) -> str:
        """One ``<image>`` line per frame with its real time, to put before the question."""
        return "".join(f"Frame-{i + 1} (t={t:.2f}s): <image>\n" for i, t in enumerate(self.times_s))

    @property
    def max_num(self) -> list[int]:
        """InternVL's ``max_num`` that gives each frame its tiles (its grid's tile count)."""
        return [n - 1 if n > 1 else 1 for n in self.num_patches_list]


def frame_tiles(image: np.ndarray, tiles: int, tile: int = TILE) -> list[np.ndarray]:
    """A frame at its planned size (columns x rows of ``tile`` px) -> its tiles, row by row, then the thumbnail
    when there is more than one tile (``tiles`` counts it), as InternVL's ``dynamic_preprocess`` orders them."""
    from PIL import Image

    h, w = image.shape[:2]
    if h % tile or w % tile:
        raise ConfigError(f"frame of {w}x{h} px is not a grid of {tile} px tiles: plan it for the internvl model")
    cols, rows = w // tile, h // tile
    if tiles != cols * rows + (cols * rows > 1):
        raise ConfigError(f"frame of {w}x{h} px holds {cols * rows} tiles, but the plan says {tiles}")
    out = [image[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] for r in range(rows) for c in range(cols)]
    if len(out) > 1:
        out.append(np.asarray(Image.fromarray(image).resize((tile, tile), Image.Resampling.BICUBIC)))
    return out


def pixel_values(frames: Sequence[Frame], tile: int = TILE) -> tuple[Any, list[int]]:
    """(normalised tiles of every frame as one float32 tensor, tiles per frame)."""
    import torch

    mean = np.asarray(IMAGENET_MEAN, np.float32)
    std = np.asarray(IMAGENET_STD, np.float32)
    chunks, counts = [], []
    for f in frames:
        tiles = frame_tiles(f.image, f.planned.tiles or 1, tile)
        counts.append(len(tiles))
        x = (np.stack(tiles).astype(np.float32) / 255.0 - mean) / std
        chunks.append(x.transpose(0, 3, 1, 2))
    return torch.from_numpy(np.ascontiguousarray(np.concatenate(chunks))), counts


def load_video(video: str | Path, earmark: Mapping[str, Any] | EarmarkOptions, input_size: int = TILE
               ) -> InternVLVideo:
    """Plan ``earmark["budget"]`` tokens of InternVL over ``video`` (default model ``internvl``, 256 tokens a tile)
    and return the tiles, tiles per frame and real times. ``input_size``: InternVL's tile side (448)."""
    options = EarmarkOptions.from_mapping(earmark, "earmark")
    if canonical_model_name(options.model or "internvl") != "internvl":
        raise ConfigError(f"earmark option model {options.model!r}: InternVL videos are planned with the internvl "
                          f"cost model")
    if input_size != TILE:
        raise ConfigError(f"input_size {input_size}: the internvl cost model plans {TILE} px tiles")
    plan, frames = plan_video(video, options, "internvl")
    values, counts = pixel_values(frames)
    return InternVLVideo(values, counts, [f.pts_s for f in frames], plan)
