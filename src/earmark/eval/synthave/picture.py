"""SynthAVE's pictures: a camera over a photograph, clutter, the striped class glyph and its distractor
look-alikes, drawn frame by frame."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from ..datasets import SPLITS
from .spec import ClipSpec, SynthConfig

N_ORIENTATIONS = 7
COLOURS = (((255, 128, 104), (96, 12, 0)), ((250, 238, 120), (92, 80, 0)), ((240, 240, 240), (24, 24, 24)),
           ((124, 214, 255), (0, 40, 96)))
"""The four stripe colour pairs (light and dark of one hue: the stripes live in luma, which survives 4:2:0
chroma subsampling); distractor discs use the same pairs, so colour alone never names a class."""
GLYPH_FRACTION = 0.065
BACKGROUNDS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
               "brick", "grass", "gravel", "camera", "coins")
"""scikit-image sample images shipped in its wheel (CC0 / public domain; see docs/synthave.md)."""


@lru_cache(maxsize=1)
def _backgrounds() -> tuple[np.ndarray, ...]:
    import skimage.data as data

    out = []
    for name in BACKGROUNDS:
        img = np.asarray(getattr(data, name)())
        if img.ndim == 2:  # grey textures get a tint so colour statistics vary
            tint = np.array([1.0, 0.92, 0.8]) if len(out) % 2 else np.array([0.85, 0.95, 1.0])
            img = (img[..., None] * tint).clip(0, 255)
        out.append(np.ascontiguousarray(img[..., :3].astype(np.uint8)))
    return tuple(out)


def camera(picture, size: int, rng: np.random.Generator) -> Callable[[float, float], np.ndarray]:
    """A camera over a photograph (a PIL image): a slow pan and zoom with a little shake.

    Returns ``view(u, t)``: the (size, size, 3) float32 picture at clip fraction ``u`` and time ``t`` (s).
    Draws four values from ``rng`` (start side, end side, start centre, pan).
    """
    from PIL import Image

    W, H = picture.size
    side0 = min(H, W) * rng.uniform(0.55, 0.9)
    side1 = side0 * rng.uniform(0.85, 1.0)
    c0 = np.array([rng.uniform(side0 / 2, W - side0 / 2), rng.uniform(side0 / 2, H - side0 / 2)])
    c1 = c0 + rng.uniform(-0.15, 0.15, 2) * side0

    def view(u: float, t: float) -> np.ndarray:
        side = side0 + (side1 - side0) * u
        cx, cy = c0 + (c1 - c0) * u + 2.0 * np.sin(np.array([7.1, 5.3]) * t)  # pan, zoom and a little shake
        cx, cy = np.clip(cx, side / 2, W - side / 2), np.clip(cy, side / 2, H - side / 2)
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        return np.asarray(picture.resize((size, size), Image.BILINEAR, box=box), dtype=np.float32).copy()

    return view


def _disc_mask(d: int) -> np.ndarray:
    y, x = np.mgrid[:d, :d] - (d - 1) / 2
    return np.clip(d / 2 - np.hypot(x, y), 0.0, 1.0)[..., None]


def glyph(class_index: int, d: int, phase: float, tilt: float, period: float) -> tuple[np.ndarray, np.ndarray]:
    """The class glyph: a ``d`` px disc of stripes ``period`` px apart, in one colour pair at one of seven
    orientations (RGB, alpha)."""
    c0, c1 = COLOURS[class_index // N_ORIENTATIONS]
    th = np.pi * (class_index % N_ORIENTATIONS) / N_ORIENTATIONS + tilt
    y, x = np.mgrid[:d, :d] - (d - 1) / 2
    u = (x * np.cos(th) + y * np.sin(th)) / period
    on = np.cos(2 * np.pi * u + phase) > 0
    return np.where(on[..., None], np.array(c0, float), np.array(c1, float)), _disc_mask(d)


def distractor(d: int, rng: np.random.Generator, period: float) -> tuple[np.ndarray, np.ndarray]:
    """A disc in a class colour pair with unoriented (blocky random) texture at the glyph's scale (cells of half
    or one stripe ``period``, in px): a glyph look-alike when small."""
    c0, c1 = COLOURS[int(rng.integers(len(COLOURS)))]
    cell = max(1, int(round(period / 2 * rng.choice([1, 2]))))
    m = -(-d // cell)
    on = np.kron(rng.random((m, m)) > 0.5, np.ones((cell, cell), bool))[:d, :d]
    return np.where(on[..., None], np.array(c0, float), np.array(c1, float)), _disc_mask(d)


def paste(canvas: np.ndarray, img: np.ndarray, alpha: np.ndarray, cx: float, cy: float) -> None:
    """Blend ``img`` (h, w, 3) with ``alpha`` (h, w, 1) in [0, 1] onto ``canvas`` centred at (cx, cy), clipped."""
    dh, dw = img.shape[:2]
    x0, y0 = int(round(cx - dw / 2)), int(round(cy - dh / 2))
    h, w = canvas.shape[:2]
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(w, x0 + dw), min(h, y0 + dh)
    if xa >= xb or ya >= yb:
        return
    sub = canvas[ya:yb, xa:xb]
    a = alpha[ya - y0:yb - y0, xa - x0:xb - x0]
    sub[...] = sub * (1 - a) + img[ya - y0:yb - y0, xa - x0:xb - x0] * a


def clip_frames(cfg: SynthConfig, spec: ClipSpec, i: int) -> Callable[[int, float], np.ndarray]:
    """``frame_fn(i, t)`` for :func:`earmark.media.write.write_media`: camera path, clutter, glyph, distractors."""
    from PIL import Image

    rng = np.random.default_rng([cfg.seed, SPLITS.index(spec.split), i, 3])
    bg = _backgrounds()[BACKGROUNDS.index(spec.background)]
    picture = Image.fromarray(bg)
    S = cfg.size
    period = spec.stripe_period * (S / 448)  # pixels in this picture
    view = camera(picture, S, rng)
    d = max(5, int(round(GLYPH_FRACTION * S)))
    margin = d
    clutter = []
    for _ in range(int(rng.integers(4, 9))):
        size = int(rng.integers(d // 2, 2 * d))
        colour = rng.integers(0, 256, 3).astype(float)
        yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
        mask = (np.clip(size / 2 - np.hypot(xx, yy), 0, 1) if rng.random() < 0.5 else np.ones((size, size)))[..., None]
        clutter.append((np.broadcast_to(colour, (size, size, 3)), mask, rng.uniform(margin, S - margin),
                        rng.uniform(margin, S - margin)))
    tilt = rng.uniform(-0.08, 0.08)
    phase = rng.uniform(0, 2 * np.pi)
    gpos = (rng.uniform(margin, S - margin), rng.uniform(margin, S - margin))
    g_img, g_alpha = glyph(spec.class_index, d, phase, tilt, period)
    distractors = {s: (distractor(d, rng, period), rng.uniform(margin, S - margin), rng.uniform(margin, S - margin))
                   for s in spec.distractor_seconds}
    dur = cfg.duration_s
    mover = None
    if cfg.event_motion > 0:  # its own random stream: the default clips stay byte-identical
        mrng = np.random.default_rng([cfg.seed, SPLITS.index(spec.split), i, 5])
        md = max(8, int(round(cfg.event_motion * S)))
        yy, xx = np.mgrid[:md, :md] - (md - 1) / 2
        mask = np.clip(md / 2 - np.hypot(xx, yy), 0, 1)[..., None]
        shade = np.broadcast_to(mrng.uniform(30, 225, 3), (md, md, 3))
        start = mrng.uniform(md / 2, S - md / 2, 2)
        speed = mrng.uniform(0.3, 0.6) * S * np.array([np.cos(a := mrng.uniform(0, 2 * np.pi)), np.sin(a)])
        mover = (shade, mask, md, start, speed)

    def frame(_: int, t: float) -> np.ndarray:
        u = t / dur
        img = view(u, t)
        drift = np.array([S * 0.03 * np.sin(2 * np.pi * u), S * 0.02 * np.cos(2 * np.pi * u)])  # objects move too
        for c_img, c_mask, x, y in clutter:
            paste(img, c_img, c_mask, x + drift[0], y + drift[1])
        second = int(t)
        if second in distractors:
            (dimg, dmask), x, y = distractors[second]
            paste(img, dimg, dmask, x + drift[0], y + drift[1])
        if spec.start_s <= t < spec.end_s:
            paste(img, g_img, g_alpha, gpos[0] + drift[0], gpos[1] + drift[1])
            if mover is not None:
                shade, mask, md, start, speed = mover
                lo, span = md / 2, S - md
                pos = (start - lo + speed * (t - spec.start_s)) % (2 * span)  # bounce off the frame's edges
                pos = lo + np.where(pos > span, 2 * span - pos, pos)
                paste(img, shade, mask, pos[0], pos[1])
        return np.clip(img, 0, 255).astype(np.uint8)

    return frame
