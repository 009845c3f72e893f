"""Plan-then-decode frame extraction: decode exactly the frames a Plan names, at their planned sizes.

The planned times are visited in order. Before each one the reader asks the container's index
(through a second, demux-only handle) where the keyframe at or before it is: when that keyframe
lies ahead of what has been decoded, it seeks there; otherwise it keeps decoding, so every GOP
is decoded at most once for all the planned frames it holds. Frames far before the next planned
time are decoded with ``skip_frame=NONREF`` (non-reference B-frames are dropped by the decoder;
nothing needs them), and the decoder uses frame threads. For each planned time the answer is the
frame whose presentation interval ``[pts, next pts)`` contains it; only that frame is converted
to RGB and resized (anti-aliased, swscale) under the plan's fit policy. At most one planned
frame is held at a time.
"""

from __future__ import annotations

import threading
import time
import typing
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from .._io import atomic_folder, check_replaceable_output, dumps_json, is_frames_folder, remove_stale_temporaries
from ..errors import ConfigError, MediaError, NoVideoStreamError, unknown_name
from ..types import FITS, SCHEMA_VERSION, Fit, Frame, Plan, PlannedFrame, VideoInfo
from .container import check_file, info, open_container

SeekPolicy = Literal["auto", "sequential", "seek"]
"""``auto`` (the default): seek only when the next planned frame is past the next keyframe; ``sequential``:
decode through the file; ``seek``: seek before every planned frame (a baseline)."""
SEEK_POLICIES: tuple[SeekPolicy, ...] = typing.get_args(SeekPolicy)

SKIP_MARGIN_FRAMES = 3
"""Frames this many frame durations before a planned time are always decoded (never skipped as non-reference);
the answer is at most one frame duration before it at a steady frame rate."""

SEEK_BACK_S = 1.0
"""Where a seek lands past the keyframe it needs (containers without a keyframe index), look this much further
back, doubling each time."""

FrameFormat = Literal["png", "jpg"]
FRAME_FORMATS: tuple[FrameFormat, ...] = typing.get_args(FrameFormat)
"""Image formats ``earmark extract`` writes; the first is the default (lossless)."""


_LOCAL = threading.local()


def _reformat(frame: av.VideoFrame, width: int, height: int, interpolation: str) -> np.ndarray:
    """``frame.to_ndarray(width, height, rgb24, interpolation)``, with one scaler per output geometry kept per
    thread: ``to_ndarray`` builds a fresh swscale context on every call (~1.3 ms of a 1.4 ms 448->112 picture),
    a kept :class:`~av.video.reformatter.VideoReformatter` reuses it (the pixels are identical)."""
    cache = getattr(_LOCAL, "reformatters", None)
    if cache is None:
        cache = _LOCAL.reformatters = {}
    key = (frame.width, frame.height, frame.format.name, width, height, interpolation)
    ref = cache.get(key)
    if ref is None:
        if len(cache) > 64:  # a long run over many geometries: start over rather than grow
            cache.clear()
        ref = cache[key] = VideoReformatter()
    return ref.reformat(frame, width=width, height=height, format="rgb24", interpolation=interpolation).to_ndarray()


def _fit(frame: av.VideoFrame, width: int, height: int, fit: str, rotation: int) -> np.ndarray:
    """The picture of ``frame`` as RGB ``(height, width, 3)``: rotated upright, then fitted by ``fit``."""
    quarter = (rotation // 90) % 4
    sw, sh = (frame.height, frame.width) if quarter % 2 else (frame.width, frame.height)
    if fit == "stretch":
        cw, ch = width, height
    else:
        scale = min(width / sw, height / sh) if fit == "pad" else max(width / sw, height / sh)
        cw, ch = max(1, round(sw * scale)), max(1, round(sh * scale))
    rw, rh = (ch, cw) if quarter % 2 else (cw, ch)  # size before rotating
    interp = "AREA" if rw * rh < frame.width * frame.height else "BICUBIC"
    img = _reformat(frame, rw, rh, interp)
    if quarter:
        # Turn the picture upright the way ffmpeg does by default (tested against its output).
        img = np.ascontiguousarray(np.rot90(img, k=quarter))
    if fit == "stretch" or (cw, ch) == (width, height):
        return img
    if fit == "crop":
        x0, y0 = (cw - width) // 2, (ch - height) // 2
        return np.ascontiguousarray(img[y0:y0 + height, x0:x0 + width])
    out = np.zeros((height, width, 3), dtype=np.uint8)
    x0, y0 = (width - cw) // 2, (height - ch) // 2
    out[y0:y0 + ch, x0:x0 + cw] = img
    return out


def check_plan(plan: Plan, vi: VideoInfo, path: str | Path, check_fingerprint: bool = True) -> None:
    """Raise when ``plan`` does not fit the file: made for another file, or frames past its end."""
    if check_fingerprint and plan.video.fingerprint != vi.fingerprint:
        raise MediaError(path, f"the plan was made for another file ({plan.video.path}); make a plan for this "
                               f"file with `earmark plan`")
    late = [f for f in plan.frames if f.time_s >= vi.duration_s]
    if late:
        raise MediaError(path, f"planned frame at {late[0].time_s:.3f} s, but the video ends at "
                               f"{vi.duration_s:.3f} s")


class _Reader:
    """Decoding state over one file: where the decoder is, and the last two frames it returned."""

    def __init__(self, path: Path, vi: VideoInfo, seek: str, threads: int) -> None:
        assert vi.video is not None
        self.container = open_container(path)
        self.stream = self.container.streams[vi.video.index]
        for s in self.container.streams:
            if s.index != vi.video.index:
                s.discard = av.stream.Discard.all  # never demux or decode what no planned frame needs
        self.stream.thread_type = "AUTO"
        self.stream.thread_count = threads
        self.tb: Fraction = self.stream.time_base
        self.origin = vi.start_time_s
        self.policy = seek
        # Skipping non-reference frames is exact only when frames come at a steady rate.
        self.may_skip = not vi.video.vfr and bool(vi.video.fps_nominal)
        self.margin = SKIP_MARGIN_FRAMES / vi.video.fps_nominal if self.may_skip else 0.0
        self.index = open_container(path) if seek == "auto" else None
        if self.index is not None:
            for s in self.index.streams:
                if s.index != vi.video.index:
                    s.discard = av.stream.Discard.all
        self.decoded = 0
        self.seeks = 0
        self._frames: Iterator[av.VideoFrame] | None = None
        self.prev: av.VideoFrame | None = None
        self.ahead: av.VideoFrame | None = None
        self.skip_before = -np.inf
        self.eof = False

    def close(self) -> None:
        self.container.close()
        if self.index is not None:
            self.index.close()

    def _time(self, frame_or_packet) -> float:
        return float(frame_or_packet.pts * self.tb)

    def _decode(self) -> Iterator[av.VideoFrame]:
        cc = self.stream.codec_context
        for packet in self.container.demux(self.stream):
            if self.may_skip:
                far = packet.pts is not None and self._time(packet) < self.skip_before
                cc.skip_frame = "NONREF" if far else "DEFAULT"
            for frame in packet.decode():
                if frame.pts is None:
                    continue
                self.decoded += 1
                yield frame
        cc.skip_frame = "DEFAULT"

    def _keyframe_time(self, t: float) -> float | None:
        """Presentation time of the keyframe at or before ``t`` (absolute seconds), from the index.

        Containers without a keyframe index (MPEG-TS, some MKV) seek to any packet near ``t``, not to a
        keyframe: read on to the first keyframe and, when it lies past ``t``, look again further back
        (:data:`SEEK_BACK_S`, doubling). None when the file cannot be searched this way."""
        assert self.index is not None
        vs = self.index.streams[self.stream.index]
        try:
            for target in _seek_targets(t, self.origin):
                key = self._first_keyframe(vs, target)
                if (key is not None and key <= t + 1e-6) or target <= self.origin:
                    return key
        except (av.error.FFmpegError, OSError):
            return None
        return None

    def _first_keyframe(self, vs, target: float) -> float | None:
        assert self.index is not None
        _seek_container(self.index, vs, target, self.origin)
        for packet in self.index.demux(vs):
            if packet.pts is not None and packet.is_keyframe:
                return self._time(packet)
        return None

    def _seek(self, t: float) -> None:
        """Seek so that decoding starts at or before ``t``. Where the container's seek lands past the keyframe
        before ``t`` (no decodable frame, or the first one after ``t``: MPEG-TS), seek further back (doubling),
        down to the first frame."""
        for target in _seek_targets(t, self.origin):
            _seek_container(self.container, self.stream, target, self.origin)
            self.seeks += 1
            self._frames = self._decode()
            self.prev = None
            try:
                first = next(self._frames)
            except StopIteration:
                first = None
            if target <= self.origin or (first is not None and self._time(first) <= t + 1e-6):
                self.ahead = first
                self.eof = first is None
                return

    def _position(self) -> float:
        f = self.ahead or self.prev
        return self._time(f) if f is not None else -np.inf

    def _plan_route(self, t: float) -> None:
        if self.policy == "sequential":
            return
        if self.policy == "seek":
            self._seek(t)
            return
        if self.ahead is not None and self._time(self.ahead) > t:
            return  # the answer is already in hand
        key = self._keyframe_time(t)
        if self._frames is None and self.seeks == 0 and key is not None and key <= self.origin + 1e-6:
            return  # the decoder starts at the first keyframe anyway
        if key is not None and key > self._position():
            self._seek(t)

    def frame_at(self, t_rel: float) -> av.VideoFrame:
        """The frame whose presentation interval contains ``t_rel`` (seconds from the first picture)."""
        t = self.origin + t_rel
        self._plan_route(t)
        self.skip_before = t - self.margin
        if self._frames is None:
            self._frames = self._decode()
        while True:
            if self.ahead is not None:
                if self._time(self.ahead) > t:
                    # ``prev`` is the last frame at or before t; before the first frame, take the first.
                    return self.prev if self.prev is not None else self.ahead
                self.prev, self.ahead = self.ahead, None
            if self.eof:
                if self.prev is None:
                    raise MediaError(self.container.name, f"no decodable frame at or after {t_rel:.3f} s")
                return self.prev  # the last frame lasts to the end of the video
            try:
                self.ahead = next(self._frames)
            except StopIteration:
                self.eof = True
            except av.error.FFmpegError as e:
                raise MediaError(self.container.name, f"cannot decode the frame at {t_rel:.3f} s ({e})") from e


def _seek_targets(t: float, origin: float) -> Iterator[float]:
    """Where to seek for a frame at ``t``: ``t`` itself, then :data:`SEEK_BACK_S` further back, doubling, ending at
    ``origin`` (the first frame), for containers whose seeks land past the keyframe a frame needs.

    >>> [round(x, 1) for x in _seek_targets(10.0, 1.5)]
    [10.0, 9.0, 7.0, 3.0, 1.5]
    """
    target, step = t, SEEK_BACK_S
    while target > origin:
        yield target
        target, step = max(origin, target - step), step * 2
    yield origin


def _seek_container(container, stream, t: float, origin: float) -> None:
    """Seek to the keyframe before ``t`` (absolute seconds); at or before the first frame, to the file's start
    (an MPEG-TS seek to its first frame's own time lands after it)."""
    if t <= origin:
        container.seek(0)
    else:
        container.seek(int(t / stream.time_base), stream=stream, backward=True)


def _default_workers() -> int:
    import os

    return max(1, min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def display_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    """The picture's size as shown (a quarter turn swaps the sides).

    >>> display_size(1920, 1080, 90), display_size(1920, 1080, 180)
    ((1080, 1920), (1920, 1080))
    """
    return (height, width) if rotation % 180 == 90 else (width, height)


def decode_at(path: str | Path, times: Sequence[float], size: tuple[int, int] | Sequence[tuple[int, int]], *,
              fit: Fit = "stretch", seek: SeekPolicy = SEEK_POLICIES[0], workers: int | None = None, threads: int = 0,
              video_info: VideoInfo | None = None, stats: dict | None = None) -> Iterator[Frame]:
    """Decode the frames shown at ``times`` (seconds from the first picture, increasing), each resized to ``size``
    (one ``(width, height)`` for all, or one per time), upright, fitted by ``fit`` (an iterator of
    :class:`~earmark.types.Frame`, in time order).

    >>> [f.pts_s for f in decode_at("clip.mp4", [0.5, 4.0], (64, 36))]     # doctest: +SKIP
    [0.48, 3.96]

    The frame loader every earmark reader uses (:func:`extract` is its plan-shaped wrapper); ``seek``,
    ``workers``, ``threads`` and ``stats`` as in :func:`extract`.
    """
    p = check_file(path)
    vi = video_info or info(p)
    if vi.video is None:
        raise NoVideoStreamError(p, "no video stream to decode frames from")
    sizes = [tuple(size)] * len(times) if size and isinstance(size[0], int) else [tuple(s) for s in size]
    if len(sizes) != len(times):
        raise ConfigError(f"{len(times)} times but {len(sizes)} sizes")
    frames = tuple(PlannedFrame(time_s=float(t), width=int(w), height=int(h), tokens=0)
                   for t, (w, h) in zip(times, sizes))
    late = [f for f in frames if not 0 <= f.time_s < vi.duration_s]
    if late:
        raise MediaError(p, f"frame at {late[0].time_s:.3f} s, but the video runs from 0 to {vi.duration_s:.3f} s")
    yield from _decode(p, vi, frames, fit, seek, workers, threads, stats)


def extract(path: str | Path, plan: Plan, *, seek: SeekPolicy = SEEK_POLICIES[0], workers: int | None = None,
            threads: int = 0, check_fingerprint: bool = True, video_info: VideoInfo | None = None,
            stats: dict | None = None) -> Iterator[Frame]:
    """Decode the frames ``plan`` names, in time order, each at its planned size (an iterator).

    >>> p = earmark.plan(earmark.index("clip.mp4"), "qwen2.5-vl", 640)     # doctest: +SKIP
    >>> [(f.pts_s, f.image.shape) for f in earmark.extract("clip.mp4", p)][:2]  # doctest: +SKIP
    [(0.48, (112, 112, 3)), (1.48, (112, 112, 3))]

    ``seek``: one of SEEK_POLICIES. With ``auto``, planned frames are grouped by the keyframe they decode from
    and ``workers`` decoders (threads with their own file handles; default: up to 2, one per core) take the
    groups in turn, so both cores decode different GOPs; at most ``2 * workers`` groups of frames are held.
    ``threads``: FFmpeg decoder threads per decoder (0: FFmpeg picks). ``stats`` (a dict) receives the number
    of seeks and decoded frames when the iterator finishes.
    """
    p = check_file(path)
    vi = video_info or info(p)
    if vi.video is None:
        raise NoVideoStreamError(p, "no video stream to extract frames from")
    check_plan(plan, vi, p, check_fingerprint)
    yield from _decode(p, vi, plan.frames, plan.fit, seek, workers, threads, stats)


def _decode(p: Path, vi: VideoInfo, frames: Sequence[PlannedFrame], fit: str, seek: str, workers: int | None,
            threads: int, stats: dict | None) -> Iterator[Frame]:
    if seek not in SEEK_POLICIES:
        raise unknown_name("seek policy", seek, SEEK_POLICIES)
    if fit not in FITS:
        raise unknown_name("fit policy", fit, FITS)
    workers = _default_workers() if workers is None else max(1, workers)
    if seek != "auto" or workers == 1 or len(frames) < 2:
        reader = _Reader(p, vi, seek, threads)
        try:
            for i, pf in enumerate(frames):
                yield _picture(reader, i, pf, fit, vi)
        finally:
            if stats is not None:
                stats.update(seeks=reader.seeks, decoded=reader.decoded)
            reader.close()
        return
    yield from _extract_parallel(p, vi, frames, fit, workers, threads, stats)


def _picture(reader: _Reader, i: int, pf: PlannedFrame, fit: str, vi: VideoInfo) -> Frame:
    frame = reader.frame_at(pf.time_s)
    assert vi.video is not None
    image = _fit(frame, pf.width, pf.height, fit, vi.video.rotation)
    return Frame(index=i, planned=pf, pts_s=round(reader._time(frame) - reader.origin, 6), image=image)


def _extract_parallel(p: Path, vi: VideoInfo, frames: Sequence[PlannedFrame], fit: str, workers: int, threads: int,
                      stats: dict | None) -> Iterator[Frame]:
    """GOP groups decoded by ``workers`` readers on threads (PyAV releases the GIL while decoding)."""
    import threading
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    readers: list[_Reader] = []
    local = threading.local()
    lock = threading.Lock()

    def reader() -> _Reader:
        if not hasattr(local, "reader"):
            local.reader = _Reader(p, vi, "auto", threads or 1)
            with lock:
                readers.append(local.reader)
        return local.reader

    groups: list[list[int]] = []
    probe = _Reader(p, vi, "auto", 1)
    try:
        last_key = None
        for i, pf in enumerate(frames):
            key = probe._keyframe_time(vi.start_time_s + pf.time_s)
            if groups and (key is None or key == last_key):
                groups[-1].append(i)
            else:
                groups.append([i])
            last_key = key
    finally:
        probe.close()

    def decode(group: list[int]) -> list[Frame]:
        r = reader()
        return [_picture(r, i, frames[i], fit, vi) for i in group]

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="earmark-decode")
    pending: deque = deque()
    todo = iter(groups)
    try:
        for g in todo:
            pending.append(pool.submit(decode, g))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(decode, nxt))
            yield from done
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)
        if stats is not None:
            stats.update(seeks=sum(r.seeks for r in readers), decoded=sum(r.decoded for r in readers))
        for r in readers:
            r.close()


def frame_name(pf: PlannedFrame, fmt: str) -> str:
    """File name of a planned frame: its planned time, zero-padded so names sort in time order."""
    return f"{pf.time_s:012.6f}s.{fmt}"


def save_frames(path: str | Path, plan: Plan, out_dir: str | Path, *, fmt: FrameFormat = FRAME_FORMATS[0],
                quality: int = 95, **kwargs) -> Path:
    """``earmark extract``: write every planned frame as an image named by its time, plus ``manifest.json``.

    The folder appears complete or not at all: frames go to a temporary folder beside it, renamed at the end
    (an existing earmark frames folder at ``out_dir`` is replaced; any other existing folder is refused).
    """
    from PIL import Image

    if fmt not in FRAME_FORMATS:
        raise unknown_name("image format", fmt, FRAME_FORMATS)
    out = Path(out_dir)
    check_replaceable_output(out)
    if out.exists() and not is_frames_folder(out, "earmark.frames"):
        raise ConfigError(f"{out}: exists and holds files earmark did not write (only a folder of earmark frames "
                          f"and its manifest is replaced); move it or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out.parent, f".{out.name}.", time.time() - 60)
    with atomic_folder(out) as tmp:
        rows = []
        for fr in extract(path, plan, **kwargs):
            name = frame_name(fr.planned, fmt)
            img = Image.fromarray(fr.image)
            if fmt == "jpg":
                img.save(tmp / name, quality=quality)
            else:
                img.save(tmp / name, optimize=False)
            rows.append({"index": fr.index, "file": name, "time_s": fr.planned.time_s, "pts_s": fr.pts_s,
                         **{k: v for k, v in fr.planned.to_dict().items() if k != "time_s"}})
        manifest = {"kind": "earmark.frames", "schema_version": SCHEMA_VERSION, "video": str(path),
                    "plan": {k: v for k, v in plan.to_dict().items() if k not in ("frames", "anchors")},
                    "frames": rows}
        (tmp / "manifest.json").write_text(dumps_json(manifest), encoding="utf-8")
    return out
