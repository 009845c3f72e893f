"""The values that flow through earmark: VideoInfo, Timeline, Anchor.

All are frozen dataclasses with seconds as floats and half-open intervals ``[start, end)``.
Each has ``to_dict()`` / ``from_dict()`` that round-trip exactly (float32 arrays are written
with the shortest decimal that reads back to the same float32), so saved documents are
byte-stable for the same input and config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

import numpy as np

from .errors import SchemaError

SCHEMA_VERSION = 1
"""Version of the saved document layout (``earmark.index`` JSON); bump on incompatible change."""

FINGERPRINT = "[0-9a-f]{16}"
"""A content fingerprint as saved: 16 lowercase hex digits (see ``earmark.media.container.fingerprint``)."""

ROTATIONS = (0, 90, 180, 270)
"""Display rotations (degrees) a saved video stream may have: earmark turns pictures upright by quarter turns."""

AnchorSource = Literal["audio", "visual", "hybrid", "transfer", "fallback", "oracle", "random", "spread"]
ANCHOR_SOURCES: tuple[str, ...] = ("audio", "visual", "hybrid", "transfer", "fallback", "oracle", "random", "spread")
"""Where an anchor came from: the probe family that scored it (audio, visual, hybrid, transfer), evenly spaced
because nothing stood out (fallback), or a planner strategy (oracle, random, and spread: the fixed-spread
baseline's evenly spaced slots, chosen without reading anything)."""


def f32_list(values: np.ndarray) -> list[float]:
    """float32 values as Python floats with the shortest repr that round-trips (``0.1`` not ``0.100000001``)."""
    return [float(str(v)) for v in np.asarray(values, dtype=np.float32)]


def _f32(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float32)
    arr.setflags(write=False)
    return arr


Progress = Callable[[str, float, float], None]
"""What every long-running call reports progress to: ``progress(stage, done, total)``, after each step of a
stage (``"index"`` in media seconds, ``"generate"``/``"prepare"``/``"train"`` in clips or runs, ...); ``done``
and ``total`` are in the stage's own unit and ``done`` reaches ``total`` when the stage ends."""


def clock(seconds: float, decimals: int = 1) -> str:
    """Seconds as a clock, the one formatter of times shown to people: ``m:ss.s`` (``h:mm:ss.s`` past an hour);
    with ``decimals=0``, ``mm:ss`` (``h:mm:ss``), the way people write times in questions. Rounded first, so
    59.96 s is ``1:00.0``, never ``0:60.0``.

    >>> clock(83.44), clock(3723.0), clock(59.96), clock(83.44, 0), clock(3723.0, 0)
    ('1:23.4', '1:02:03.0', '1:00.0', '01:23', '1:02:03')
    """
    total = round(max(0.0, float(seconds)), decimals)
    h, rem = divmod(total, 3600)
    m, sec = divmod(rem, 60)
    if decimals == 0:
        return f"{int(h)}:{int(m):02d}:{int(sec):02d}" if h else f"{int(m):02d}:{int(sec):02d}"
    width = 3 + decimals
    if h:
        return f"{int(h)}:{int(m):02d}:{sec:0{width}.{decimals}f}"
    return f"{int(m)}:{sec:0{width}.{decimals}f}"


MAX_SIDE_PX = 16384
"""Largest side, in pixels, of a planned frame (what a plan asks the decoder to produce)."""

MAX_SOURCE_SIDE_PX = 65536
"""Largest side, in pixels, of a source video a document may name: FFmpeg decodes some codecs (FFV1, ProRes)
wider than 16384; planned frames stay within :data:`MAX_SIDE_PX`."""

MAX_COUNT = 2**53 - 1
"""Largest count (bytes, tokens, budgets, stream indices) a saved document may hold: JSON readers everywhere keep
integers up to here exact."""

TIME_SLACK_S = 1e-6
"""Saved times are kept to the microsecond, so an anchor region may end this far past the duration it was cut to."""

_F32_MAX = float(np.finfo(np.float32).max)

Check = Callable[[Any, str], Any]
"""Reads one value of a document: ``check(value, field)`` returns it converted, or raises SchemaError naming
``field`` (its path in the document, e.g. ``info.video.width``) and the value."""


def shown(value: Any) -> str:
    """A value as a short single line for an error message, spelled as JSON spells it where they differ."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value) if value is None or isinstance(value, (bool, str)) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def bad_value(field: str, expected: str, value: Any) -> SchemaError:
    """``timeline.duration_s must be a finite number > 0, got nan``."""
    return SchemaError(f"{field} must be {expected}, got {shown(value)}")


def _or_null(expected: str, null: bool) -> str:
    return expected + " or null" if null else expected


def int_field(lo: int = 0, hi: int = MAX_COUNT, *, null: bool = False) -> Check:
    """An integer in ``lo..hi`` (a bool or a float such as 224.0 is not one)."""
    expected = _or_null(f"an integer >= {lo}" if hi == MAX_COUNT else f"an integer in {lo}..{hi}", null)

    def check(value: Any, field: str) -> int | None:
        if value is None and null:
            return None
        if not _is_int(value) or not lo <= value <= hi:
            raise bad_value(field, expected, value)
        return int(value)

    return check


def _number_text(lo: float | None, hi: float | None, above: float | None) -> str:
    if above is not None:
        return f"a finite number > {above:g}"
    if lo is not None and hi is not None:
        return f"a finite number in [{lo:g}, {hi:g}]"
    return "a finite number" if lo is None else f"a finite number >= {lo:g}"


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _as_float(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not a finite number (bools are not numbers)."""
    if not _is_number(value):
        return None
    try:
        x = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    return x if math.isfinite(x) else None


def number_field(lo: float | None = None, hi: float | None = None, *, above: float | None = None,
                 null: bool = False) -> Check:
    """A finite number (an integer is fine) in ``[lo, hi]``, or ``> above``; returned as a float."""
    expected = _or_null(_number_text(lo, hi, above), null)

    def check(value: Any, field: str) -> float | None:
        if value is None and null:
            return None
        x = _as_float(value)
        if x is None or (lo is not None and x < lo) or (hi is not None and x > hi) or (above is not None
                                                                                       and not x > above):
            raise bad_value(field, expected, value)
        return x

    return check


def floats_field(lo: float | None = None, hi: float | None = None) -> Check:
    """A list of finite numbers in ``[lo, hi]`` that fit a float32; returned as a read-only float32 array."""
    low, high = -_F32_MAX if lo is None else lo, _F32_MAX if hi is None else hi
    expected_item = _number_text(lo, hi, None) + (" of float32 size (|x| < 3.4e38)" if lo is None or hi is None
                                                  else "")
    expected = "a list of numbers"

    def item(value: Any, field: str) -> float:
        x = _as_float(value)
        if x is None or not low <= x <= high:
            raise bad_value(field, expected_item, value)
        return x

    def check(value: Any, field: str) -> np.ndarray:
        if not isinstance(value, list):
            raise bad_value(field, expected, value)
        if all(_is_number(x) for x in value):
            with contextlib.suppress(OverflowError):  # an integer beyond any float: named below
                arr = np.asarray(value, dtype=np.float64)
                if np.all((arr >= low) & (arr <= high)):  # NaN fails both comparisons
                    return _f32(arr)
        return _f32([item(x, f"{field}[{i}]") for i, x in enumerate(value)])  # names the first bad value

    return check


def text_field(choices: Sequence[str] | None = None, *, pattern: str | None = None, path: bool = False,
               null: bool = False) -> Check:
    """A string: one of ``choices`` (never null), matching ``pattern`` (a regular expression), or a file path (not
    empty, no NUL character)."""
    if choices is not None:
        return enum_field(choices)
    if pattern is not None:
        expected = f"a string matching {pattern}"
    else:
        expected = "a file path (a non-empty string without NUL)" if path else "a string"
    expected = _or_null(expected, null)
    regex = re.compile(pattern) if pattern is not None else None

    def check(value: Any, field: str) -> str | None:
        if value is None and null:
            return None
        if (not isinstance(value, str) or (regex is not None and not regex.fullmatch(value))
                or (path and (not value or "\0" in value))):
            raise bad_value(field, expected, value)
        return value

    return check


def enum_field(choices: Sequence[Any]) -> Check:
    """One of ``choices``, of the same JSON type (``true`` is not ``1``, ``"90"`` is not ``90``)."""
    expected = "one of " + ", ".join(json.dumps(c) for c in choices)

    def check(value: Any, field: str) -> Any:
        if not any(type(value) is type(c) and value == c for c in choices):
            raise bad_value(field, expected, value)
        return value

    return check


def bool_field(value: Any, field: str) -> bool:
    """true or false (not 0 or 1)."""
    if not isinstance(value, bool):
        raise bad_value(field, "true or false", value)
    return value


def object_field(value: Any, field: str) -> dict[str, Any]:
    """A JSON object, returned as a new dict."""
    if not isinstance(value, dict):
        raise bad_value(field, "an object", value)
    return dict(value)


def list_field(item: Check, *, min_items: int = 0, null: bool = False) -> Check:
    """A list whose items ``item`` reads (``field[i]`` names them); returned as a tuple."""
    expected = "a list" if not min_items else f"a list of at least {min_items} item{'s' * (min_items > 1)}"
    expected = _or_null(expected, null)

    def check(value: Any, field: str) -> tuple | None:
        if value is None and null:
            return None
        if not isinstance(value, list) or len(value) < min_items:
            raise bad_value(field, expected, value)
        return tuple(item(x, f"{field}[{i}]") for i, x in enumerate(value))

    return check


def join(where: str, key: str | int) -> str:
    """The path of ``key`` inside the field at ``where`` (``""`` is the document itself)."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def read_fields(d: Any, where: str, fields: dict[str, Check], required: Iterable[str], what: str = "document"
                ) -> dict[str, Any]:
    """Read a JSON object by ``fields`` (key -> Check): every ``required`` key present, no unknown key, every value
    checked. ``where`` is the object's path in the document (``""``: the document itself, called ``what``)."""
    name = where or what
    if not isinstance(d, dict):
        raise bad_value(name, "an object", d)
    missing = [k for k in required if k not in d]
    if missing:
        raise SchemaError(f"{name}: missing field(s) {', '.join(missing)}")
    unknown = [k for k in d if k not in fields]
    if unknown:
        raise SchemaError(f"{name}: unknown field {shown(unknown[0])} (known: {', '.join(fields)})")
    return {k: fields[k](v, join(where, k)) for k, v in d.items()}


def nested(cls: Any, *, null: bool = False) -> Check:
    """An object read by ``cls.from_dict(value, field)``."""

    def check(value: Any, field: str) -> Any:
        if value is None and null:
            return None
        if not isinstance(value, dict):
            raise bad_value(field, _or_null("an object", null), value)
        return cls.from_dict(value, field)

    return check


def _version(value: Any, field: str, what: str) -> int:
    if not _is_int(value):
        raise bad_value(field, f"the integer {SCHEMA_VERSION}", value)
    if value != SCHEMA_VERSION:
        raise SchemaError(f"{what} schema_version {value} is not supported (this earmark reads {SCHEMA_VERSION})")
    return value


class _Flat:
    """``to_dict`` / ``from_dict`` for dataclasses of plain fields: ``_FIELDS`` reads each key of a document,
    ``_REQUIRED`` names the keys it needs (the others have defaults)."""

    _FIELDS: ClassVar[dict[str, Check]] = {}
    _REQUIRED: ClassVar[tuple[str, ...]] = ()
    _WHAT: ClassVar[str] = "document"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str | None = None):
        """Read a document object; errors name the field by its path ``where`` (default: the kind of object)."""
        where = where or cls._WHAT
        kwargs = read_fields(d, where, cls._FIELDS, cls._REQUIRED)
        try:
            return cls(**kwargs)
        except SchemaError as e:
            raise SchemaError(f"{where}: {e}") from None


@dataclass(frozen=True)
class AudioStreamInfo(_Flat):
    """One audio stream of a container."""

    index: int
    codec: str
    sample_rate: int
    channels: int
    start_time_s: float | None
    duration_s: float | None
    language: str | None = None
    default: bool = False

    _FIELDS: ClassVar[dict[str, Check]] = {
        "index": int_field(), "codec": text_field(), "sample_rate": int_field(), "channels": int_field(),
        "start_time_s": number_field(null=True), "duration_s": number_field(lo=0, null=True),
        "language": text_field(null=True), "default": bool_field}
    _REQUIRED: ClassVar[tuple[str, ...]] = ("index", "codec", "sample_rate", "channels", "start_time_s",
                                            "duration_s")
    _WHAT: ClassVar[str] = "audio stream"


@dataclass(frozen=True)
class VideoStreamInfo(_Flat):
    """The video stream earmark would read frames from."""

    index: int
    codec: str
    width: int
    height: int
    pix_fmt: str | None
    fps_nominal: float | None
    """The stream's declared (real base) frame rate, ``r_frame_rate`` in ffprobe's terms."""
    fps_average: float | None
    """Frames divided by duration, ``avg_frame_rate`` in ffprobe's terms."""
    frame_count: int | None
    start_time_s: float | None
    duration_s: float | None
    rotation: int
    """Display rotation in degrees (counter-clockwise, as the display matrix says); 0 when none."""
    vfr: bool
    """True when frame durations in the scanned packets vary (variable frame rate)."""
    keyframe_interval_s: float | None
    """Median spacing of keyframes in the scanned packets; None when fewer than two were seen."""

    _FIELDS: ClassVar[dict[str, Check]] = {
        "index": int_field(), "codec": text_field(), "width": int_field(1, MAX_SOURCE_SIDE_PX),
        "height": int_field(1, MAX_SOURCE_SIDE_PX), "pix_fmt": text_field(null=True),
        "fps_nominal": number_field(above=0, null=True), "fps_average": number_field(above=0, null=True),
        "frame_count": int_field(null=True), "start_time_s": number_field(null=True),
        "duration_s": number_field(lo=0, null=True), "rotation": enum_field(ROTATIONS),
        "vfr": bool_field, "keyframe_interval_s": number_field(lo=0, null=True)}
    _REQUIRED: ClassVar[tuple[str, ...]] = tuple(_FIELDS)
    _WHAT: ClassVar[str] = "video stream"


@dataclass(frozen=True)
class VideoInfo:
    """Container and stream facts, as earmark sees them (``earmark info``)."""

    path: str
    size_bytes: int
    fingerprint: str
    """Content fingerprint (size + hash of head and tail) used to check that an index or plan fits a file."""
    format_name: str
    duration_s: float
    """Duration of the timeline earmark indexes (the video stream's, else the container's)."""
    start_time_s: float
    """Presentation time that earmark calls t = 0 (the video stream's start, else the audio's)."""
    video: VideoStreamInfo | None
    audio_streams: tuple[AudioStreamInfo, ...]
    default_audio_stream: int | None
    """Stream index earmark reads audio from unless told otherwise."""

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_streams)

    @property
    def has_video(self) -> bool:
        return self.video is not None

    def audio_stream(self, index: int | None = None) -> AudioStreamInfo | None:
        """The audio stream with container index ``index`` (default: the default stream)."""
        want = self.default_audio_stream if index is None else index
        return next((a for a in self.audio_streams if a.index == want), None)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["audio_streams"] = [a.to_dict() for a in self.audio_streams]
        d["video"] = self.video.to_dict() if self.video else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "info") -> VideoInfo:
        """Read ``info`` of a document; errors name the field (``info.video.width must be ...``)."""
        kw = read_fields(d, where, {
            "path": text_field(path=True), "size_bytes": int_field(1), "fingerprint": text_field(pattern=FINGERPRINT),
            "format_name": text_field(), "duration_s": number_field(above=0), "start_time_s": number_field(),
            "video": nested(VideoStreamInfo, null=True), "audio_streams": list_field(nested(AudioStreamInfo)),
            "default_audio_stream": int_field(null=True)}, ("path", "size_bytes", "fingerprint", "format_name",
                                                             "duration_s", "start_time_s", "video"))
        kw.setdefault("audio_streams", ())
        kw.setdefault("default_audio_stream", None)
        streams = [a.index for a in kw["audio_streams"]]
        if kw["default_audio_stream"] is not None and kw["default_audio_stream"] not in streams:
            raise SchemaError(f"{where}.default_audio_stream {kw['default_audio_stream']} is not the index of one of "
                              f"{where}.audio_streams ({', '.join(map(str, streams)) or 'none'})")
        return cls(**kw)


@dataclass(frozen=True, eq=False)
class Timeline:
    """Per-window eventness of one video: the output of a probe.

    Window ``i`` covers ``[i * hop_s, i * hop_s + window_s)`` seconds of the video's timeline
    (t = 0 is the first picture), so second t of the index is second t of the picture.

    ``raw`` holds the probe's own values (unit in ``raw_unit``), ``scores`` the per-video robust
    z-scores ``(raw - median) / scale`` (comparable across videos), ``confidence`` in [0, 1] how
    clearly the window stands out times ``coverage``, the fraction of the window the audio covers.
    """

    video: str
    fingerprint: str
    duration_s: float
    hop_s: float
    window_s: float
    probe: str
    probe_config: dict[str, Any]
    raw_unit: str
    raw: np.ndarray
    scores: np.ndarray
    confidence: np.ndarray
    coverage: np.ndarray
    norm_center: float
    norm_scale: float
    audio_stream: int | None
    sample_rate: int
    labels: tuple[tuple[str, ...], ...] | None = None
    notes: tuple[str, ...] = ()
    """Caveats found while indexing (e.g. the audio ends before the picture)."""
    schema_version: int = field(default=SCHEMA_VERSION)

    def __post_init__(self) -> None:
        for name in ("raw", "scores", "confidence", "coverage"):
            object.__setattr__(self, name, _f32(getattr(self, name)))
        n = len(self.scores)
        for name in ("raw", "confidence", "coverage"):
            if len(getattr(self, name)) != n:
                raise SchemaError(f"timeline {self.video}: {name} has {len(getattr(self, name))} values, "
                                  f"scores has {n}")
        if self.labels is not None and len(self.labels) != n:
            raise SchemaError(f"timeline {self.video}: labels has {len(self.labels)} rows, scores has {n}")

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def starts(self) -> np.ndarray:
        """Window start times in seconds."""
        return np.arange(len(self), dtype=np.float64) * self.hop_s

    @property
    def ends(self) -> np.ndarray:
        """Window end times in seconds (exclusive)."""
        return self.starts + self.window_s

    @property
    def centers(self) -> np.ndarray:
        return self.starts + self.window_s / 2

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Timeline):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "video": self.video,
            "fingerprint": self.fingerprint,
            "duration_s": self.duration_s,
            "hop_s": self.hop_s,
            "window_s": self.window_s,
            "probe": self.probe,
            "probe_config": dict(self.probe_config),
            "raw_unit": self.raw_unit,
            "raw": f32_list(self.raw),
            "scores": f32_list(self.scores),
            "confidence": f32_list(self.confidence),
            "coverage": f32_list(self.coverage),
            "norm_center": self.norm_center,
            "norm_scale": self.norm_scale,
            "audio_stream": self.audio_stream,
            "sample_rate": self.sample_rate,
            "labels": [list(x) for x in self.labels] if self.labels is not None else None,
            "notes": list(self.notes),
        }

    _FIELDS: ClassVar[dict[str, Check]] = {
        "schema_version": lambda v, f: _version(v, f, "timeline"), "video": text_field(path=True),
        "fingerprint": text_field(pattern=FINGERPRINT), "duration_s": number_field(above=0),
        "hop_s": number_field(above=0), "window_s": number_field(above=0), "probe": text_field(),
        "probe_config": object_field, "raw_unit": text_field(), "raw": floats_field(), "scores": floats_field(),
        "confidence": floats_field(0, 1), "coverage": floats_field(0, 1), "norm_center": number_field(),
        "norm_scale": number_field(above=0), "audio_stream": int_field(null=True), "sample_rate": int_field(),
        "labels": list_field(list_field(text_field()), null=True), "notes": list_field(text_field())}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "timeline") -> Timeline:
        """Read a saved Timeline; errors name the field (``timeline.scores[3] must be a finite number, got nan``)."""
        kw = read_fields(d, where, cls._FIELDS, [k for k in cls._FIELDS if k not in ("schema_version", "labels",
                                                                                     "notes")])
        n = len(kw["scores"])
        for name in ("raw", "confidence", "coverage", "labels"):
            if kw.get(name) is not None and len(kw[name]) != n:
                raise SchemaError(f"{where}.{name} has {len(kw[name])} values, {where}.scores has {n}: one per window")
        return cls(**kw)


@dataclass(frozen=True)
class Anchor(_Flat):
    """A moment worth looking at: window ``index`` of a Timeline and the region to look in.

    ``time_s`` is the window's centre shifted by the AV offset (picture time); the region
    ``[start_s, end_s)`` is the window after dilation, offset and uncertainty widening,
    clipped to the video.
    """

    index: int
    time_s: float
    start_s: float
    end_s: float
    score: float
    confidence: float
    source: AnchorSource = "audio"

    _FIELDS: ClassVar[dict[str, Check]] = {
        "index": int_field(), "time_s": number_field(lo=0), "start_s": number_field(lo=0),
        "end_s": number_field(above=0), "score": number_field(), "confidence": number_field(0, 1),
        "source": text_field(ANCHOR_SOURCES)}
    _REQUIRED: ClassVar[tuple[str, ...]] = ("index", "time_s", "start_s", "end_s", "score", "confidence")
    _WHAT: ClassVar[str] = "anchor"

    def __post_init__(self) -> None:
        if self.source not in ANCHOR_SOURCES:
            raise SchemaError(f"anchor source {self.source!r} is not one of {', '.join(ANCHOR_SOURCES)}")
        if not self.start_s < self.end_s:
            raise SchemaError(f"anchor region [{self.start_s}, {self.end_s}) is empty")

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class _Document:
    """A saved top-level document: compared by content, with a kind and schema-version header."""

    KIND: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def _header(self) -> dict[str, Any]:
        from ._version import __version__

        return {"kind": self.KIND, "schema_version": SCHEMA_VERSION, "earmark_version": __version__}

    @classmethod
    def _read(cls, d: Any, fields: dict[str, Check], required: tuple[str, ...]) -> dict[str, Any]:
        """The header first (kind, then schema_version), then ``fields``; returns the fields read, header dropped."""
        what = cls.KIND.split(".")[-1]
        if not isinstance(d, dict) or d.get("kind") != cls.KIND:
            kind = shown(d.get("kind")) if isinstance(d, dict) else f"none: the document is {shown(d)}"
            raise SchemaError(f"not an earmark {what} document (kind is {kind}, expected {json.dumps(cls.KIND)})")
        header: dict[str, Check] = {"kind": text_field(), "schema_version": lambda v, f: _version(v, f, what),
                                    "earmark_version": text_field()}
        if "schema_version" in d:  # an unsupported version says so before any field it may have renamed
            _version(d["schema_version"], "schema_version", what)
        kw = read_fields(d, "", {**header, **fields}, ("schema_version", *required), what)
        return {k: v for k, v in kw.items() if k not in header}


def _check_anchor_times(anchors: Sequence[Anchor], duration_s: float, n_windows: int | None = None) -> None:
    """Anchors of a document lie on its video (``[0, duration]``, to the microsecond) and, in an index, on windows
    of its timeline."""
    for i, a in enumerate(anchors):
        for name in ("time_s", "start_s", "end_s"):
            t = getattr(a, name)
            if t > duration_s + TIME_SLACK_S:
                raise SchemaError(f"anchors[{i}].{name} must be in [0, {duration_s!r}] (the video's duration_s), "
                                  f"got {t!r}")
        if n_windows is not None and a.index >= n_windows:
            raise SchemaError(f"anchors[{i}].index must be a window of the timeline (0..{n_windows - 1}), "
                              f"got {a.index}")


@dataclass(frozen=True, eq=False)
class IndexResult(_Document):
    """What ``earmark index`` saves per video: the file's facts, its Timeline, the anchors and how they were chosen."""

    info: VideoInfo
    timeline: Timeline
    anchors: tuple[Anchor, ...]
    anchor_config: dict[str, Any]

    KIND: ClassVar[str] = "earmark.index"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._header(),
            "info": self.info.to_dict(),
            "timeline": self.timeline.to_dict(),
            "anchors": [a.to_dict() for a in self.anchors],
            "anchor_config": dict(self.anchor_config),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexResult:
        """Read an index document: every field's type and range, and that its parts describe one video (errors
        name the field: ``timeline.duration_s must be a finite number > 0, got nan``). The anchor settings are
        checked by :func:`earmark.read_index`, which knows the anchor modes."""
        kw = cls._read(d, {"info": nested(VideoInfo), "timeline": nested(Timeline),
                           "anchors": list_field(nested(Anchor)), "anchor_config": object_field},
                       ("info", "timeline", "anchors", "anchor_config"))
        info, tl = kw["info"], kw["timeline"]
        if tl.duration_s != info.duration_s:
            raise SchemaError(f"timeline.duration_s ({tl.duration_s!r}) differs from info.duration_s "
                              f"({info.duration_s!r}): both are the video's duration")
        if tl.fingerprint != info.fingerprint:
            raise SchemaError(f"timeline.fingerprint ({tl.fingerprint}) differs from info.fingerprint "
                              f"({info.fingerprint}): both name the video's content")
        streams = [a.index for a in info.audio_streams]
        if tl.audio_stream is not None and tl.audio_stream not in streams:
            raise SchemaError(f"timeline.audio_stream {tl.audio_stream} is not the index of one of "
                              f"info.audio_streams ({', '.join(map(str, streams)) or 'none'})")
        _check_anchor_times(kw["anchors"], tl.duration_s, len(tl))
        return cls(**kw)


FrameRole = Literal["uniform", "anchor", "context"]
FRAME_ROLES: tuple[str, ...] = ("uniform", "anchor", "context")


@dataclass(frozen=True)
class PlannedFrame(_Flat):
    """One frame a Plan asks for: when, at what size, and what it costs the target model.

    ``tokens`` is what this frame adds to the plan's total. Where the model charges a group of
    frames together (Qwen video mode: two consecutive frames share one temporal patch), the group's
    tokens sit on its first frame and the others carry 0; ``group`` numbers those groups.
    """

    time_s: float
    width: int
    height: int
    tokens: int
    role: FrameRole = "uniform"
    anchor: int | None = None
    """Position in ``Plan.anchors`` of the anchor this frame serves (None for context frames)."""
    tiles: int | None = None
    """InternVL tiles (thumbnail included); None for models that do not tile."""
    group: int = 0

    _FIELDS: ClassVar[dict[str, Check]] = {
        "time_s": number_field(lo=0), "width": int_field(1, MAX_SIDE_PX), "height": int_field(1, MAX_SIDE_PX),
        "tokens": int_field(), "role": text_field(FRAME_ROLES), "anchor": int_field(null=True),
        "tiles": int_field(1, null=True), "group": int_field()}
    _REQUIRED: ClassVar[tuple[str, ...]] = ("time_s", "width", "height", "tokens")
    _WHAT: ClassVar[str] = "planned frame"

    def __post_init__(self) -> None:
        if self.role not in FRAME_ROLES:
            raise SchemaError(f"frame role {self.role!r} is not one of {', '.join(FRAME_ROLES)}")
        if self.width <= 0 or self.height <= 0 or self.tokens < 0 or not self.time_s >= 0:
            raise SchemaError(f"planned frame at {self.time_s} s has size {self.width}x{self.height} and "
                              f"{self.tokens} tokens")


@dataclass(frozen=True)
class PlanVideo(_Flat):
    """The file a Plan was made for (checked by extraction through the fingerprint)."""

    path: str
    fingerprint: str
    duration_s: float
    width: int
    height: int

    _FIELDS: ClassVar[dict[str, Check]] = {
        "path": text_field(path=True), "fingerprint": text_field(pattern=FINGERPRINT),
        "duration_s": number_field(above=0), "width": int_field(1, MAX_SOURCE_SIDE_PX),
        "height": int_field(1, MAX_SOURCE_SIDE_PX)}
    _REQUIRED: ClassVar[tuple[str, ...]] = tuple(_FIELDS)
    _WHAT: ClassVar[str] = "plan video"


Fit = Literal["pad", "crop", "stretch"]
"""How extraction maps the picture onto a planned size: letterbox (``pad``), fill and cut (``crop``), or scale each
side (``stretch``)."""
FITS: tuple[Fit, ...] = get_args(Fit)


@dataclass(frozen=True, eq=False)
class Plan(_Document):
    """Which frames to decode, at which sizes, for a target model and a token budget.

    ``target_tokens`` is what uniform sampling spends for this budget and frame count (the
    equal-token reference); ``total_tokens`` is what this plan spends (== target where the cost
    model allows it, else the closest legal total below it; ``shortfall`` says by how much).
    A Plan is the only input extraction needs: the same plan gives the same frames, byte for byte.
    """

    video: PlanVideo
    model: str
    strategy: str
    budget: int
    target_tokens: int
    frames: tuple[PlannedFrame, ...]
    anchors: tuple[Anchor, ...] = ()
    seed: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    """Everything else that shaped the plan (k, ratio, aspect, frames, probe ...)."""
    fit: Fit = "stretch"
    """How extraction maps the picture onto each planned size (:data:`Fit`)."""
    notes: tuple[str, ...] = ()

    KIND: ClassVar[str] = "earmark.plan"

    @property
    def total_tokens(self) -> int:
        return sum(f.tokens for f in self.frames)

    @property
    def shortfall(self) -> int:
        """Tokens below the equal-token target (0 when the plan hits it exactly)."""
        return self.target_tokens - self.total_tokens

    def __len__(self) -> int:
        return len(self.frames)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._header(),
            "video": self.video.to_dict(),
            "model": self.model,
            "strategy": self.strategy,
            "budget": self.budget,
            "target_tokens": self.target_tokens,
            "total_tokens": self.total_tokens,
            "seed": self.seed,
            "fit": self.fit,
            "config": dict(self.config),
            "anchors": [a.to_dict() for a in self.anchors],
            "frames": [f.to_dict() for f in self.frames],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        """Read a plan document: every field's type and range, frames in time order at distinct times on the
        video, anchors on the video, tokens that add up (errors name the field: ``frames[2].width must be an
        integer in 1..16384, got 224.7``). The strategy and fit names are checked by :func:`earmark.read_plan`."""
        kw = cls._read(d, {
            "video": nested(PlanVideo), "model": text_field(), "strategy": text_field(), "budget": int_field(1),
            "target_tokens": int_field(), "total_tokens": int_field(), "seed": int_field(0, 2**64 - 1, null=True),
            "fit": text_field(), "config": object_field, "anchors": list_field(nested(Anchor)),
            "frames": list_field(nested(PlannedFrame), min_items=1), "notes": list_field(text_field())},
            ("video", "model", "strategy", "budget", "target_tokens", "frames"))
        total = kw.pop("total_tokens", None)
        plan = cls(**kw)
        if total is not None and total != plan.total_tokens:
            raise SchemaError(f"plan says total_tokens {total} but its frames add up to {plan.total_tokens}")
        duration = plan.video.duration_s
        _check_anchor_times(plan.anchors, duration)
        for i, f in enumerate(plan.frames):
            if f.time_s > duration:
                raise SchemaError(f"frames[{i}].time_s must be in [0, {duration!r}] (video.duration_s), got "
                                  f"{f.time_s!r}")
            if f.anchor is not None and f.anchor >= len(plan.anchors):
                raise SchemaError(f"frames[{i}].anchor must be the position of one of the plan's "
                                  f"{len(plan.anchors)} anchors or null, got {f.anchor}")
            if i and f.time_s < plan.frames[i - 1].time_s:
                raise SchemaError(f"frames[{i}].time_s ({f.time_s!r}) is before frames[{i - 1}].time_s "
                                  f"({plan.frames[i - 1].time_s!r}): plan frames are in time order")
            if i and f"{f.time_s:.6f}" == f"{plan.frames[i - 1].time_s:.6f}":
                raise SchemaError(f"frames[{i}].time_s ({f.time_s!r}) is the time of frames[{i - 1}] to the "
                                  f"microsecond: frames are saved by time, so two would share one file")
        return plan


@dataclass(frozen=True, eq=False)
class Frame:
    """A decoded frame: what was planned, the picture at the planned size, and the frame's real time.

    ``pts_s`` is the presentation time of the source frame whose interval ``[pts, next pts)``
    contains ``planned.time_s`` (same t = 0 as the index: the first picture).
    """

    index: int
    """Position in the plan."""
    planned: PlannedFrame
    pts_s: float
    image: np.ndarray
    """RGB, uint8, shape (height, width, 3) as planned."""

    @property
    def time_s(self) -> float:
        return self.pts_s
