"""Build the report pages. The arithmetic (time -> x, scores -> y and their axis, thumbnail sizes and lanes) is in
pure functions; jinja2 (autoescape on) only lays out what they return, so every file name and label is escaped.
The timeline is drawn at ``WIDTH``; in a browser its script redoes the horizontal layout at the window's width."""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import write_text_atomic
from ..errors import ConfigError
from ..types import clock

WIDTH = 1000
"""The width the page is first drawn at; in a browser the chart then fills the window (and redraws on resize)."""
MIN_WIDTH = 640
MARGIN_L, MARGIN_R = 64, 24
"""The plot spans ``[MARGIN_L, width - MARGIN_R]``; the left margin holds the z-score axis."""
CURVE_H = 70
HEAD_H = 18
"""Room above each panel for its name."""
AUDIO_H = 52
PANEL_H = HEAD_H + CURVE_H + 12
LANE_TOP, LANE_GAP, LABEL_H, BOX_GAP = 20, 6, 14, 3
AXIS_H = 22
THUMB_MIN, THUMB_MAX = 26, 96
COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
TRUTH_COLOUR = "#f0a800"
"""Amber: unlike every probe colour in COLOURS (and the grey audio envelope)."""


def _env():
    try:
        import jinja2
    except ImportError:
        raise ConfigError("reports need jinja2: pip install 'earmark[report]'") from None
    return jinja2.Environment(loader=jinja2.PackageLoader("earmark.report", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                              trim_blocks=True, lstrip_blocks=True)


def script_json(obj: Any) -> str:
    """JSON to embed in an inline ``<script>``: ``<``, ``>``, ``&``, U+2028 and U+2029 are written as ``\\uXXXX``
    escapes, so no string in it can close the script element (``</script>``), open a comment, or end a JS line."""
    text = json.dumps(obj)
    for ch in ("<", ">", "&", "\u2028", "\u2029"):
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text


def x_of(t: float, duration: float, width: float = WIDTH) -> float:
    """Seconds -> SVG x (the plot spans ``[MARGIN_L, width - MARGIN_R]``)."""
    frac = t / duration if duration > 0 else 0.0
    return round(MARGIN_L + (width - MARGIN_L - MARGIN_R) * frac, 2)


def _scale(scores: Sequence[float]) -> tuple[float, float]:
    s = np.asarray(scores, float)
    finite = s[np.isfinite(s)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return lo, (hi if hi > lo else lo + 1.0)


def _y(v: float, lo: float, hi: float, height: float) -> float:
    return round(height - 4 - (height - 8) * ((v - lo) / (hi - lo) if np.isfinite(v) else 0.0), 2)


def curve_points(starts: Sequence[float], window: float, scores: Sequence[float], duration: float,
                 height: float = CURVE_H) -> list[dict[str, float]]:
    """One point per window at its centre; y from the scores' own range (top = highest)."""
    lo, hi = _scale(scores)
    out = []
    for t, v in zip(starts, np.asarray(scores, float)):
        out.append({"t": round(float(t) + window / 2, 3), "x": x_of(float(t) + window / 2, duration),
                    "y": _y(float(v), lo, hi, height), "score": round(float(v), 3) if np.isfinite(v) else None})
    return out


def z_ticks(scores: Sequence[float], height: float = CURVE_H, most: int = 4) -> list[dict[str, Any]]:
    """The y-axis of a curve: round z-score values (steps of 1, 2 or 5 × 10^k, at most ``most`` of them) inside
    the scores' range, at the same y as :func:`curve_points` puts them."""
    lo, hi = _scale(scores)
    raw = (hi - lo) / most
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * (1 - 1e-9))
    digits = max(0, -math.floor(math.log10(step) + 1e-9))
    out = []
    for k in range(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1):
        v = round(k * step, digits)
        out.append({"v": v, "y": _y(v, lo, hi, height), "label": f"{v:.{digits}f}".replace("-", "\u2212")})
    return out


def thumb_height(tokens: int, max_tokens: int) -> int:
    """Thumbnail size (its longer side) grows with the frame's token count (area ∝ tokens)."""
    if max_tokens <= 0:
        return THUMB_MIN
    return int(round(THUMB_MIN + (THUMB_MAX - THUMB_MIN) * math.sqrt(max(tokens, 0) / max_tokens)))


def frame_box(width: int, height: int, side: float) -> tuple[float, float]:
    """A thumbnail box of the frame's own shape whose longer side is ``side``."""
    scale = side / max(width, height, 1)
    return round(max(4.0, width * scale), 1), round(max(4.0, height * scale), 1)


def frame_size(width: int, height: int) -> str:
    """How a frame size is written everywhere: width × height in pixels."""
    return f"{width}×{height}"


def label_width(text: str, px: float = 10.0) -> float:
    """A generous estimate of a label's drawn width (the browser measures the real one when it lays out)."""
    return round(0.62 * px * len(text) + 4, 1)


def pack_frames(frames: Sequence[dict[str, Any]], duration: float, width: float = WIDTH) -> float:
    """Size and place the thumbnails at a chart ``width`` so that no two (nor their labels) overlap; return the
    height they take.

    A thumbnail keeps its frame's shape; its longer side is ``side`` (from the tokens), at most the usual
    spacing of its group (the median time between one anchor frame and the next, or between other frames, in px,
    less a gap; 10 px at least).
    Each stays centred at its time. Anchor frames get the top lane(s), the other frames the lanes below: each
    frame goes into the first lane of its group where it overlaps nothing; in a lane the pictures share a bottom
    line and labels hang below it. Sets ``bw``, ``bh`` (the box), ``x``, ``y`` (its top left) and ``lx``, ``ly``
    (the label's centre and baseline) on each frame. The page's script does the same at the window's width.
    """
    lanes: list[dict[str, Any]] = []
    first = 0
    for anchors in (True, False):
        group = sorted((f for f in frames if (f["role"] == "anchor") == anchors), key=lambda f: (-f["side"], f["t"]))
        plot_w = width - MARGIN_L - MARGIN_R
        gaps = [b - a for a, b in itertools.pairwise(sorted(f["t"] for f in group)) if b > a]
        spacing = float(np.median(gaps)) * plot_w / duration if gaps and duration > 0 else plot_w
        cap = max(spacing - BOX_GAP - 0.5, 10.0)
        for f in group:
            f["bw"], f["bh"] = frame_box(f["w"], f["h"], min(f["side"], cap))
            cx = x_of(f["t"], duration, width)
            f["x"] = round(cx - f["bw"] / 2, 2)
            x0, x1 = f["x"], f["x"] + f["bw"]
            if f.get("label"):
                half = label_width(f["label"]) / 2
                f["lx"] = round(min(max(cx, half + 2), width - half - 2), 2)
                x0, x1 = min(x0, f["lx"] - half), max(x1, f["lx"] + half)
            lane = next((lane for lane in lanes[first:]
                         if all(x1 + BOX_GAP <= a or b + BOX_GAP <= x0 for a, b in lane["spans"])), None)
            if lane is None:
                lane = {"spans": [], "frames": []}
                lanes.append(lane)
            lane["spans"].append((x0, x1))
            lane["frames"].append(f)
        first = len(lanes)
    top = float(LANE_TOP)
    for lane in lanes:
        base = top + max(f["bh"] for f in lane["frames"])
        for f in lane["frames"]:
            f["y"] = round(base - f["bh"], 2)
            if f.get("label"):
                f["ly"] = round(base + LABEL_H - 3, 2)
        top = base + (LABEL_H if any(f.get("label") for f in lane["frames"]) else 0) + LANE_GAP
    return round(top, 2)


def data_url(image: np.ndarray, fmt: str = "JPEG", max_side: int | None = None, quality: int = 85) -> str:
    from PIL import Image

    img = Image.fromarray(image)
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    mime = "jpeg" if fmt == "JPEG" else "png"
    return f"data:image/{mime};base64,{base64.b64encode(buf.getvalue()).decode()}"


def envelope(path: str | Path, duration: float, points: int = 400) -> list[dict[str, float]]:
    """The audio's RMS envelope (dBFS mapped to 0..1 over −60..0 dB) at ``points`` instants over ``duration``.

    Streamed: the decoded audio is summed into the points' bins chunk by chunk, so a 3-hour file costs one chunk
    of memory, not the whole track (1.7 GB at 16 kHz float32). A stretch with no audio is drawn at 0."""
    from ..media.audio import stream_audio
    from ..media.container import info

    vi = info(path)
    if not vi.has_audio:
        return []
    chunks = stream_audio(vi)
    sr = chunks.sample_rate
    edges = np.linspace(0, max(1, int(round(duration * sr))), points + 1).astype(np.int64)
    power, count = np.zeros(points), np.zeros(points)
    pos = 0
    for chunk in chunks:
        n = len(chunk)
        if not n:
            continue
        # The chunk split where bins change: one sum per piece (np.add.reduceat), no per-sample bin lookup.
        inner = edges[(edges > pos) & (edges < pos + n)] - pos
        starts = np.concatenate([[0], inner]).astype(np.int64)
        first = int(np.searchsorted(edges, pos, side="right")) - 1
        bins = np.clip(first + np.arange(len(starts)), 0, points - 1)
        np.add.at(power, bins, np.add.reduceat(np.square(chunk, dtype=np.float64), starts))
        np.add.at(count, bins, np.diff(np.concatenate([starts, [n]])))
        pos += n
    if not pos:
        return []
    out = []
    for i in range(points):
        rms = float(np.sqrt(power[i] / count[i])) if count[i] else 0.0
        db = 20 * np.log10(max(rms, 1e-6))
        level = min(1.0, max(0.0, (db + 60) / 60))
        t = (i + 0.5) * duration / points
        out.append({"t": round(t, 3), "x": x_of(t, duration), "h": round(level, 3)})
    return out


def _curve(i: int, probe: str, starts: Sequence[float], window: float, scores: Sequence[float], duration: float,
           anchors: list[dict[str, Any]]) -> dict[str, Any]:
    pts = curve_points(starts, window, scores, duration)
    return {"probe": probe, "colour": COLOURS[i % len(COLOURS)], "points": pts, "ticks": z_ticks(scores),
            "path": " ".join(f"{p['x']},{p['y']}" for p in pts), "anchors": anchors}


def _layout(view: dict[str, Any], frames_h: float, rows_h: float) -> dict[str, Any]:
    """Vertical positions: audio, one panel per curve, frames or prediction rows, the time axis."""
    top = AUDIO_H if view["envelope"] else 4
    y = top + len(view["curves"]) * PANEL_H
    axis = y + frames_h + rows_h
    return {"curves_y": [top + i * PANEL_H for i in range(len(view["curves"]))], "frames_y": y,
            "rows_y": y, "axis_y": axis, "height": axis + AXIS_H}


def timeline_view(indexes: Sequence, plan=None, frames: Sequence = (), truth: Sequence[tuple[float, float]] = (),
                  envelope_points: Sequence[dict] = (), labels: Sequence[str] = (), assets: dict | None = None,
                  title: str | None = None) -> dict[str, Any]:
    """Everything the timeline template draws, as plain values (no HTML), laid out at ``WIDTH``."""
    if not indexes:
        raise ConfigError("a timeline report needs at least one index")
    first = indexes[0]
    tl0 = first.timeline
    duration = float(tl0.duration_s)
    curves = []
    for i, res in enumerate(indexes):
        tl = res.timeline
        curves.append(_curve(i, tl.probe, tl.starts.tolist(), tl.window_s, tl.scores.tolist(), duration,
                             [{"t": a.time_s, "x": x_of(a.time_s, duration), "t0": a.start_s, "t1": a.end_s,
                               "x0": x_of(a.start_s, duration), "x1": x_of(a.end_s, duration),
                               "score": round(a.score, 3)} for a in res.anchors]))
    plan_view = None
    frames_h = 0.0
    if plan is not None:
        by_index = {f.index: f for f in frames}
        max_tokens = max((f.tokens for f in plan.frames), default=0)
        items = []
        for i, pf in enumerate(plan.frames):
            fr = by_index.get(i)
            item = {"i": i, "t": pf.time_s, "w": pf.width, "h": pf.height, "size": frame_size(pf.width, pf.height),
                    "tokens": pf.tokens, "role": pf.role, "side": thumb_height(pf.tokens, max_tokens),
                    "label": f"{frame_size(pf.width, pf.height)} · {pf.tokens} tok" if pf.role == "anchor" else "",
                    "pts": None if fr is None else fr.pts_s}
            if fr is not None:
                if assets is not None:
                    item["thumb"], item["full"] = assets["save"](i, fr.image)
                else:
                    item["thumb"] = data_url(fr.image, max_side=160)
                    item["full"] = data_url(fr.image, fmt="PNG")
            items.append(item)
        frames_h = pack_frames(items, duration)
        plan_view = {"model": plan.model, "strategy": plan.strategy, "budget": plan.budget,
                     "target": plan.target_tokens, "total": plan.total_tokens, "frames": items,
                     "anchors": [{"t": a.time_s, "x": x_of(a.time_s, duration), "x0": x_of(a.start_s, duration),
                                  "x1": x_of(a.end_s, duration)} for a in plan.anchors],
                     "probe": plan.config.get("probe"), "notes": list(plan.notes)}
    ticks = [{"t": t, "x": x_of(t, duration), "label": clock(t)} for t in _tick_times(duration)]
    view = {"title": title or Path(tl0.video).name, "video": tl0.video, "duration": duration,
            "width": WIDTH, "margin_l": MARGIN_L, "margin_r": MARGIN_R, "curve_h": CURVE_H, "head_h": HEAD_H,
            "curves": curves, "plan": plan_view, "truth_colour": TRUTH_COLOUR,
            "truth": [{"t0": s, "t1": e, "x0": x_of(s, duration), "x1": x_of(e, duration),
                       "label": f"[{clock(s)}, {clock(e)})"} for s, e in truth],
            "envelope": list(envelope_points), "labels": list(labels), "ticks": ticks,
            "anchor_times": sorted({a["t"] for c in curves[:1] for a in c["anchors"]}
                                   | ({a["t"] for a in plan_view["anchors"]} if plan_view else set()))}
    view["layout"] = _layout(view, frames_h, 0.0)
    return view


def _tick_times(duration: float) -> list[float]:
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
    step = next((s for s in steps if duration / s <= 12), 3600)
    return [float(t) for t in np.arange(0, duration + 1e-9, step)]


def page_data(view: dict[str, Any]) -> str:
    """What the page's script needs (anchor times and the horizontal scale), as script-safe JSON."""
    return script_json({"anchors": view["anchor_times"], "duration": view["duration"], "ml": view["margin_l"],
                        "mr": view["margin_r"], "min_width": MIN_WIDTH, "lane_top": LANE_TOP,
                        "lane_gap": LANE_GAP, "label_h": LABEL_H, "box_gap": BOX_GAP, "axis_h": AXIS_H})


def render_timeline(view: dict[str, Any], out: str | Path) -> Path:
    """Write the per-video timeline page (atomically)."""
    html = _env().get_template("timeline.html.j2").render(v=view, data=page_data(view))
    return write_text_atomic(out, html)


def eval_view(results_dir: str | Path) -> dict[str, Any]:
    from ..eval.results import display_name, interval, strategy_rank

    root = Path(results_dir)
    f = root / "results.json"
    if not f.is_file():
        raise ConfigError(f"{root}: not an eval results folder (no results.json)")
    doc = json.loads(f.read_text())
    k = doc["config"]["k"]
    rows = []
    for name, r in sorted(doc["strategies"].items(), key=lambda item: strategy_rank(item[0])):
        if r["group"] == "curve":
            continue
        rows.append({"name": display_name(name, k), "shape": r["shape"], "tokens": r["tokens"],
                     "acc": r["accuracy_mean"] * 100, "std": r["accuracy_std"] * 100, "seeds": r["seeds"],
                     "p_u": (r.get("vs_uniform") or {}).get("p"), "p_r": (r.get("vs_random") or {}).get("p"),
                     "ci_u": interval(r.get("ci_uniform")), "ci_f": interval(r.get("ci_fixed_spread")),
                     "ci_fe": interval(r.get("ci_fixed_spread_event")),
                     "recovery": r.get("recovery_ratio"), "recovery_f": r.get("recovery_vs_fixed_spread"),
                     "ev": r.get("event_accuracy_mean"), "bg": r.get("background_accuracy_mean")})
    recall = [{"source": s, **{kk.replace(",", "_"): v for kk, v in r.items()}}
              for s, r in doc["recall"]["test"].items()]
    videos = []
    for vf in sorted((root / "videos").glob("*.json")):
        rec = json.loads(vf.read_text())
        st = rec["strategies"]
        best = next((n for n in st if n.startswith("anchored-")), None)
        gain = (st[best]["accuracy"] - st["uniform"]["accuracy"]) * 100 if best else 0.0
        ev = set(range(*rec["event"]))
        anchors = rec["plans"].get(best, {}).get("anchors", []) if best else []
        hit = sum(int(t) in ev for t in anchors) / len(anchors) if anchors and ev else None
        videos.append({"id": rec["video_id"], "category": rec["category"], "event": rec["event"],
                       "gain": gain, "recall": hit, "href": f"videos/{rec['video_id']}.html"})
    curve = root / "curve.png"
    sweeps = []
    for png in sorted((root / "sweeps").glob("*.png")):
        csv = png.with_suffix(".csv")
        table = [line.split(",") for line in csv.read_text().splitlines()] if csv.exists() else []
        png_url = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
        sweeps.append({"name": png.stem, "png": png_url, "table": table})
    return {"doc": doc, "rows": rows, "recall": recall, "videos": videos, "k": k, "sweeps": sweeps,
            "curve": "data:image/png;base64," + base64.b64encode(curve.read_bytes()).decode() if curve.exists()
            else None}


def record_view(rec: dict[str, Any]) -> dict[str, Any]:
    """A timeline view for one eval record (no pictures: planned frames are drawn as sized boxes)."""
    T = len(rec["labels"])
    duration = float(T)
    curves = [_curve(i, probe, [float(s) for s in range(T)], 1.0, r["scores"], duration,
                     [{"t": t, "x": x_of(t, duration), "t0": int(t), "t1": int(t) + 1, "x0": x_of(int(t), duration),
                       "x1": x_of(int(t) + 1, duration), "score": None} for t in r["anchors"]])
              for i, (probe, r) in enumerate(rec["index"].items())]
    names = rec["label_names"]
    strategies = []
    for name, s in rec["strategies"].items():
        plan = rec["plans"][name]
        max_tok = max(f[2] for f in plan["frames"])
        cells = []
        for i, (p, y) in enumerate(zip(s["predictions"], rec["labels"])):
            fr = plan["frames"][i]  # [time, width, tokens] (+ height, where the record has it)
            size = frame_size(fr[1], fr[3]) if len(fr) > 3 else f"{fr[1]} px wide"
            cells.append({"t0": i, "t1": i + 1, "x0": x_of(i, duration), "x1": x_of(i + 1, duration),
                          "ok": p == y, "label": names[p], "size": size, "tokens": fr[2],
                          "height": thumb_height(fr[2], max_tok) // 3})
        strategies.append({"name": name, "accuracy": s["accuracy"] * 100, "cells": cells})
    s0, e0 = rec["event"]
    view = {"title": rec["video_id"], "video": rec["path"], "duration": duration, "width": WIDTH,
            "margin_l": MARGIN_L, "margin_r": MARGIN_R, "curve_h": CURVE_H, "head_h": HEAD_H, "curves": curves,
            "plan": None, "envelope": [], "truth_colour": TRUTH_COLOUR,
            "truth": [{"t0": s0, "t1": e0, "x0": x_of(s0, duration), "x1": x_of(e0, duration),
                       "label": f"{rec['category']} [{s0}, {e0})"}] if e0 > s0 else [], "labels": [rec["category"]],
            "ticks": [{"t": t, "x": x_of(t, duration), "label": clock(t)} for t in _tick_times(duration)],
            "anchor_times": sorted({a["t"] for a in curves[0]["anchors"]}) if curves else [],
            "strategies": strategies}
    view["layout"] = _layout(view, 0.0, len(strategies) * 34)
    return view


def render_eval(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """The eval page (curve, main table, recall table, sortable video list) and one timeline per test video."""
    root = Path(results_dir)
    view = eval_view(root)
    env = _env()
    for vf in sorted((root / "videos").glob("*.json")):
        rv = record_view(json.loads(vf.read_text()))
        write_text_atomic(vf.with_suffix(".html"), env.get_template("timeline.html.j2").render(
            v=rv, data=page_data(rv), back="../index.html"))
    target = Path(out) if out else root / "index.html"
    return write_text_atomic(target, env.get_template("eval.html.j2").render(e=view))


def timeline_report(indexes: Sequence, out: str | Path, *, plan=None, truth: Sequence[tuple[float, float]] = (),
                    labels: Sequence[str] = (), assets_dir: str | Path | None = None) -> Path:
    """Write one video's timeline page: its audio envelope, eventness per probe, anchors, truth and (with a plan)
    the planned frames, extracted now, as thumbnails sized by their tokens.

    >>> timeline_report([earmark.index("clip.mp4")], "report.html", plan=p)   # doctest: +SKIP
    """
    from ..media.frames import extract

    out = Path(out)
    video = indexes[0].timeline.video
    frames = list(extract(video, plan)) if plan is not None else []
    assets = None
    if assets_dir is not None:
        adir = Path(assets_dir)
        adir.mkdir(parents=True, exist_ok=True)
        rel = Path(_relative(adir, out.parent))

        def save(i: int, image: np.ndarray) -> tuple[str, str]:
            from PIL import Image

            img = Image.fromarray(image)
            img.save(adir / f"frame{i:04d}.png")
            thumb = img.copy()
            thumb.thumbnail((160, 160))
            thumb.save(adir / f"thumb{i:04d}.jpg", quality=85)
            return (rel / f"thumb{i:04d}.jpg").as_posix(), (rel / f"frame{i:04d}.png").as_posix()

        assets = {"save": save}
    env_pts = envelope(video, float(indexes[0].timeline.duration_s)) if Path(video).exists() else []
    view = timeline_view(indexes, plan, frames, truth, env_pts, labels, assets)
    return render_timeline(view, out)


def _relative(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target.resolve(), start.resolve())
