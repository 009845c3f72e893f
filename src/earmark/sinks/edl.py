"""Highlights as files editors and spreadsheets open: CMX3600 EDL (frame-accurate timecodes), FCPXML 1.10 (rational
frame-aligned times), CSV and JSON.

Timecodes count the video's real frames at its real frame rate (``r_frame_rate``): 30000/1001 and 60000/1001 are
written drop-frame (``HH:MM:SS;FF``, frame numbers 0 and 1 — 0 to 3 at 59.94 — skipped at the start of every
minute not divisible by ten, so the timecode keeps to the wall clock); every other rate is non-drop with
``ceil(rate)`` frames per timecode second (23.976 counts 24). A segment ``[start, end)`` in seconds covers the
frames whose display interval it touches: in = ``floor(start · rate)``, out (exclusive, as CMX3600's out points
are) = ``ceil(end · rate)``.

Compared with PySceneDetect's EDL writer (``scenedetect.output.write_scene_list_edl``): the same event layout
(``001  AX  V  C  src-in src-out rec-in rec-out``, reel ``AX``), but PySceneDetect always writes ``FCM: NON-DROP
FRAME`` and builds ``HH:MM:SS`` from wall-clock seconds with the frame field from the fractional second, which at
29.97 is neither drop- nor non-drop-frame timecode; and its record column repeats the source times, where a reel
here is laid end to end from the record start (01:00:00:00 by default, the usual first frame of an edit).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

from .._io import dumps_json, write_atomic, write_text_atomic
from ..errors import ConfigError
from ..highlights import Highlights, Segment, in_time_order
from .export import FORMULA_START

DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))
MAX_EVENTS = 999
"""CMX3600 numbers events with three digits."""
RECORD_START = "01:00:00:00"
EDL_ORDERS = ("time", "rank")


def is_drop_frame(rate: Fraction) -> bool:
    """Drop-frame timecode is the convention at 29.97 and 59.94 (exactly 30000/1001, 60000/1001)."""
    return rate in DROP_FRAME_RATES


def timecode_base(rate: Fraction) -> int:
    """Frames per timecode second: 30 at 29.97, 24 at 23.976, 25 at 25."""
    return max(1, math.ceil(rate - Fraction(1, 1000)))


def frames_to_timecode(frame: int, rate: Fraction) -> str:
    """Frame number -> ``HH:MM:SS:FF`` (non-drop) or ``HH:MM:SS;FF`` (drop-frame at 29.97 / 59.94).

    >>> frames_to_timecode(1800, Fraction(30000, 1001)), frames_to_timecode(17982, Fraction(30000, 1001))
    ('00:01:00;02', '00:10:00;00')
    >>> frames_to_timecode(86399, Fraction(24000, 1001))
    '00:59:59:23'
    """
    if frame < 0:
        raise ConfigError(f"timecode of a negative frame number {frame}")
    base = timecode_base(rate)
    sep = ":"
    if is_drop_frame(rate):
        drop = 2 * base // 30  # 2 at 29.97, 4 at 59.94
        per_min = 60 * base - drop
        per_10min = 10 * per_min + drop
        tens, rem = divmod(frame, per_10min)
        frame += 9 * drop * tens + (drop * ((rem - drop) // per_min) if rem >= drop else 0)
        sep = ";"
    ff = frame % base
    s = frame // base
    hh, mm, ss = s // 3600, s // 60 % 60, s % 60
    if hh > 99:
        raise ConfigError(f"frame {frame} is past 99:59:59 at {float(rate):g} fps: a timecode has two hour digits")
    return f"{hh:02d}:{mm:02d}:{ss:02d}{sep}{ff:02d}"


def timecode_to_frames(tc: str, rate: Fraction) -> int:
    """``HH:MM:SS:FF`` (or ``;FF``) -> frame number at ``rate`` (drop-frame counting at 29.97 / 59.94)."""
    m = re.fullmatch(r"(\d{2}):(\d{2}):(\d{2})[:;.](\d{2})", tc.strip())
    base = timecode_base(rate)
    if not m or int(m[2]) > 59 or int(m[3]) > 59 or int(m[4]) >= base:
        raise ConfigError(f"timecode {tc!r}: expected HH:MM:SS:FF with MM, SS < 60 and FF < {base}")
    hh, mm, ss, ff = (int(x) for x in m.groups())
    frames = (hh * 3600 + mm * 60 + ss) * base + ff
    if is_drop_frame(rate):
        drop = 2 * base // 30
        minutes = hh * 60 + mm
        if mm % 10 and ss == 0 and ff < drop:
            raise ConfigError(f"timecode {tc!r} does not exist in drop-frame counting (frames 00-{drop - 1:02d} of "
                              f"minute {mm} are skipped)")
        frames -= drop * (minutes - minutes // 10)
    return frames


def segment_frames(segment: Segment, rate: Fraction) -> tuple[int, int]:
    """The frames ``[in, out)`` a segment covers: every frame whose display interval it touches."""
    first = math.floor(Fraction(segment.start_s) * rate + Fraction(1, 10**6))
    last = math.ceil(Fraction(segment.end_s) * rate - Fraction(1, 10**6))
    return first, max(first + 1, last)


def _ascii_line(text: str, limit: int) -> str:
    """Printable ASCII on one line (an EDL is a 7-bit text file); other characters become ``_``."""
    return "".join(c if " " <= c <= "~" else "_" for c in text)[:limit]


def edl_text(h: Highlights, *, title: str | None = None, reel: str = "AX", record_start: str = RECORD_START,
             order: str = EDL_ORDERS[0]) -> str:
    """The segments as a CMX3600 edit decision list: one cut event per segment, laid end to end on the record
    side from ``record_start``, in time order (``order="rank"``: best first), each with the source file's name
    (``* FROM CLIP NAME:``, which editors use to link the media) and its rank and score as comments."""
    rate = h.rate
    if rate is None:
        raise ConfigError(f"{h.video}: no video stream, so no frame rate for EDL timecodes")
    if order not in EDL_ORDERS:
        raise ConfigError(f"EDL order {order!r}: expected one of {', '.join(EDL_ORDERS)}")
    if len(h.segments) > MAX_EVENTS:
        raise ConfigError(f"{len(h.segments)} segments: a CMX3600 EDL holds at most {MAX_EVENTS} events "
                          f"(use --top)")
    if not re.fullmatch(r"[A-Za-z0-9_]{1,8}", reel):
        raise ConfigError(f"EDL reel {reel!r}: 1-8 letters, digits or _")
    drop = is_drop_frame(rate)
    name = _ascii_line(Path(h.video).name, 60)
    lines = [f"TITLE: {_ascii_line(title if title is not None else Path(h.video).stem, 70)}",
             f"FCM: {'DROP FRAME' if drop else 'NON-DROP FRAME'}", ""]
    channel = "AA/V" if h.has_audio else "V"
    rec = timecode_to_frames(record_start, rate)
    segments = in_time_order(h.segments) if order == "time" else sorted(h.segments, key=lambda g: g.rank)
    for i, g in enumerate(segments, 1):
        a, b = segment_frames(g, rate)
        src_in, src_out = frames_to_timecode(a, rate), frames_to_timecode(b, rate)
        rec_in, rec_out = frames_to_timecode(rec, rate), frames_to_timecode(rec + b - a, rate)
        lines.append(f"{i:03d}  {reel:<8} {channel:<4}  C        {src_in} {src_out} {rec_in} {rec_out}")
        lines.append(f"* FROM CLIP NAME: {name}")
        lines.append(f"* EARMARK: rank {g.rank}, score {g.score:.2f}, {g.start_s:.3f}-{g.end_s:.3f} s")
        rec += b - a
    return "\r\n".join(lines) + "\r\n"


FCPXML_VERSION = "1.10"


def rational_time(frames: int, rate: Fraction) -> str:
    """``frames`` at ``rate`` as FCPXML time: seconds as ``frames·den/num`` over the rate's numerator.

    >>> rational_time(90, Fraction(30000, 1001)), rational_time(50, Fraction(25)), rational_time(0, Fraction(25))
    ('90090/30000s', '50/25s', '0s')
    """
    if frames == 0:
        return "0s"
    return f"{frames * rate.denominator}/{rate.numerator}s"


def _name(text: str) -> str:
    """Text an XML 1.0 attribute can hold (control characters become ``_``)."""
    return "".join(c if c >= " " and c != "\x7f" else "_" for c in text)


def fcpxml_text(h: Highlights, *, size: tuple[int, int] | None = None, order: str = EDL_ORDERS[0],
                event: str = "earmark highlights") -> str:
    """The segments of ``h`` as an FCPXML 1.10 document; ``size`` is the video's
    displayed (width, height) for the format, ``order`` ``time`` or ``rank`` (best first) for the spine.

    FCPXML 1.10: one ``<format>`` (the real frame rate as ``frameDuration``, ``1001/30000s`` at 29.97), one
    ``<asset>`` (the file as a ``file://`` URL in a ``<media-rep>``, the 1.9+ layout) and a project whose
    sequence's spine holds one ``<asset-clip>`` per segment, laid end to end from ``0s``, each with a marker at
    its peak. Every time is on a frame boundary (:func:`rational_time`); a segment covers the frames it covers in
    the EDL (:func:`segment_frames`); the timecode format is drop-frame at 29.97 and 59.94, as the EDL's."""
    rate = h.rate
    if rate is None:
        raise ConfigError(f"{h.video}: no video stream, so no frame rate for FCPXML times")
    if order not in EDL_ORDERS:
        raise ConfigError(f"FCPXML order {order!r}: expected one of {', '.join(EDL_ORDERS)}")
    video = Path(h.video)
    total = max(1, math.ceil(Fraction(h.duration_s) * rate - Fraction(1, 10**6)))
    tc_format = "DF" if is_drop_frame(rate) else "NDF"

    root = ET.Element("fcpxml", version=FCPXML_VERSION)
    resources = ET.SubElement(root, "resources")
    fmt = {"id": "r1", "frameDuration": rational_time(1, rate)}
    if size is not None:
        fmt.update(width=str(int(size[0])), height=str(int(size[1])))
    ET.SubElement(resources, "format", fmt)
    asset = ET.SubElement(resources, "asset", {
        "id": "r2", "name": _name(video.stem), "start": "0s", "duration": rational_time(total, rate),
        "hasVideo": "1", "hasAudio": "1" if h.has_audio else "0", "format": "r1"})
    ET.SubElement(asset, "media-rep", kind="original-media", src=Path(os.path.abspath(h.video)).as_uri())
    project = ET.SubElement(ET.SubElement(ET.SubElement(root, "library"), "event", name=_name(event)), "project",
                            name=_name(f"{video.stem} highlights"))
    segments = in_time_order(h.segments) if order == "time" else sorted(h.segments, key=lambda g: g.rank)
    spans = [segment_frames(g, rate) for g in segments]
    length = sum(b - a for a, b in spans)
    sequence = ET.SubElement(project, "sequence", format="r1", duration=rational_time(length, rate), tcStart="0s",
                             tcFormat=tc_format)
    spine = ET.SubElement(sequence, "spine")
    offset = 0
    for g, (a, b) in zip(segments, spans):
        clip = ET.SubElement(spine, "asset-clip", {
            "ref": "r2", "name": _name(f"{video.stem} #{g.rank}"), "offset": rational_time(offset, rate),
            "start": rational_time(a, rate), "duration": rational_time(b - a, rate), "format": "r1",
            "tcFormat": tc_format})
        peak = min(max(math.floor(Fraction(g.peak_s) * rate + Fraction(1, 10**6)), a), b - 1)
        ET.SubElement(clip, "marker", start=rational_time(peak, rate), duration=rational_time(1, rate),
                      value=f"rank {g.rank}, score {g.score:.2f}")
        offset += b - a
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n\n{body}\n'


CSV_COLUMNS = ("rank", "start_s", "end_s", "duration_s", "score", "mean_score", "peak_s", "start_tc", "end_tc",
               "video", "scorer", "probe")


def _cell(v) -> str | float | int:
    if isinstance(v, str) and v.startswith(FORMULA_START):
        return "'" + v  # shown as text, never evaluated (OWASP's advice for CSV injection)
    return v


def csv_text(h: Highlights, order: str = EDL_ORDERS[0]) -> str:
    """One row per segment (time order, or ``rank``), with frame-accurate timecodes when the video has pictures."""
    rate = h.rate
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    segments = in_time_order(h.segments) if order == "time" else sorted(h.segments, key=lambda g: g.rank)
    for g in segments:
        a, b = segment_frames(g, rate) if rate is not None else (None, None)
        tc = (frames_to_timecode(a, rate), frames_to_timecode(b, rate)) if rate is not None else ("", "")
        row = (g.rank, g.start_s, g.end_s, round(g.duration_s, 6), g.score, g.mean_score, g.peak_s, *tc, h.video,
               h.scorer, h.probe)
        w.writerow([_cell(v) for v in row])
    return buf.getvalue()


HIGHLIGHT_FORMATS = (".json", ".csv", ".edl", ".fcpxml", ".html")


def highlight_format(path: str | Path) -> str:
    """``json``, ``csv``, ``edl``, ``fcpxml`` or ``html`` for an ``--out`` path (refuses anything else, naming it)."""
    suffix = Path(path).suffix.lower()
    if suffix not in HIGHLIGHT_FORMATS:
        raise ConfigError(f"--out {path}: unknown highlights format {suffix or '(none)'!r}; use one of "
                          f"{', '.join(HIGHLIGHT_FORMATS)}")
    return suffix[1:]


def render_highlights(h: Highlights, kind: str, *, order: str = EDL_ORDERS[0], size: tuple[int, int] | None = None,
                      **edl_kw) -> str:
    """``h`` as the text of a ``json``, ``csv``, ``edl`` or ``fcpxml`` file (``size``: the video's displayed width
    and height, for FCPXML's format)."""
    if kind == "json":
        return dumps_json(h.to_dict())
    if kind == "csv":
        return csv_text(h, order)
    if kind == "edl":
        return edl_text(h, order=order, **edl_kw)
    if kind == "fcpxml":
        return fcpxml_text(h, size=size, order=order)
    raise ConfigError(f"highlights format {kind!r}: render json, csv, edl or fcpxml here (the HTML reel: "
                      f"earmark.report.reel.reel_html)")


def write_rendered(path: str | Path, text: str) -> Path:
    """Write a rendered file atomically (EDL as ASCII bytes with its CRLF line ends kept)."""
    if Path(path).suffix.lower() == ".edl":
        return write_atomic(path, lambda tmp: tmp.write_bytes(text.encode("ascii")))
    return write_text_atomic(path, text)


def write_highlights(h: Highlights, path: str | Path, *, order: str = EDL_ORDERS[0],
                     size: tuple[int, int] | None = None, **edl_kw) -> Path:
    """Write ``h`` as JSON, CSV, EDL or FCPXML (by the suffix), atomically: a failure leaves no file behind."""
    return write_rendered(path, render_highlights(h, highlight_format(path), order=order, size=size, **edl_kw))
