"""Streamed audio decode: any PyAV-readable file -> 16 kHz mono float32 chunks on the video's timeline.

Never holds the whole track: chunks of ``chunk_s`` seconds are yielded as they are decoded.
Sample 0 of the stream is t = 0 of the picture (``VideoInfo.start_time_s``): audio that starts
later is preceded by silence, audio that starts earlier is trimmed, so second t of the index
is second t of the picture.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from ..errors import MediaError, NoAudioStreamError
from ..types import VideoInfo
from .container import open_container

DEFAULT_SAMPLE_RATE = 16_000
# Corrupt packets tolerated before the stream is declared unreadable.
_MAX_DECODE_ERRORS = 50
RESAMPLE_BLOCK = 1 << 16
"""Decoded samples gathered (in an ``av.AudioFifo``) before each resampler call. One call per decoded frame (1024
samples of AAC) cost more CPU than the decoding itself (~11 µs of PyAV filter-graph overhead per call, 2 s per hour
of 48 kHz audio: benchmarks/index_speed.py --stages); libswresample is a streaming filter, so its output is the
same, bit for bit, for any block size (tests/test_media.py pins it)."""


class _ToMono16k:
    """Decoded frames -> mono float32 at ``rate``, in two libswresample steps: the channels are mixed down at the
    source rate first, then one channel is resampled. One combined step resamples every channel before mixing
    (libswresample rematrixes after resampling when the rate changes): 1.2 s of CPU per hour of 48 kHz stereo
    AAC against 0.75 s for the two steps (benchmarks/index_speed.py --stages); the samples agree to 2e-7."""

    def __init__(self, source_rate: int, rate: int) -> None:
        self.mix = av.AudioResampler(format="flt", layout="mono", rate=source_rate)
        self.rate = av.AudioResampler(format="flt", layout="mono", rate=rate)

    def resample(self, block: av.AudioFrame | None) -> Iterator[av.AudioFrame]:
        """Resampled frames for ``block`` (None: flush both steps' tails)."""
        for mono in self.mix.resample(block):
            yield from self.rate.resample(mono)
        if block is None:
            yield from self.rate.resample(None)


def no_audio_message(vi: VideoInfo) -> str:
    return ("no audio stream, so audio probes cannot index it (use a visual probe: --probe motion, cut, "
            "novelty or hybrid, or let the visual fallback probe take over: --fallback motion)")


def select_audio_stream(vi: VideoInfo, stream_index: int | None) -> int:
    """Resolve ``--audio-stream`` (a container stream index as ``earmark info`` lists it)."""
    if not vi.has_audio:
        raise NoAudioStreamError(vi.path, no_audio_message(vi))
    if stream_index is None:
        assert vi.default_audio_stream is not None
        return vi.default_audio_stream
    if vi.audio_stream(stream_index) is None:
        listed = ", ".join(f"#{a.index}" for a in vi.audio_streams)
        raise MediaError(vi.path, f"stream #{stream_index} is not an audio stream; audio streams: {listed}")
    return stream_index


@dataclass
class AudioChunks:
    """Iterable of float32 mono chunks at ``sample_rate`` on the video's timeline.

    After iteration, ``audio_start_s``/``audio_end_s`` say where real audio began and ended
    (seconds on the timeline) and ``decode_errors`` how many packets failed to decode.
    """

    info: VideoInfo
    stream_index: int
    sample_rate: int = DEFAULT_SAMPLE_RATE
    end_s: float | None = None
    """Stop once the timeline reaches this time (default: run to the end of the audio)."""
    start_s: float = 0.0
    """Timeline time of the first sample yielded; > 0 seeks there (segments decoded in parallel)."""
    chunk_s: float = 8.0
    audio_start_s: float | None = None
    audio_end_s: float | None = None
    decode_errors: int = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        path = Path(self.info.path)
        sr = self.sample_rate
        chunk_n = max(1, int(round(self.chunk_s * sr)))
        end_n = None if self.end_s is None else int(np.ceil(self.end_s * sr)) - int(round(self.start_s * sr))
        resampler: _ToMono16k | None = None  # made for the first frame's rate
        buf: list[np.ndarray] = []
        buffered = 0
        emitted = 0  # samples yielded so far == timeline position of the next sample
        skip = 0  # samples to drop (audio that starts before the picture, or before ``start_s``)
        started = False
        real_end = 0  # timeline sample just after the last decoded sample, skipped ones included
        self.decode_errors = 0

        def take(samples: np.ndarray) -> Iterator[np.ndarray]:
            nonlocal buffered, emitted, buf
            if end_n is not None:
                samples = samples[: max(0, end_n - emitted - buffered)]
            if len(samples):
                buf.append(samples)
                buffered += len(samples)
            while buffered >= chunk_n:
                joined = np.concatenate(buf)
                yield joined[:chunk_n]
                emitted += chunk_n
                rest = joined[chunk_n:]
                buf = [rest] if len(rest) else []
                buffered = len(rest)

        def resampled(out: av.AudioFrame) -> Iterator[np.ndarray]:
            nonlocal real_end, skip
            samples = _plane(out)
            real_end += len(samples)
            if skip:
                cut = min(skip, len(samples))
                samples, skip = samples[cut:], skip - cut
            yield from take(samples)

        fifo = av.AudioFifo()
        fifo_key: tuple | None = None  # (format, layout, rate) of the decoded frames the fifo holds

        def drain(flush: bool = False) -> Iterator[np.ndarray]:
            """Resample what the fifo holds (and, with ``flush``, the resampler's tail)."""
            assert resampler is not None
            block = fifo.read()
            if block is not None:
                for out in resampler.resample(block):
                    yield from resampled(out)
            if flush:
                for out in resampler.resample(None):
                    yield from resampled(out)

        first_n = int(round(self.start_s * sr))
        with open_container(path) as container:
            stream = container.streams[self.stream_index]
            for other in container.streams:  # let the demuxer skip what we never read
                if other.index != self.stream_index:
                    other.discard = av.stream.Discard.all
            if self.start_s > 0 and stream.time_base:
                # Lands on the packet at or before the target; the samples before it are dropped below.
                target = self.info.start_time_s + self.start_s
                container.seek(int(target / stream.time_base), stream=stream, backward=True)
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as e:
                    self.decode_errors += 1
                    if self.decode_errors > _MAX_DECODE_ERRORS:
                        raise MediaError(path, f"audio stream #{self.stream_index} is corrupt: more than "
                                         f"{_MAX_DECODE_ERRORS} packets failed to decode ({e})") from e
                    continue
                for frame in frames:
                    if not started:
                        started = True
                        t0 = (frame.time if frame.time is not None else self.info.start_time_s)
                        # Timeline sample of this frame's first sample, relative to the first one we yield.
                        real_end = int(round((t0 - self.info.start_time_s) * sr))
                        lead = real_end - first_n
                        self.audio_start_s = max(0.0, t0 - self.info.start_time_s)
                        if lead > 0:  # audio starts after the picture (or after a gap): silence first
                            yield from take(np.zeros(lead, dtype=np.float32))
                        else:
                            skip = -lead
                    key = (frame.format.name, frame.layout.name, frame.sample_rate)
                    if key != fifo_key:
                        if fifo_key is not None:  # the stream changed layout or rate: finish, start again
                            yield from drain(flush=True)
                            fifo = av.AudioFifo()
                        resampler = _ToMono16k(frame.sample_rate, sr)
                        fifo_key = key
                    frame.pts = None  # the fifo checks timestamps for gaps; the resampler never reads them
                    fifo.write(frame)
                if fifo.samples >= RESAMPLE_BLOCK:
                    yield from drain()
                if end_n is not None and emitted + buffered >= end_n:
                    break
            else:
                if resampler is not None:
                    yield from drain(flush=True)  # what is buffered, and the resampler's tail
        if not started:
            if first_n == 0:
                raise MediaError(path, f"audio stream #{self.stream_index} decoded to no samples "
                                 "(corrupt or truncated file)")
            return  # a seek past the end of the audio: nothing here, and audio_end_s stays unknown
        # Where real audio ends on the timeline: not past what was yielded (decoding stops at end_s),
        # and not past the last decoded sample (a seek beyond short audio skips everything it decodes).
        self.audio_end_s = min(real_end, first_n + emitted + buffered) / sr
        if buffered:
            yield np.concatenate(buf)


def _plane(frame: av.AudioFrame) -> np.ndarray:
    # Packed mono float: one plane; frombuffer avoids to_ndarray's per-frame stacking (~15% of decode time).
    return np.frombuffer(frame.planes[0], dtype=np.float32, count=frame.samples)


def stream_audio(info: VideoInfo, stream_index: int | None = None, sample_rate: int = DEFAULT_SAMPLE_RATE,
                 end_s: float | None = None, chunk_s: float = 8.0, start_s: float = 0.0) -> AudioChunks:
    """Chunks of mono float32 audio at ``sample_rate`` aligned to the picture's timeline.

    >>> from earmark.media import info, stream_audio            # doctest: +SKIP
    >>> chunks = stream_audio(info("clip.mp4"))                  # doctest: +SKIP
    >>> sum(len(c) for c in chunks) / 16000                      # doctest: +SKIP
    10.0
    """
    idx = select_audio_stream(info, stream_index)
    return AudioChunks(info=info, stream_index=idx, sample_rate=sample_rate, end_s=end_s, chunk_s=chunk_s,
                       start_s=start_s)
