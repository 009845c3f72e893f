"""Highlight clips cut from the video with PyAV (no ffmpeg program needed), one file per segment.

Two named policies:

- ``copy`` (stream copy, fast): packets are copied as they are, so a clip can only start on a keyframe: it
  starts at the last keyframe at or before the segment's start (up to one keyframe interval early) and ends
  with the last picture decoded before the segment's end. Nothing is decoded or re-encoded; the container and
  codecs are the source's.
- ``reencode`` (frame-accurate): the pictures are decoded and encoded again (H.264, and AAC for the sound,
  in MP4; M4A for a file without pictures), exactly the frames ``[in, out)`` an EDL names for the segment
  (:func:`earmark.sinks.edl.segment_frames`), the sound cut to the sample.

Each clip reports where it really starts and ends on the source's timeline. The folder appears complete or not
at all: the clips and ``manifest.json`` are written to a temporary folder beside it and renamed at the end; an
existing folder is replaced only when earmark wrote it (its manifest says ``earmark.clips``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .._io import atomic_folder, check_replaceable_output, dumps_json
from ..errors import ConfigError, MediaError
from ..highlights import Highlights, Segment, frame_rate
from ..types import SCHEMA_VERSION, Progress, VideoInfo

CUT_MODES = ("copy", "reencode")
CLIP_FILE = re.compile(r"^\d{3}_\d{6}\.\d{3}s\.[A-Za-z0-9]{1,5}$")
"""Names of the clips earmark writes: rank, then the segment's start (``001_000012.000s.mp4``)."""
_TOL = 1e-6
AUDIO_PREROLL_S = 0.5
"""``reencode`` decodes from this much before a clip: audio decoders drop their first samples after a seek."""


@dataclass(frozen=True)
class Clip:
    """One written clip: the segment asked for and what the file really holds (source timeline, seconds)."""

    file: str
    rank: int
    start_s: float
    end_s: float
    clip_start_s: float
    """Where the clip's first picture (or sample) is on the source's timeline."""
    clip_end_s: float
    mode: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def clip_name(segment: Segment, ext: str) -> str:
    return f"{segment.rank:03d}_{segment.start_s:010.3f}s{ext}"


def _streams(inp, vi: VideoInfo):
    v = next((s for s in inp.streams.video if vi.video is not None and s.index == vi.video.index), None)
    a = next((s for s in inp.streams.audio if s.index == vi.default_audio_stream), None)
    return v, a


def _seconds(pts: int, stream) -> float:
    return float(pts * stream.time_base)


def copy_clip(src: str | Path, vi: VideoInfo, start_s: float, end_s: float, out: Path) -> tuple[float, float]:
    """Stream-copy ``[start_s, end_s)`` of ``src`` into ``out`` from the keyframe at or before ``start_s``;
    returns where the clip really starts and ends (source seconds)."""
    import av

    t0 = vi.start_time_s
    with av.open(str(src)) as inp:
        v, a = _streams(inp, vi)
        streams = [s for s in (v, a) if s is not None]
        ref = v if v is not None else a
        with av.open(str(out), "w") as dst:
            omap = {s.index: dst.add_stream_from_template(s) for s in streams}
            inp.seek(max(0, int((t0 + start_s) / ref.time_base)), stream=ref, backward=True, any_frame=False)
            base: float | None = None  # the clip's first picture, source seconds
            pending: list = []  # packets since the best start found so far (at most one keyframe interval)
            fixed = False
            past: set[int] = set()
            end_seen = base_end = None
            for pkt in inp.demux(streams):
                if pkt.pts is None or pkt.dts is None:
                    continue
                st = pkt.stream
                t = _seconds(pkt.pts, st) - t0
                td = _seconds(pkt.dts, st) - t0
                dur = _seconds(pkt.duration or 0, st)
                if st is ref:
                    if td >= end_s - _TOL:
                        past.add(st.index)
                    elif not fixed:
                        if pkt.is_keyframe and t <= start_s + _TOL and (v is not None or t + dur > start_s):
                            base, pending = t, []  # a later keyframe still before the start: begin there
                        if t > start_s + _TOL and base is not None:
                            fixed = True
                    if st.index not in past and base is not None:
                        pending.append(pkt)
                        end_seen = max(end_seen or t, t + dur)
                elif t >= end_s - _TOL:
                    past.add(st.index)
                else:
                    pending.append(pkt)
                if len(past) == len(streams):
                    break
                if fixed:
                    for p in pending:
                        _mux_shifted(dst, p, omap, base, t0)
                    pending = []
            if base is None:
                raise MediaError(src, f"no keyframe at or before {start_s:.3f} s to start a stream-copied clip")
            for p in pending:
                _mux_shifted(dst, p, omap, base, t0)
            base_end = end_seen if end_seen is not None else end_s
    return base, min(base_end, vi.duration_s)


def _mux_shifted(dst, pkt, omap: dict, base: float, t0: float) -> None:
    """Mux ``pkt`` with its times moved so the clip starts at 0; sound from before the first picture is left
    out."""
    st = pkt.stream
    if _seconds(pkt.pts, st) - t0 < base - _TOL and st.type == "audio":
        return
    shift = round((base + t0) / st.time_base)
    pkt.pts -= shift
    pkt.dts -= shift
    pkt.stream = omap[st.index]
    dst.mux(pkt)


def reencode_clip(src: str | Path, vi: VideoInfo, start_s: float, end_s: float, out: Path
                  ) -> tuple[float, float]:
    """Decode and encode exactly the frames ``[in, out)`` of the segment (H.264 + AAC), the sound cut to the
    sample; returns where the clip starts and ends (source seconds)."""
    import av
    import numpy as np

    from .edl import segment_frames

    rate = frame_rate(vi)
    t0 = vi.start_time_s
    seg = Segment(start_s, end_s, 0.0, start_s, 0.0)
    if rate is not None:
        first, last = segment_frames(seg, rate)
        t_in, t_out = float(first / rate), float(min(Fraction(last) / rate, Fraction(vi.duration_s)))
    else:
        t_in, t_out = start_s, end_s
    with av.open(str(src)) as inp:
        v, a = _streams(inp, vi)
        with av.open(str(out), "w", format="mp4" if v is not None else "ipod") as dst:
            ov = oa = None
            if v is not None:
                ov = dst.add_stream("libx264", rate=rate)
                ov.width = v.codec_context.width - v.codec_context.width % 2
                ov.height = v.codec_context.height - v.codec_context.height % 2
                ov.pix_fmt = "yuv420p"
                ov.codec_context.time_base = Fraction(1) / rate
                ov.options = {"crf": "18", "preset": "veryfast"}
                if vi.video.rotation:
                    ov.set_display_rotation(vi.video.rotation)
            fifo = resampler = None
            if a is not None:
                layout = a.codec_context.layout.name if a.codec_context.layout.nb_channels <= 2 else "stereo"
                oa = dst.add_stream("aac", rate=a.codec_context.sample_rate, layout=layout)
                resampler = av.AudioResampler(format="fltp", layout=layout, rate=a.codec_context.sample_rate)
                fifo = av.AudioFifo()
            ref = v if v is not None else a
            # Start decoding a little early: after a seek, audio decoders drop their first samples (Opus pre-roll).
            inp.seek(max(0, int((t0 + t_in - AUDIO_PREROLL_S) / ref.time_base)), stream=ref, backward=True,
                     any_frame=False)
            half = 0.5 / float(rate) if rate is not None else _TOL
            done: set[int] = set()
            n_pictures = 0
            last_pts = -1
            sr = a.codec_context.sample_rate if a is not None else 0
            written = 0
            for pkt in inp.demux([s for s in (v, a) if s is not None]):
                for frame in pkt.decode():
                    if frame.pts is None:
                        continue
                    t = float(frame.pts * frame.time_base) - t0
                    if pkt.stream is v:
                        if t >= t_out - half:
                            done.add(v.index)
                            continue
                        if t < t_in - half:
                            continue
                        pts = max(last_pts + 1, round((t - t_in) * rate))
                        last_pts = pts
                        img = frame.reformat(width=ov.width, height=ov.height, format="yuv420p")
                        img.pts, img.time_base = pts, Fraction(1) / rate
                        img.pict_type = av.video.frame.PictureType.NONE
                        dst.mux(ov.encode(img))
                        n_pictures += 1
                    else:
                        for rf in resampler.resample(frame):
                            x = rf.to_ndarray()
                            ta = float(rf.pts * rf.time_base) - t0 if rf.pts is not None else t
                            i0 = max(0, math.ceil((t_in - ta) * sr - 1e-6))
                            i1 = min(x.shape[1], math.ceil((t_out - ta) * sr - 1e-6))
                            if ta + x.shape[1] / sr >= t_out:
                                done.add(a.index)
                            if i1 <= i0:
                                continue
                            if written == 0 and i0 == 0 and ta > t_in + 0.5 / sr:  # the sound starts late: silence
                                gap = min(int(round((ta - t_in) * sr)), int(round((t_out - t_in) * sr)))
                                x = np.concatenate([np.zeros((x.shape[0], gap), x.dtype), x], axis=1)
                                i1 += gap
                            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i0:i1]), format="fltp",
                                                               layout=oa.layout.name)
                            chunk.sample_rate, chunk.pts, chunk.time_base = sr, written, Fraction(1, sr)
                            written += i1 - i0
                            fifo.write(chunk)
                            size = oa.codec_context.frame_size or 1024
                            while fifo.samples >= size:
                                dst.mux(oa.encode(fifo.read(size)))
                if len(done) == len([s for s in (v, a) if s is not None]):
                    break
            if ov is not None:
                dst.mux(ov.encode(None))
            if oa is not None:
                rest = fifo.read()
                if rest is not None:
                    dst.mux(oa.encode(rest))
                dst.mux(oa.encode(None))
    if v is not None and n_pictures == 0:
        raise MediaError(src, f"no picture between {t_in:.3f} s and {t_out:.3f} s to re-encode")
    return t_in, t_out


def _is_clips_folder(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    names = [p.name for p in folder.iterdir()]
    if not names:
        return True
    try:
        doc = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(doc, dict) or doc.get("kind") != "earmark.clips":
        return False
    return all(n == "manifest.json" or (CLIP_FILE.match(n) and (folder / n).is_file()
                                        and not (folder / n).is_symlink()) for n in names)


def check_clips_folder(out_dir: str | Path) -> None:
    """Refuse (one line naming the folder) a ``--cut`` folder earmark may not replace."""
    out = Path(out_dir)
    check_replaceable_output(out)
    if out.exists() and not _is_clips_folder(out):
        raise ConfigError(f"{out}: exists and holds files earmark did not write (only a folder of earmark clips is "
                          f"replaced); move it or choose another --cut folder")


def clip_extension(vi: VideoInfo, mode: str) -> str:
    """``copy`` keeps the source's container; ``reencode`` writes MP4 (M4A without pictures)."""
    if mode == "reencode":
        return ".mp4" if vi.video is not None else ".m4a"
    return Path(vi.path).suffix.lower() or ".mp4"


def clip_files(vi: VideoInfo, h: Highlights, mode: str) -> dict[int, str]:
    """The file name each segment's clip gets, by rank."""
    ext = clip_extension(vi, mode)
    return {g.rank: clip_name(g, ext) for g in h.segments}


def cut_clips(video: str | Path, h: Highlights, out_dir: str | Path, mode: str = "copy",
              video_info: VideoInfo | None = None, progress: Progress | None = None
              ) -> list[Clip]:
    """Write one clip per segment of ``h`` (rank order) into ``out_dir`` with ``mode`` (:data:`CUT_MODES`), and a
    ``manifest.json`` listing them; see the module docstring for what each mode guarantees."""
    from ..media.container import fingerprint, info

    if mode not in CUT_MODES:
        raise ConfigError(f"cut mode {mode!r}: expected one of {', '.join(CUT_MODES)}")
    vi = video_info or info(video)
    if vi.fingerprint != h.fingerprint or fingerprint(video) != h.fingerprint:
        raise ConfigError(f"{video}: not the file the highlights were made from (fingerprint differs)")
    out = Path(out_dir)
    check_clips_folder(out)
    ext = clip_extension(vi, mode)
    clips: list[Clip] = []
    with atomic_folder(out) as tmp:
        segments: Sequence[Segment] = sorted(h.segments, key=lambda g: g.rank)
        for i, g in enumerate(segments):
            name = clip_name(g, ext)
            cut = copy_clip if mode == "copy" else reencode_clip
            try:
                a, b = cut(video, vi, g.start_s, g.end_s, tmp / name)
            except (OSError, ValueError) as e:  # PyAV's FFmpeg errors are OSError/ValueError subclasses
                raise MediaError(video, f"cannot cut {g.start_s:.3f}-{g.end_s:.3f} s ({e})") from None
            clips.append(Clip(name, g.rank, g.start_s, g.end_s, round(a, 6), round(b, 6), mode))
            if progress is not None:
                progress("cut", i + 1, len(segments))
        manifest = {"kind": "earmark.clips", "schema_version": SCHEMA_VERSION, "video": str(video), "mode": mode,
                    "clips": [c.to_dict() for c in clips]}
        (tmp / "manifest.json").write_text(dumps_json(manifest), encoding="utf-8")
    return clips
