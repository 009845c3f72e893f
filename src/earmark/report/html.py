"""Build the report pages. The arithmetic (time -> x, scores -> y, thumbnail sizes) is in pure functions;
jinja2 (autoescape on) only lays out what they return, so every file name and label is escaped."""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import write_text_atomic
from ..errors import ConfigError

WIDTH = 1000
MARGIN = 48
CURVE_H = 70
THUMB_MIN, THUMB_MAX = 26, 96
COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")


def _env():
    try:
        import jinja2
    except ImportError:
        raise ConfigError("reports need jinja2: pip install 'earmark[report]'") from None
    return jinja2.Environment(loader=jinja2.PackageLoader("earmark.report", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                              trim_blocks=True, lstrip_blocks=True)


def x_of(t: float, duration: float) -> float:
    """Seconds -> SVG x (the plot spans ``[MARGIN, WIDTH - MARGIN]``)."""
    return round(MARGIN + (WIDTH - 2 * MARGIN) * (t / duration if duration > 0 else 0.0), 2)


def curve_points(starts: Sequence[float], window: float, scores: Sequence[float], duration: float,
                 height: float = CURVE_H) -> list[dict[str, float]]:
    """One point per window at its centre; y from the scores' own range (top = highest)."""
    s = np.asarray(scores, float)
    finite = s[np.isfinite(s)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = hi - lo or 1.0
    out = []
    for t, v in zip(starts, s):
        y = height - 4 - (height - 8) * ((v - lo) / span if np.isfinite(v) else 0.0)
        out.append({"t": round(float(t) + window / 2, 3), "x": x_of(float(t) + window / 2, duration),
                    "y": round(float(y), 2), "score": round(float(v), 3) if np.isfinite(v) else None})
    return out


def thumb_height(tokens: int, max_tokens: int) -> int:
    """Thumbnail height grows with the frame's token count (area ∝ tokens)."""
    if max_tokens <= 0:
        return THUMB_MIN
    return int(round(THUMB_MIN + (THUMB_MAX - THUMB_MIN) * math.sqrt(max(tokens, 0) / max_tokens)))


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
    """The audio's RMS envelope (dBFS mapped to 0..1 over −60..0 dB) at ``points`` instants."""
    from ..media.audio import stream_audio
    from ..media.probe import info

    vi = info(path)
    if not vi.has_audio:
        return []
    x = np.concatenate([np.zeros(0, np.float32), *stream_audio(vi)])
    if not len(x):
        return []
    edges = np.linspace(0, len(x), points + 1).astype(int)
    out = []
    for i in range(points):
        seg = x[edges[i]:max(edges[i + 1], edges[i] + 1)]
        db = 20 * np.log10(max(float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))), 1e-6))
        level = min(1.0, max(0.0, (db + 60) / 60))
        t = (i + 0.5) * duration / points
        out.append({"x": x_of(t, duration), "h": round(level, 3)})
    return out


def timeline_view(indexes: Sequence, plan=None, frames: Sequence = (), truth: Sequence[tuple[float, float]] = (),
                  envelope_points: Sequence[dict] = (), labels: Sequence[str] = (), assets: dict | None = None,
                  title: str | None = None) -> dict[str, Any]:
    """Everything the timeline template draws, as plain values (no HTML)."""
    if not indexes:
        raise ConfigError("a timeline report needs at least one index")
    first = indexes[0]
    tl0 = first.timeline
    duration = float(tl0.duration_s)
    curves = []
    for i, res in enumerate(indexes):
        tl = res.timeline
        pts = curve_points(tl.starts.tolist(), tl.window_s, tl.scores.tolist(), duration)
        curves.append({"probe": tl.probe, "colour": COLOURS[i % len(COLOURS)], "points": pts,
                       "path": " ".join(f"{p['x']},{p['y']}" for p in pts),
                       "anchors": [{"t": a.time_s, "x": x_of(a.time_s, duration), "x0": x_of(a.start_s, duration),
                                    "x1": x_of(a.end_s, duration), "score": round(a.score, 3)} for a in res.anchors]})
    plan_view = None
    if plan is not None:
        by_index = {f.index: f for f in frames}
        max_tokens = max((f.tokens for f in plan.frames), default=0)
        slot = (WIDTH - 2 * MARGIN) / max(1, len(plan.frames))
        items = []
        for i, pf in enumerate(plan.frames):
            fr = by_index.get(i)
            item = {"i": i, "t": pf.time_s, "x": x_of(pf.time_s, duration), "w": pf.width, "h": pf.height,
                    "tokens": pf.tokens, "role": pf.role,
                    "height": min(thumb_height(pf.tokens, max_tokens), int(max(slot * 0.95, 12) * (
                        2.4 if pf.role == "anchor" else 1.0))),
                    "pts": None if fr is None else fr.pts_s}
            if fr is not None:
                if assets is not None:
                    item["thumb"], item["full"] = assets["save"](i, fr.image)
                else:
                    item["thumb"] = data_url(fr.image, max_side=160)
                    item["full"] = data_url(fr.image, fmt="PNG")
            items.append(item)
        plan_view = {"model": plan.model, "strategy": plan.strategy, "budget": plan.budget,
                     "target": plan.target_tokens, "total": plan.total_tokens, "frames": items,
                     "anchors": [{"t": a.time_s, "x": x_of(a.time_s, duration), "x0": x_of(a.start_s, duration),
                                  "x1": x_of(a.end_s, duration)} for a in plan.anchors],
                     "probe": plan.config.get("probe"), "notes": list(plan.notes)}
    ticks = [{"t": t, "x": x_of(t, duration), "label": _clock(t)} for t in _tick_times(duration)]
    return {"title": title or Path(tl0.video).name, "video": tl0.video, "duration": duration,
            "width": WIDTH, "margin": MARGIN, "curve_h": CURVE_H, "curves": curves, "plan": plan_view,
            "truth": [{"x0": x_of(s, duration), "x1": x_of(e, duration), "label": f"[{_clock(s)}, {_clock(e)})"}
                      for s, e in truth],
            "envelope": list(envelope_points), "labels": list(labels), "ticks": ticks,
            "anchor_times": sorted({a["t"] for c in curves[:1] for a in c["anchors"]}
                                   | ({a["t"] for a in plan_view["anchors"]} if plan_view else set()))}


def _tick_times(duration: float) -> list[float]:
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
    step = next((s for s in steps if duration / s <= 12), 3600)
    return [float(t) for t in np.arange(0, duration + 1e-9, step)]


def _clock(t: float) -> str:
    m, s = divmod(t, 60)
    return f"{int(m)}:{s:04.1f}"


def render_timeline(view: dict[str, Any], out: str | Path) -> Path:
    """Write the per-video timeline page (atomically)."""
    html = _env().get_template("timeline.html.j2").render(v=view, data=json.dumps(
        {"anchors": view["anchor_times"]}))
    return write_text_atomic(out, html)


def eval_view(results_dir: str | Path) -> dict[str, Any]:
    from ..eval.report import display_name

    root = Path(results_dir)
    f = root / "results.json"
    if not f.is_file():
        raise ConfigError(f"{root}: not an eval results folder (no results.json)")
    doc = json.loads(f.read_text())
    k = doc["config"]["k"]
    rows = []
    for name, r in doc["strategies"].items():
        if r["group"] == "curve":
            continue
        rows.append({"name": display_name(name, k), "shape": r["shape"], "tokens": r["tokens"],
                     "acc": r["accuracy_mean"] * 100, "std": r["accuracy_std"] * 100, "seeds": r["seeds"],
                     "p_u": (r.get("vs_uniform") or {}).get("p"), "p_r": (r.get("vs_random") or {}).get("p"),
                     "recovery": r.get("recovery_ratio"), "ev": r.get("event_accuracy_mean"),
                     "bg": r.get("background_accuracy_mean")})
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
    curves = []
    for i, (probe, r) in enumerate(rec["index"].items()):
        pts = curve_points([float(s) for s in range(T)], 1.0, r["scores"], duration)
        curves.append({"probe": probe, "colour": COLOURS[i % len(COLOURS)], "points": pts,
                       "path": " ".join(f"{p['x']},{p['y']}" for p in pts),
                       "anchors": [{"t": t, "x": x_of(t, duration), "x0": x_of(int(t), duration),
                                    "x1": x_of(int(t) + 1, duration), "score": None} for t in r["anchors"]]})
    names = rec["label_names"]
    strategies = []
    for name, s in rec["strategies"].items():
        plan = rec["plans"][name]
        max_tok = max(f[2] for f in plan["frames"])
        strategies.append({"name": name, "accuracy": s["accuracy"] * 100,
                           "cells": [{"x0": x_of(i, duration), "x1": x_of(i + 1, duration),
                                      "ok": p == y, "label": names[p], "size": plan["frames"][i][1],
                                      "tokens": plan["frames"][i][2],
                                      "height": thumb_height(plan["frames"][i][2], max_tok) // 3}
                                     for i, (p, y) in enumerate(zip(s["predictions"], rec["labels"]))]})
    s0, e0 = rec["event"]
    return {"title": rec["video_id"], "video": rec["path"], "duration": duration, "width": WIDTH,
            "margin": MARGIN, "curve_h": CURVE_H, "curves": curves, "plan": None, "envelope": [],
            "truth": [{"x0": x_of(s0, duration), "x1": x_of(e0, duration), "label": f"{rec['category']} [{s0}, {e0})"}]
            if e0 > s0 else [], "labels": [rec["category"]],
            "ticks": [{"t": t, "x": x_of(t, duration), "label": _clock(t)} for t in _tick_times(duration)],
            "anchor_times": sorted({a["t"] for a in curves[0]["anchors"]}) if curves else [],
            "strategies": strategies}


def render_eval(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """The eval page (curve, main table, recall table, sortable video list) and one timeline per test video."""
    root = Path(results_dir)
    view = eval_view(root)
    env = _env()
    for vf in sorted((root / "videos").glob("*.json")):
        rv = record_view(json.loads(vf.read_text()))
        write_text_atomic(vf.with_suffix(".html"), env.get_template("timeline.html.j2").render(
            v=rv, data=json.dumps({"anchors": rv["anchor_times"]}), back="../index.html"))
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
