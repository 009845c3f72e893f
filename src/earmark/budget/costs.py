"""Token-cost models: how many visual tokens a target model spends on a frame of a given size.

Small pure functions (like qwen-vl-utils' ``smart_resize``), so the arithmetic of "equal tokens" can
be read and tested alone. Each model answers: what size will the model actually see for a requested
size (``legal_size``), and how many tokens does that cost (``tokens``). Video-mode Qwen models share
one temporal patch between two consecutive frames, so their cost is per *pair* of frames.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..errors import ConfigError, unknown_name

# qwen-vl-utils (vision_process.py) constants, by name, so the rules below read like theirs.
QWEN_MAX_RATIO = 200
QWEN_IMAGE_MIN_PIXELS = 4 * 28 * 28
QWEN_IMAGE_MAX_PIXELS = 16384 * 28 * 28
QWEN_VIDEO_MIN_PIXELS = 128 * 28 * 28
QWEN_VIDEO_MAX_PIXELS = 768 * 28 * 28
QWEN_FRAME_FACTOR = 2


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
class QwenVLCost:
    """Qwen2.5-VL (14 px patches, 2x2 merge: one token per 28x28 px) or Qwen3-VL (16 px, 2x2: 32 px per token)."""

    family: str = "qwen2.5-vl"
    px_per_token: int = 28
    mode: str = "image"
    min_pixels: int = QWEN_IMAGE_MIN_PIXELS
    max_pixels: int = QWEN_IMAGE_MAX_PIXELS
    max_side: int = 2048
    """Largest side the ladder offers (the processor itself allows up to ``max_pixels``)."""

    @property
    def name(self) -> str:
        return self.family if self.mode == "image" else f"{self.family}-video"

    @property
    def frames_per_group(self) -> int:
        return QWEN_FRAME_FACTOR if self.mode == "video" else 1

    def legal_size(self, width: int, height: int) -> tuple[int, int]:
        h, w = smart_resize(height, width, self.px_per_token, self.min_pixels, self.max_pixels)
        return w, h

    def tokens(self, width: int, height: int) -> int:
        w, h = self.legal_size(width, height)
        # In video mode the same count covers two consecutive frames (temporal patch 2).
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


_FORMULA_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.Call, ast.Add,
                  ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd)
_FORMULA_FUNCS: dict[str, Callable] = {"ceil": math.ceil, "floor": math.floor, "round": round, "min": min,
                                       "max": max}


def formula_cost(expr: str) -> CustomCost:
    """A CustomCost from an arithmetic formula in ``w`` and ``h``, e.g. ``"ceil(w/14)*ceil(h/14)"``.

    Only numbers, ``w``, ``h``, + - * / // % ** and ceil/floor/round/min/max are allowed (no eval of code).
    """
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise ConfigError(f"custom cost formula {expr!r} is not valid: {e.msg}") from e
    for node in ast.walk(tree):
        bad = not isinstance(node, _FORMULA_NODES) or (isinstance(node, ast.Name) and node.id not in {
            "w", "h", *_FORMULA_FUNCS}) or (isinstance(node, ast.Call) and not (
                isinstance(node.func, ast.Name) and node.func.id in _FORMULA_FUNCS)) or (
            isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)))
        if bad:
            raise ConfigError(f"custom cost formula {expr!r}: only numbers, w, h, arithmetic and "
                              f"{', '.join(_FORMULA_FUNCS)} are allowed")
    code = compile(tree, "<cost formula>", "eval")

    def fn(w: int, h: int) -> int:
        return int(eval(code, {"__builtins__": {}}, {**_FORMULA_FUNCS, "w": w, "h": h}))

    fn(224, 224)  # fail now (e.g. division by zero), not half-way through planning
    return CustomCost(fn, name=f"custom:{expr}")


_MODELS: dict[str, Callable[[], CostModel]] = {
    "vit-p14": lambda: ViTCost(14),
    "vit-p16": lambda: ViTCost(16),
    "vit-p32": lambda: ViTCost(32),
    "qwen2.5-vl": lambda: QwenVLCost(),
    "qwen2.5-vl-video": lambda: QwenVLCost(mode="video", min_pixels=QWEN_VIDEO_MIN_PIXELS,
                                           max_pixels=QWEN_VIDEO_MAX_PIXELS),
    "qwen3-vl": lambda: QwenVLCost("qwen3-vl", 32, min_pixels=4 * 32 * 32, max_pixels=16384 * 32 * 32),
    "qwen3-vl-video": lambda: QwenVLCost("qwen3-vl", 32, "video", 128 * 32 * 32, 768 * 32 * 32),
    "internvl": lambda: InternVLCost(),
    "llava-onevision": lambda: FixedCost(),
}


def cost_model_names() -> list[str]:
    return [*sorted(_MODELS), "vit-pP (any patch P)", "custom:FORMULA (in w and h)"]


def cost_model(name: str) -> CostModel:
    """The cost model registered as ``name`` (``vit-p<P>`` works for any patch size P)."""
    if name in _MODELS:
        return _MODELS[name]()
    if name.startswith("vit-p") and name[5:].isdigit() and int(name[5:]) > 0:
        return ViTCost(int(name[5:]))
    if name.startswith("custom:"):
        return formula_cost(name[len("custom:"):])
    raise unknown_name("model", name, cost_model_names(), sort=False)
