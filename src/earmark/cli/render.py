"""Terminal rendering for the CLI: sparklines, anchor tables, info tables (rich)."""

from __future__ import annotations

import numpy as np
from rich.table import Table
from rich.text import Text

from ..types import IndexResult, Plan, VideoInfo, clock

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(scores: np.ndarray, anchor_idx: set[int], width: int = 80) -> Text:
    """One character per window (or per bucket of windows, max-pooled); anchors in bold red."""
    n = len(scores)
    buckets = np.array_split(np.arange(n), min(n, width)) if n else []
    vals = np.array([scores[b].max() for b in buckets]) if n else np.zeros(0)
    lo, hi = (float(vals.min()), float(vals.max())) if n else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    text = Text()
    for b, v in zip(buckets, vals):
        ch = _BARS[int(round((v - lo) / span * (len(_BARS) - 1)))]
        text.append(ch, style="bold red" if anchor_idx.intersection(b.tolist()) else "cyan")
    return text


def index_table(result: IndexResult) -> Table:
    t = Table(title=None, show_edge=False, pad_edge=False, box=None)
    for col in ("anchor", "window", "time", "region", "score", "confidence", "source"):
        t.add_column(col, justify="right" if col not in ("source",) else "left")
    for i, a in enumerate(result.anchors, 1):
        t.add_row(str(i), str(a.index), clock(a.time_s), f"[{clock(a.start_s)}, {clock(a.end_s)})",
                  f"{a.score:.1f}", f"{a.confidence:.2f}", a.source)
    if not result.anchors:
        t.add_row("-", "-", "-", "-", "-", "-", "none")
    return t


def index_header(result: IndexResult) -> str:
    tl = result.timeline
    return (f"[bold]{_escape(tl.video)}[/]  {tl.duration_s:.2f} s, {len(tl)} windows of {tl.window_s:g} s "
            f"every {tl.hop_s:g} s, probe {tl.probe} ({tl.raw_unit}), audio stream #{tl.audio_stream}")


def _escape(s: str) -> str:
    from rich.markup import escape

    return escape(s)


def info_table(vi: VideoInfo) -> Table:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("file", _escape(vi.path))
    t.add_row("container", f"{vi.format_name}, {vi.size_bytes:,} bytes")
    t.add_row("duration", f"{vi.duration_s:.3f} s (t = 0 at {vi.start_time_s:.3f} s)")
    v = vi.video
    if v is None:
        t.add_row("video", "none")
    else:
        fps = lambda x: f"{x:.3f}" if x else "?"
        t.add_row("video", f"#{v.index} {v.codec} {v.width}x{v.height} {v.pix_fmt or ''}")
        t.add_row("fps", f"nominal {fps(v.fps_nominal)}, average {fps(v.fps_average)}, "
                         f"VFR {'yes' if v.vfr else 'no'}")
        t.add_row("frames", str(v.frame_count) if v.frame_count else "unknown")
        t.add_row("rotation", f"{v.rotation}°")
        t.add_row("keyframe interval", f"~{v.keyframe_interval_s:.2f} s" if v.keyframe_interval_s else
                  "unknown (fewer than two keyframes in the scanned packets)")
    if not vi.audio_streams:
        t.add_row("audio", "none")
    for a in vi.audio_streams:
        flag = " (default)" if a.index == vi.default_audio_stream else ""
        start = f", starts at {a.start_time_s:.3f} s" if a.start_time_s else ""
        lang = f" [{a.language}]" if a.language else ""
        t.add_row("audio", f"#{a.index} {a.codec} {a.sample_rate} Hz, {a.channels} ch{lang}{start}{flag}")
    return t


def plan_table(plan: Plan) -> Table:
    t = Table(show_edge=False, pad_edge=False, box=None)
    for col in ("#", "time", "size", "tokens", "role"):
        t.add_column(col, justify="left" if col == "role" else "right")
    for i, f in enumerate(plan.frames):
        size = f"{f.width}x{f.height}" + (f" ({f.tiles} tiles)" if f.tiles else "")
        role = f.role + (f" #{f.anchor + 1}" if f.anchor is not None and f.role == "anchor" else "")
        style = "bold" if f.role == "anchor" else None
        t.add_row(str(i), clock(f.time_s), size, str(f.tokens), role, style=style)
    return t


def plan_summary(plan: Plan) -> str:
    diff = plan.shortfall
    vs = "equal to uniform" if diff == 0 else f"{diff} below uniform's {plan.target_tokens}"
    return (f"[bold]{plan.strategy}[/] plan for [bold]{plan.model}[/]: {len(plan.frames)} frames, "
            f"{plan.total_tokens} tokens ({vs}; budget {plan.budget})")
