"""Container and stream facts as earmark sees them (durations, streams, fps, VFR, rotation): ``info(path)``,
with the checks and the opener every reader shares (``check_file``, ``open_container``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import MediaError
from ..types import AudioStreamInfo, VideoInfo, VideoStreamInfo

# How much of the video stream's packet index `info` reads to judge VFR and keyframe spacing.
_SCAN_MAX_PACKETS = 1500
_SCAN_MAX_SECONDS = 120.0
_FINGERPRINT_BYTES = 1 << 16


def fingerprint(path: str | Path) -> str:
    """A cheap content fingerprint: size plus SHA-256 of the first and last 64 KiB (hex, 16 chars)."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(_FINGERPRINT_BYTES))
        if size > 2 * _FINGERPRINT_BYTES:
            f.seek(size - _FINGERPRINT_BYTES)
            h.update(f.read(_FINGERPRINT_BYTES))
    return h.hexdigest()[:16]


def check_file(path: str | Path) -> Path:
    """Raise MediaError unless ``path`` is a readable, non-empty regular file."""
    p = Path(path)
    if not p.exists():
        raise MediaError(p, "file not found")
    if p.is_dir():
        raise MediaError(p, "is a directory, not a media file")
    if not os.access(p, os.R_OK):
        raise MediaError(p, "permission denied")
    if p.stat().st_size == 0:
        raise MediaError(p, "file is empty (0 bytes)")
    return p


def open_container(path: str | Path) -> av.container.InputContainer:
    """Open a media file for reading, turning FFmpeg's errors into one clear MediaError."""
    p = check_file(path)
    try:
        return av.open(str(p), mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError as e:
        raise MediaError(p, f"not a media file, or corrupt/truncated (FFmpeg: {_ffmpeg_reason(e)})") from e
    except av.error.FFmpegError as e:
        raise MediaError(p, f"cannot open (FFmpeg: {_ffmpeg_reason(e)})") from e


def _ffmpeg_reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e)


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _rate(r: Fraction | None) -> float | None:
    return float(r) if r else None


def _is_attached_picture(stream: av.stream.Stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _audio_info(s: av.audio.stream.AudioStream) -> AudioStreamInfo:
    cc = s.codec_context
    return AudioStreamInfo(
        index=s.index,
        codec=cc.name,
        sample_rate=int(cc.sample_rate or 0),
        channels=int(cc.channels or 0),
        start_time_s=_seconds(s.start_time, s.time_base),
        duration_s=_seconds(s.duration, s.time_base),
        language=(s.language if s.language and s.language != "und" else None),
        default=bool(s.disposition & av.stream.Disposition.default),
    )


def _scan_video_packets(container: av.container.InputContainer, stream: av.video.stream.VideoStream
                        ) -> tuple[bool, float | None]:
    """Demux (without decoding) the first packets: return (variable frame rate?, keyframe interval s)."""
    pts: list[int] = []
    keys: list[int] = []
    tb = stream.time_base
    limit = int(_SCAN_MAX_SECONDS / tb) if tb else None
    first: int | None = None
    for packet in container.demux(stream):
        if packet.pts is None:
            continue
        first = packet.pts if first is None else first
        pts.append(packet.pts)
        if packet.is_keyframe:
            keys.append(packet.pts)
        if len(pts) >= _SCAN_MAX_PACKETS or (limit is not None and packet.pts - first > limit):
            break
    vfr = False
    if len(pts) >= 3:
        # Decode order differs from presentation order with B-frames: sort before differencing.
        deltas = np.diff(np.sort(np.asarray(pts, dtype=np.int64)))[:-1]  # the last may be cut short
        deltas = deltas[deltas > 0]
        if len(deltas) >= 2:
            med = float(np.median(deltas))
            vfr = bool(np.max(np.abs(deltas - med)) > 0.05 * med)
    interval = None
    if len(keys) >= 2 and tb:
        interval = float(np.median(np.diff(np.sort(np.asarray(keys)))) * tb)
    return vfr, interval


def _duration_by_demux(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    """Duration from the packets themselves, for containers that do not declare one."""
    container.seek(0)
    first = last = None
    for packet in container.demux(stream):
        if packet.pts is None:
            continue
        end = packet.pts + (packet.duration or 0)
        first = packet.pts if first is None else min(first, packet.pts)
        last = end if last is None else max(last, end)
    if first is None or last is None or not stream.time_base:
        return None
    return float((last - first) * stream.time_base)


def _end_by_seek(container: av.container.InputContainer, stream: av.stream.Stream, declared_end_s: float
                 ) -> float | None:
    """Where the stream's last packet really ends (absolute seconds): seek to the declared end and read the
    packets after the keyframe the seek lands on (one GOP, no decoding). None when nothing can be read there."""
    tb = stream.time_base
    if not tb:
        return None
    last = None
    try:
        container.seek(int(declared_end_s / tb), stream=stream, backward=True)
        for packet in container.demux(stream):
            if packet.pts is not None:
                end = packet.pts + (packet.duration or 0)
                last = end if last is None else max(last, end)
    except (av.error.FFmpegError, OSError):
        return None
    return float(last * tb) if last is not None else None


def quarter_turn(degrees: float, path: str | Path = "") -> int:
    """A display rotation as the nearest quarter turn (0, 90, 180, 270): earmark turns pictures by quarter turns
    only, so another angle (a display matrix of 45°) is rounded, with a warning naming the file.

    >>> quarter_turn(-90.0), quarter_turn(89.6), quarter_turn(0.0)
    (270, 90, 0)
    """
    turn = int(round(degrees / 90.0)) * 90 % 360
    if abs(((degrees - turn) + 180) % 360 - 180) > 1.0:
        import warnings

        from ..errors import EarmarkWarning

        warnings.warn(EarmarkWarning(f"{path}: display rotation {degrees:.0f}° is not a quarter turn: frames are "
                                     f"turned {turn}° (the nearest)"), stacklevel=3)
    return turn


def _first_frame_rotation(container: av.container.InputContainer, stream: av.video.stream.VideoStream
                          ) -> float:
    """Rotation from the display matrix, read off the first decoded frame (0 when none or undecodable)."""
    with contextlib.suppress(av.error.FFmpegError, StopIteration):
        container.seek(0, stream=stream) if stream.start_time is None else container.seek(
            stream.start_time, stream=stream)
        frame = next(container.decode(stream))
        return float(frame.rotation or 0)
    return 0.0


def info(path: str | Path) -> VideoInfo:
    """Probe a media file: streams, duration, frame rates, VFR, rotation, keyframe spacing.

    >>> vi = info("clip.mp4")                          # doctest: +SKIP
    >>> vi.duration_s, vi.has_audio, vi.video.fps_average  # doctest: +SKIP
    (10.0, True, 25.0)

    Raises MediaError (file missing, empty, not media, corrupt, zero-length, no streams).
    """
    p = check_file(path)
    with open_container(p) as container:
        videos = [s for s in container.streams.video if not _is_attached_picture(s)]
        audios = list(container.streams.audio)
        if not videos and not audios:
            raise MediaError(p, "no audio or video stream")
        audio_infos = tuple(_audio_info(s) for s in audios)
        default_audio = next((a.index for a in audio_infos if a.default), None)
        if default_audio is None and audio_infos:
            default_audio = audio_infos[0].index

        vinfo = None
        if videos:
            vs = next((s for s in videos if s.disposition & av.stream.Disposition.default), videos[0])
            cc = vs.codec_context
            vfr, key_interval = _scan_video_packets(container, vs)
            rotation = quarter_turn(_first_frame_rotation(container, vs), p)
            vinfo = VideoStreamInfo(
                index=vs.index,
                codec=cc.name,
                width=int(cc.width or 0),
                height=int(cc.height or 0),
                pix_fmt=cc.pix_fmt,
                fps_nominal=_rate(vs.base_rate or vs.guessed_rate),
                fps_average=_rate(vs.average_rate),
                frame_count=int(vs.frames) if vs.frames else None,
                start_time_s=_seconds(vs.start_time, vs.time_base),
                duration_s=_seconds(vs.duration, vs.time_base),
                rotation=rotation,
                vfr=vfr,
                keyframe_interval_s=key_interval,
            )
            if vinfo.width <= 0 or vinfo.height <= 0:
                raise MediaError(p, f"video stream #{vs.index} has no picture size (corrupt header?)")

        container_duration = container.duration / av.time_base if container.duration else None
        container_start = container.start_time / av.time_base if container.start_time is not None else None
        default_a = next((a for a in audio_infos if a.index == default_audio), None)
        if vinfo is not None:
            start = vinfo.start_time_s if vinfo.start_time_s is not None else (container_start or 0.0)
            duration = vinfo.duration_s or container_duration
        else:
            assert default_a is not None
            start = default_a.start_time_s if default_a.start_time_s is not None else (container_start or 0.0)
            duration = default_a.duration_s or container_duration
        main = vs if vinfo is not None else next(s for s in audios if s.index == default_audio)
        declared = vinfo.duration_s if vinfo is not None else default_a.duration_s
        if duration and not declared:
            # Only the container's header gives the length, and headers lie (a 10 s file can say 10 hours):
            # trust where the stream's packets end.
            end = _end_by_seek(container, main, start + duration)
            real = end - start if end is not None else _duration_by_demux(container, main)
            if real is not None and 0 < real < duration:
                duration = real
        if not duration:
            duration = _duration_by_demux(container, main)
        if not duration or duration <= 0:
            raise MediaError(p, "zero-length: the file declares no duration and holds no media")
        return VideoInfo(
            path=str(path),
            size_bytes=p.stat().st_size,
            fingerprint=fingerprint(p),
            format_name=container.format.name,
            duration_s=float(duration),
            start_time_s=float(start),
            video=vinfo,
            audio_streams=audio_infos,
            default_audio_stream=default_audio,
        )
