"""Token-cost models: how many visual tokens a target model spends on a frame of a given size.

Small pure functions (like qwen-vl-utils' ``smart_resize``), so the arithmetic of "equal tokens" can
be read and tested alone. Each model answers: what size will the model actually see for a requested
size (``legal_size``), and how many tokens does that cost (``tokens``). Video-mode Qwen models share
one temporal patch between two consecutive frames, so their cost is per *pair* of frames.

Qwen models read their numbers (patch, merge, temporal patch, min/max pixels) from :class:`QwenLimits`: by
default the released processor configs, or the ``preprocessor_config.json`` / ``video_preprocessor_config.json``
of a local folder (``cost_model("qwen3-vl", processor_dir=PATH)``).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from ..errors import ConfigError, unknown_name

# qwen-vl-utils (vision_process.py) constants, by name, so the rules below read like theirs.
QWEN_MAX_RATIO = 200
QWEN_IMAGE_MIN_PIXELS = 4 * 28 * 28
QWEN_IMAGE_MAX_PIXELS = 16384 * 28 * 28
QWEN_VIDEO_MIN_PIXELS = 128 * 28 * 28
QWEN_VIDEO_MAX_PIXELS = 768 * 28 * 28
QWEN_FRAME_FACTOR = 2
# The same limits in tokens (qwen-vl-utils 0.0.14 names them so: pixels = tokens * (patch * merge) ** 2).
QWEN_IMAGE_MIN_TOKENS = 4
QWEN_IMAGE_MAX_TOKENS = 16384
QWEN_VIDEO_MIN_TOKENS = 128
QWEN_VIDEO_MAX_TOKENS = 768

QwenMode = Literal["image", "video"]
"""How a Qwen-VL model reads frames: each an image, or pairs of frames sharing a temporal patch (a video)."""
QWEN_MODES: tuple[QwenMode, ...] = get_args(QwenMode)
QwenFamily = Literal["qwen2-vl", "qwen2.5-vl", "qwen3-vl"]


def round_by_factor(x: float, factor: int) -> int:
    return round(x / factor) * factor


def ceil_by_factor(x: float, factor: int) -> int:
    return math.ceil(x / factor) * factor


def floor_by_factor(x: float, factor: int) -> int:
    return math.floor(x / factor) * factor


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = QWEN_IMAGE_MIN_PIXELS,
                 max_pixels: int = QWEN_IMAGE_MAX_PIXELS) -> tuple[int, int]:
    """Qwen-VL's resize rule: sides multiples of ``factor``, area within [min_pixels, max_pixels], aspect kept.

    >>> smart_resize(480, 640)
    (476, 644)
    >>> smart_resize(224, 224)
    (224, 224)
    """
    if min(height, width) <= 0:
        raise ConfigError(f"frame size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > QWEN_MAX_RATIO:
        raise ConfigError(f"aspect ratio {max(height, width) / min(height, width):.1f} exceeds Qwen-VL's limit "
                          f"of {QWEN_MAX_RATIO}")
    h_bar = max(factor, round_by_factor(height, factor))
    w_bar = max(factor, round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, floor_by_factor(height / beta, factor))
        w_bar = max(factor, floor_by_factor(width / beta, factor))
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = ceil_by_factor(height * beta, factor)
        w_bar = ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


def qwen_video_max_pixels(n_frames: int, total_pixels: int, min_pixels: int = QWEN_VIDEO_MIN_PIXELS) -> int:
    """Per-frame max pixels when a total pixel budget is split across ``n_frames`` (qwen-vl-utils' video rule)."""
    return int(max(min(QWEN_VIDEO_MAX_PIXELS, total_pixels / n_frames * QWEN_FRAME_FACTOR), int(min_pixels * 1.05)))


def qwen_video_nframes(n_frames: int) -> int:
    """Frames a Qwen video input keeps: rounded to the temporal factor 2 (at least 2)."""
    return max(QWEN_FRAME_FACTOR, round_by_factor(n_frames, QWEN_FRAME_FACTOR))


@dataclass(frozen=True)
class Level:
    """One legal frame size of a cost model and its price: a rung on the model's resolution ladder."""

    width: int
    height: int
    tokens: int
    tiles: int | None = None


def _ladder(levels: list[Level]) -> tuple[Level, ...]:
    """Sort by tokens and keep one size per price, cheapest first (ties: the first size seen)."""
    out: dict[int, Level] = {}
    for lv in levels:
        out.setdefault(lv.tokens, lv)
    return tuple(out[t] for t in sorted(out))


def _aspect_sizes(width: int, height: int, factor: int, max_side: int) -> list[tuple[int, int]]:
    """Requested sizes with the picture's aspect, the long side stepping by ``factor`` up to ``max_side``."""
    long_side = max(width, height)
    return [(max(1, round(width * s / long_side)), max(1, round(height * s / long_side)))
            for s in range(factor, max_side + 1, factor)]


class CostModel(Protocol):
    name: str
    frames_per_group: int
    """Frames charged together (2 in Qwen video mode: one temporal patch spans two frames)."""

    def legal_size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) the model will actually see for a requested size."""

    def tokens(self, width: int, height: int) -> int:
        """Visual tokens for one frame (per pair of frames in Qwen video mode) of that requested size."""

    def levels(self, width: int, height: int, square: bool = False) -> tuple[Level, ...]:
        """The legal sizes for a picture of ``width`` x ``height`` (or square frames), cheapest first."""


@dataclass(frozen=True)
class ViTCost:
    """Square ViT: a side of S px (a multiple of the patch) costs (S/P)^2 tokens; 224 -> 196 at p16."""

    patch: int = 16
    cls_token: bool = False
    min_patches: int = 4
    """Smallest side the ladder offers, in patches (64 px at p16): below that a frame shows nothing useful."""
    max_side: int = 1024
    frames_per_group: int = 1

    @property
    def name(self) -> str:
        return f"vit-p{self.patch}"

    def legal_size(self, width: int, height: int) -> tuple[int, int]:
        side = max(self.patch, round_by_factor(max(width, height), self.patch))
        return side, side

    def tokens(self, width: int, height: int) -> int:
        side, _ = self.legal_size(width, height)
        return (side // self.patch) ** 2 + (1 if self.cls_token else 0)

    def levels(self, width: int, height: int, square: bool = True) -> tuple[Level, ...]:
        return _ladder([Level(s, s, self.tokens(s, s)) for s in range(self.min_patches * self.patch,
                                                                          self.max_side + 1, self.patch)])


@dataclass(frozen=True)
class QwenLimits:
    """What a Qwen-VL processor resizes and patchifies by: the numbers of one model's processor configs.

    ``min_pixels`` / ``max_pixels`` bound the area of one image: the image processor's ``size.shortest_edge`` /
    ``size.longest_edge`` (pixel *areas*, despite the names; older configs say ``min_pixels`` / ``max_pixels``).
    ``video_min_pixels`` / ``video_max_pixels`` are the video processor's ``size``: Qwen2-VL's video processor
    bounds each frame by them, Qwen3-VL's the whole clip, frames x height x width (``video_per_clip``).

    The defaults are the released Qwen2-VL / Qwen2.5-VL ``preprocessor_config.json`` (patch 14, merge 2,
    temporal patch 2, 3136 to 12845056 pixels; those releases ship no video config, and transformers' video
    processor then reads the same file). :data:`QWEN3_VL_LIMITS` holds the released Qwen3-VL configs.
    """

    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2
    min_pixels: int = 3136
    max_pixels: int = 12845056
    video_min_pixels: int = 3136
    video_max_pixels: int = 12845056
    video_per_clip: bool = False
    source: str = field(default="released Qwen2.5-VL preprocessor_config.json", compare=False)
    """Where the numbers come from (a file path when read from a folder)."""

    def __post_init__(self) -> None:
        for name in ("patch_size", "merge_size", "temporal_patch_size", "min_pixels", "max_pixels",
                     "video_min_pixels", "video_max_pixels"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{self.source}: {name} must be a positive integer, got {v!r}")
        for lo, hi in (("min_pixels", "max_pixels"), ("video_min_pixels", "video_max_pixels")):
            if getattr(self, lo) > getattr(self, hi):
                raise ConfigError(f"{self.source}: {lo} {getattr(self, lo)} is above {hi} {getattr(self, hi)}")

    @property
    def factor(self) -> int:
        """Pixels per token along a side: patch x merge (28 for Qwen2/2.5-VL, 32 for Qwen3-VL)."""
        return self.patch_size * self.merge_size

    def pixel_range(self, mode: QwenMode = "image") -> tuple[int, int]:
        """(min, max) area of a frame that both the processor and qwen-vl-utils keep as it is.

        Image mode: the image processor's limits within qwen-vl-utils' image rule (4 to 16384 tokens).
        Video mode, per frame of a temporal patch sent as its own short video (what earmark's messages do):
        the video processor's limits (a clip's share per frame for Qwen3-VL) within qwen-vl-utils' per-frame
        video rule (128 to 768 tokens). Where the two ranges do not meet, the processor's own range holds.
        """
        f2 = self.factor ** 2
        if mode == "image":
            lo, hi = self.min_pixels, self.max_pixels
            ulo, uhi = QWEN_IMAGE_MIN_TOKENS * f2, QWEN_IMAGE_MAX_TOKENS * f2
        elif mode == "video":
            t = self.temporal_patch_size if self.video_per_clip else 1
            lo, hi = -(-self.video_min_pixels // t), self.video_max_pixels // t
            ulo, uhi = QWEN_VIDEO_MIN_TOKENS * f2, QWEN_VIDEO_MAX_TOKENS * f2
        else:
            raise unknown_name("mode", mode, QWEN_MODES)
        both = max(lo, ulo), min(hi, uhi)
        return both if both[0] <= both[1] else (lo, hi)


QWEN2_VL_LIMITS = QwenLimits(source="released Qwen2-VL preprocessor_config.json")
QWEN25_VL_LIMITS = QwenLimits()
QWEN3_VL_LIMITS = QwenLimits(16, 2, 2, 65536, 16777216, 4096, 25165824, True,
                             "released Qwen3-VL preprocessor_config.json and video_preprocessor_config.json")
"""Qwen3-VL: 16 px patches, 2x2 merge (32 px per token); images 65536 to 16777216 pixels (a 256x256 floor:
smaller frames are upscaled), videos 4096 to 25165824 pixels per clip (frames x height x width)."""
RELEASED_QWEN_LIMITS: dict[QwenFamily, QwenLimits] = {"qwen2-vl": QWEN2_VL_LIMITS, "qwen2.5-vl": QWEN25_VL_LIMITS,
                                               "qwen3-vl": QWEN3_VL_LIMITS}

IMAGE_PROCESSOR_CONFIG = "preprocessor_config.json"
VIDEO_PROCESSOR_CONFIG = "video_preprocessor_config.json"
PROCESSOR_CONFIG = "processor_config.json"
"""transformers 5 ``save_pretrained`` writes both processors' settings nested in this one file."""

# Class defaults of transformers' processors (what a key missing from a config falls back to):
# (patch, merge, temporal patch, shortest_edge, longest_edge, limits per clip).
_PROCESSOR_DEFAULTS: dict[str, tuple[int, int, int, int, int, bool]] = {
    "Qwen2VLImageProcessor": (14, 2, 2, 56 * 56, 28 * 28 * 1280, False),
    "Qwen2VLVideoProcessor": (14, 2, 2, 128 * 28 * 28, 28 * 28 * 768, False),
    "Qwen3VLVideoProcessor": (16, 2, 2, 128 * 32 * 32, 32 * 32 * 768, True),
}


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read ({e})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _processor_class(cfg: dict[str, Any], key: str, default: str, allowed: tuple[str, ...], where: str) -> str:
    """The transformers processor class a config names in ``key`` (Fast / Pil variants share their defaults)."""
    kind = cfg.get(key, default)
    base = kind.removesuffix("Fast").removesuffix("Pil") if isinstance(kind, str) else kind
    if base not in allowed:
        raise ConfigError(f"{where}: {key} {kind!r} is not a Qwen-VL processor of this kind (expected "
                          f"{' or '.join(allowed)})")
    return base


def _config_numbers(cfg: dict[str, Any], kind: str, where: str) -> tuple[int, int, int, int, int]:
    """(patch, merge, temporal patch, min pixels, max pixels) as transformers' ``kind`` reads them from ``cfg``."""
    patch, merge, temporal, lo, hi, _ = _PROCESSOR_DEFAULTS[kind]
    size = cfg.get("size")
    if size is not None:
        if not isinstance(size, dict):
            raise ConfigError(f"{where}: size must be an object with shortest_edge and longest_edge (pixel areas), "
                              f"got {size!r}")
        lo = size.get("shortest_edge", size.get("min_pixels", lo))
        hi = size.get("longest_edge", size.get("max_pixels", hi))
    # Top-level min_pixels / max_pixels override size, as in the processors' __init__.
    lo, hi = cfg.get("min_pixels", lo), cfg.get("max_pixels", hi)
    out = (cfg.get("patch_size", patch), cfg.get("merge_size", merge), cfg.get("temporal_patch_size", temporal),
           lo, hi)
    for name, v in zip(("patch_size", "merge_size", "temporal_patch_size", "min pixels (shortest_edge)",
                        "max pixels (longest_edge)"), out):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{where}: {name} must be a positive integer, got {v!r}")
    if lo > hi:
        raise ConfigError(f"{where}: min pixels {lo} (shortest_edge) is above max pixels {hi} (longest_edge)")
    return out


def qwen_limits(family: str, processor_dir: str | Path | None = None) -> QwenLimits:
    """The limits of ``family`` (``qwen2-vl``, ``qwen2.5-vl``, ``qwen3-vl``): the released ones, or a folder's.

    ``processor_dir`` is a local folder holding the model's ``preprocessor_config.json`` (image processor) and,
    when it has one, ``video_preprocessor_config.json`` (or transformers 5's ``processor_config.json`` with
    both nested). As in transformers: without a video config the video processor reads the image config, and
    keys a file leaves out take the processor class's defaults. Nothing is downloaded.
    """
    if family not in RELEASED_QWEN_LIMITS:
        raise unknown_name("Qwen family", family, list(RELEASED_QWEN_LIMITS))
    if processor_dir is None:
        return RELEASED_QWEN_LIMITS[family]
    folder = Path(processor_dir)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder (give the folder that holds {IMAGE_PROCESSOR_CONFIG})")
    nested_path = folder / PROCESSOR_CONFIG
    nested = _read_config(nested_path) if nested_path.is_file() else {}

    def section(name: str, key: str) -> tuple[dict[str, Any], str] | None:
        if (folder / name).is_file():
            return _read_config(folder / name), str(folder / name)
        if isinstance(nested.get(key), dict):
            return nested[key], f"{nested_path} ({key})"
        return None

    image = section(IMAGE_PROCESSOR_CONFIG, "image_processor")
    if image is None:
        raise ConfigError(f"{folder}: no {IMAGE_PROCESSOR_CONFIG} (nor an image_processor in {PROCESSOR_CONFIG})")
    video = section(VIDEO_PROCESSOR_CONFIG, "video_processor") or image
    (icfg, iwhere), (vcfg, vwhere) = image, video
    ikind = _processor_class(icfg, "image_processor_type", "Qwen2VLImageProcessor", ("Qwen2VLImageProcessor",),
                             iwhere)
    vkind = _processor_class(vcfg, "video_processor_type",
                             "Qwen3VLVideoProcessor" if family == "qwen3-vl" else "Qwen2VLVideoProcessor",
                             ("Qwen2VLVideoProcessor", "Qwen3VLVideoProcessor"), vwhere)
    patch, merge, _, lo, hi = _config_numbers(icfg, ikind, iwhere)
    vpatch, vmerge, vtemporal, vlo, vhi = _config_numbers(vcfg, vkind, vwhere)
    if (vpatch, vmerge) != (patch, merge):
        raise ConfigError(f"{vwhere}: patch_size {vpatch} / merge_size {vmerge} differ from {iwhere}'s "
                          f"{patch} / {merge}")
    source = iwhere if vwhere == iwhere else f"{iwhere} and {vwhere}"
    return QwenLimits(patch, merge, vtemporal, lo, hi, vlo, vhi, _PROCESSOR_DEFAULTS[vkind][5], source)


@dataclass(frozen=True)
class QwenVLCost:
    """Qwen-VL's dynamic resolution: ``smart_resize`` to multiples of patch x merge px, one token per square.

    Qwen2/2.5-VL: 14 px patches merged 2x2, one token per 28x28 px; Qwen3-VL: 16 px patches, 32x32 px per token.
    Frame sizes and prices follow ``limits`` (:class:`QwenLimits`: the released processor configs by default):
    in image mode a frame is an image; in video mode each pair of frames (one temporal patch) is charged once.
    """

    family: QwenFamily = "qwen2.5-vl"
    mode: QwenMode = "image"
    limits: QwenLimits = QWEN25_VL_LIMITS
    max_side: int = 2048
    """Largest side the ladder offers (the processor itself allows up to ``max_pixels``)."""

    def __post_init__(self) -> None:
        if self.mode not in QWEN_MODES:
            raise unknown_name("mode", self.mode, QWEN_MODES)

    @property
    def name(self) -> str:
        return self.family if self.mode == "image" else f"{self.family}-video"

    @property
    def px_per_token(self) -> int:
        return self.limits.factor

    @property
    def min_pixels(self) -> int:
        return self.limits.pixel_range(self.mode)[0]

    @property
    def max_pixels(self) -> int:
        return self.limits.pixel_range(self.mode)[1]

    @property
    def frames_per_group(self) -> int:
        return self.limits.temporal_patch_size if self.mode == "video" else 1

    def legal_size(self, width: int, height: int) -> tuple[int, int]:
        lo, hi = self.limits.pixel_range(self.mode)
        h, w = smart_resize(height, width, self.px_per_token, lo, hi)
        return w, h

    def tokens(self, width: int, height: int) -> int:
        w, h = self.legal_size(width, height)
        # grid (t, h / patch, w / patch) over merge^2; in video mode t = 1 covers the temporal patch's frames.
        return (w // self.px_per_token) * (h // self.px_per_token)

    def levels(self, width: int, height: int, square: bool = False) -> tuple[Level, ...]:
        sizes = _aspect_sizes(1, 1, self.px_per_token, self.max_side) if square else _aspect_sizes(
            width, height, self.px_per_token, self.max_side)
        out = []
        for w, h in sizes:
            lw, lh = self.legal_size(w, h)
            if not square or lw == lh:
                out.append(Level(lw, lh, self.tokens(w, h)))
        return _ladder(out)


@dataclass(frozen=True)
class InternVLCost:
    """InternVL dynamic tiling: 448x448 tiles of 256 tokens, a thumbnail tile when more than one tile."""

    tile: int = 448
    tokens_per_tile: int = 256
    min_num: int = 1
    max_num: int = 12
    use_thumbnail: bool = True
    name: str = "internvl"
    frames_per_group: int = 1

    def grid(self, width: int, height: int) -> tuple[int, int]:
        """(columns, rows) of tiles chosen for this aspect ratio, as InternVL's ``dynamic_preprocess`` does."""
        ratios = sorted({(i, j) for n in range(self.min_num, self.max_num + 1) for i in range(1, n + 1)
                         for j in range(1, n + 1) if self.min_num <= i * j <= self.max_num}, key=lambda r: r[0] * r[1])
        aspect = width / height
        best, best_diff = (1, 1), float("inf")
        for r in ratios:
            diff = abs(aspect - r[0] / r[1])
            if diff < best_diff:
                best, best_diff = r, diff
            elif diff == best_diff and width * height > 0.5 * self.tile * self.tile * r[0] * r[1]:
                best = r
        return best

    def legal_size(self, width: int, height: int) -> tuple[int, int]:
        cols, rows = self.grid(width, height)
        return cols * self.tile, rows * self.tile

    def tiles(self, width: int, height: int) -> int:
        cols, rows = self.grid(width, height)
        n = cols * rows
        return n + (1 if self.use_thumbnail and n > 1 else 0)

    def tokens(self, width: int, height: int) -> int:
        return self.tiles(width, height) * self.tokens_per_tile

    def levels(self, width: int, height: int, square: bool = False) -> tuple[Level, ...]:
        # The lever is the tile budget (InternVL's ``max_num``): each budget picks a grid for this aspect.
        # Square frames: a square picture big enough that InternVL's area tie-break takes the largest square grid.
        w, h = (self.tile * self.max_num,) * 2 if square else (width, height)
        out = []
        for n in range(self.min_num, self.max_num + 1):
            m = InternVLCost(self.tile, self.tokens_per_tile, self.min_num, n, self.use_thumbnail)
            lw, lh = m.legal_size(w, h)
            out.append(Level(lw, lh, m.tokens(w, h), m.tiles(w, h)))
        return _ladder(out)


@dataclass(frozen=True)
class FixedCost:
    """A fixed number of tokens per frame whatever its size (LLaVA-OneVision video frames: 196)."""

    per_frame: int = 196
    side: int = 384
    name: str = "llava-onevision"
    frames_per_group: int = 1

    def legal_size(self, width: int, height: int) -> tuple[int, int]:
        return self.side, self.side

    def tokens(self, width: int, height: int) -> int:
        return self.per_frame

    def levels(self, width: int, height: int, square: bool = True) -> tuple[Level, ...]:
        return (Level(self.side, self.side, self.per_frame),)


@dataclass(frozen=True)
class CustomCost:
    """Tokens from a user function ``fn(width, height) -> int`` (sizes used as given)."""

    fn: Callable[[int, int], int]
    name: str = "custom"
    step: int = 16
    max_side: int = 1024
    frames_per_group: int = 1

    def legal_size(self, width: int, height: int) -> tuple[int, int]:
        return width, height

    def tokens(self, width: int, height: int) -> int:
        n = int(self.fn(width, height))
        if n < 0:
            raise ConfigError(f"custom cost model returned {n} tokens for {width}x{height}")
        return n

    def levels(self, width: int, height: int, square: bool = True) -> tuple[Level, ...]:
        sizes = [(s, s) for s in range(self.step, self.max_side + 1, self.step)] if square else _aspect_sizes(
            width, height, self.step, self.max_side)
        return _ladder([Level(w, h, self.tokens(w, h)) for w, h in sizes if self.tokens(w, h) > 0])


POOLED_TOKENS = 1
"""What a pooled frame costs: one token, its pooled embedding."""


@dataclass(frozen=True)
class PooledCost:
    """One token per frame: the frame's pooled embedding from a frozen image encoder (extreme compression, where
    the lever is frames, not pixels).

    ``pooled-1``: every frame is pooled, decoded at ``side`` px on its long side (the encoder's input, never larger
    than the source). ``pooled-1+BASE`` (e.g. ``pooled-1+vit-p16``): the base model's ladder of full frames with a
    one-token pooled rung below it, so a plan can mix a few full frames with many pooled ones at the same total
    (strategy ``skim``); a planned frame of one token is a pooled frame.
    """

    side: int = 224
    base: CostModel | None = None
    frames_per_group: int = 1

    def __post_init__(self) -> None:
        if self.base is not None and self.base.frames_per_group != 1:
            raise ConfigError(f"pooled-1+{self.base.name}: pooled frames mix with models that charge frames one by "
                              f"one, not in groups of {self.base.frames_per_group} (use the image mode)")

    @property
    def name(self) -> str:
        return "pooled-1" if self.base is None else f"pooled-1+{self.base.name}"

    def pooled_level(self, width: int, height: int, square: bool = False) -> Level:
        """The pooled rung: ``side`` px on the long side (the picture's aspect kept unless ``square``), never more
        than the source's long side."""
        long_side = max(width, height)
        s = max(2, min(self.side, long_side))
        if square:
            return Level(s, s, POOLED_TOKENS)
        return Level(max(2, round(width * s / long_side)), max(2, round(height * s / long_side)), POOLED_TOKENS)

    def legal_size(self, width: int, height: int) -> tuple[int, int]:
        if self.base is not None:
            return self.base.legal_size(width, height)
        lv = self.pooled_level(width, height)
        return lv.width, lv.height

    def tokens(self, width: int, height: int) -> int:
        """A full frame's tokens under the base model (a pooled frame costs ``POOLED_TOKENS`` whatever its size)."""
        return POOLED_TOKENS if self.base is None else self.base.tokens(width, height)

    def levels(self, width: int, height: int, square: bool = False) -> tuple[Level, ...]:
        pooled = self.pooled_level(width, height, square)
        if self.base is None:
            return (pooled,)
        full = self.base.levels(width, height, square=square)
        if full and full[0].tokens <= POOLED_TOKENS:
            raise ConfigError(f"{self.name}: the base model's cheapest frame costs {full[0].tokens} token(s), so a "
                              f"pooled frame could not be told from a full one")
        return (pooled, *full)


_FORMULA_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.Call, ast.Add,
                  ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd)
_FORMULA_FUNCS: dict[str, Callable] = {"ceil": math.ceil, "floor": math.floor, "round": round, "min": min,
                                       "max": max}


MAX_FRAME_TOKENS = 1_000_000
"""What one frame may cost under a custom formula (a 4K frame at 14 px patches is about 42000)."""
MAX_PATCH = 64


def formula_cost(expr: str) -> CustomCost:
    """A CustomCost from an arithmetic formula in ``w`` and ``h``, e.g. ``"ceil(w/14)*ceil(h/14)"``.

    Only numbers, ``w``, ``h``, + - * / // % ** and ceil/floor/round/min/max are allowed (no eval of code).
    """
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise ConfigError(f"custom cost formula {expr!r} is not valid: {e.msg}") from e
    if len(expr) > 500:
        raise ConfigError(f"custom cost formula is {len(expr)} characters long; at most 500 are allowed")
    for node in ast.walk(tree):
        bad = not isinstance(node, _FORMULA_NODES) or (isinstance(node, ast.Name) and node.id not in {
            "w", "h", *_FORMULA_FUNCS}) or (isinstance(node, ast.Call) and not (
                isinstance(node.func, ast.Name) and node.func.id in _FORMULA_FUNCS)) or (
            isinstance(node, ast.Constant) and (isinstance(node.value, bool) or
                                                not isinstance(node.value, (int, float))))
        if bad:
            raise ConfigError(f"custom cost formula {expr!r}: only numbers, w, h, arithmetic and "
                              f"{', '.join(_FORMULA_FUNCS)} are allowed")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and not (
                isinstance(node.right, ast.Constant) and abs(node.right.value) <= 4):
            raise ConfigError(f"custom cost formula {expr!r}: a power must be a number between -4 and 4")
    code = compile(tree, "<cost formula>", "eval")

    def fn(w: int, h: int) -> int:
        try:  # floats: no unbounded integer arithmetic
            v = eval(code, {"__builtins__": {}}, {**_FORMULA_FUNCS, "w": float(w), "h": float(h)})
        except (ArithmeticError, ValueError, TypeError) as e:
            raise ConfigError(f"custom cost formula {expr!r} fails at {w}x{h}: {e}") from None
        if not (isinstance(v, (int, float)) and math.isfinite(v) and 1 <= v <= MAX_FRAME_TOKENS):
            raise ConfigError(f"custom cost formula {expr!r} gives {v!r} tokens at {w}x{h}; a frame must cost "
                              f"1 to {MAX_FRAME_TOKENS} tokens")
        return int(v)

    for size in ((14, 14), (224, 224), (448, 448), (1344, 756)):  # fail now, not half-way through planning
        fn(*size)
    return CustomCost(fn, name=f"custom:{expr}")


_MODELS: dict[str, Callable[[], CostModel]] = {
    "vit-p14": lambda: ViTCost(14),
    "vit-p16": lambda: ViTCost(16),
    "vit-p32": lambda: ViTCost(32),
    "internvl": lambda: InternVLCost(),
    "llava-onevision": lambda: FixedCost(),
    "pooled-1": lambda: PooledCost(),
}
QWEN_MODELS: dict[str, tuple[QwenFamily, QwenMode]] = {
    f"{family}{suffix}": (family, mode) for family in RELEASED_QWEN_LIMITS
    for suffix, mode in (("", "image"), ("-video", "video"))}
"""Qwen cost-model names -> (family, mode)."""


def cost_model_names() -> list[str]:
    return [*sorted([*_MODELS, *QWEN_MODELS]), "vit-pP (any patch P)", "custom:FORMULA (in w and h)",
            "pooled-1+MODEL (one-token frames beside MODEL's full frames)"]


_QWEN_NAME = re.compile(r"qwen(\d(?:\.\d)?)-?vl(?P<rest>.*)")


def canonical_model_name(name: str) -> str:
    """The registered cost-model name for what users type: any case, a Hugging Face repo id, ``_`` for ``.``.

    ``Qwen/Qwen2.5-VL-7B-Instruct`` -> ``qwen2.5-vl``, ``Qwen2_5_VL-video`` -> ``qwen2.5-vl-video``,
    ``OpenGVLab/InternVL3-8B`` -> ``internvl``, ``llava-hf/llava-onevision-qwen2-7b-ov-hf`` -> ``llava-onevision``,
    ``google/siglip-so400m-patch14-384`` -> ``vit-p14``. Names it does not recognise come back lower-cased;
    ``custom:`` formulas come back unchanged; ``pooled-1+BASE`` with BASE read the same way.
    """
    if name.startswith("custom:"):
        return name
    if name.startswith("pooled-1+"):
        return "pooled-1+" + canonical_model_name(name[len("pooled-1+"):])
    n = name.strip().lower().rsplit("/", 1)[-1]
    n = re.sub(r"(\d)_(\d)", r"\1.\2", n).replace("_", "-")
    if m := _QWEN_NAME.fullmatch(n):
        return f"qwen{m[1]}-vl" + ("-video" if "video" in m["rest"] else "")
    if re.fullmatch(r"internvl[\d.]*(-.*)?", n):
        return "internvl"
    if n.startswith("llava-onevision"):
        return "llava-onevision"
    if not n.startswith("vit-p") and (m := re.search(r"(?:^|-)patch(\d+)(?:-|$)", n)):
        return f"vit-p{m[1]}"
    return n


def cost_model(name: str, processor_dir: str | Path | None = None) -> CostModel:
    """The cost model registered as ``name`` (``vit-p<P>`` works for any patch size P). Names are read as
    :func:`canonical_model_name` reads them (any case, Hugging Face repo ids).

    ``processor_dir`` (Qwen models only): a local folder with the model's processor configs
    (``preprocessor_config.json``, ``video_preprocessor_config.json``) to read the limits from instead of the
    released ones (see :func:`qwen_limits`).
    """
    name = canonical_model_name(name)
    if name.startswith("pooled-1+"):
        return PooledCost(base=cost_model(name[len("pooled-1+"):], processor_dir))
    if name in QWEN_MODELS:
        family, mode = QWEN_MODELS[name]
        return QwenVLCost(family, mode, qwen_limits(family, processor_dir))
    if processor_dir is not None:
        raise ConfigError(f"processor_dir is read for Qwen models only ({', '.join(QWEN_MODELS)}), not {name!r}")
    if name in _MODELS:
        return _MODELS[name]()
    if name.startswith("vit-p") and name[5:].isdigit():
        if not 1 <= int(name[5:]) <= MAX_PATCH:
            raise ConfigError(f"model {name!r}: the patch size must be 1 to {MAX_PATCH} px, got {int(name[5:])}")
        return ViTCost(int(name[5:]))
    if name.startswith("custom:"):
        return formula_cost(name[len("custom:"):])
    raise unknown_name("model", name, cost_model_names(), sort=False)
