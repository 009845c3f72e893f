"""Moment search: the time ranges of a video, or of a corpus, that answer a text query, found from cheap features.

Per window a search reads (kept together as a *moments* document, ``earmark search VIDEO --save FILE.json``):

- the index's eventness (any probe) and, from a tagger probe, its top labels per window;
- motion and appearance change of 64 px thumbnails at 2 per second (the ``motion`` and ``novelty`` probes' values
  from one decode, as robust z over the video);
- with a local CLIP/SigLIP folder, one unit embedding per window's thumbnail (decoded at the model's input size at
  the window's centre, as :mod:`earmark.probes.question` scores pictures).

A query is matched against each window by *evidence*, in robust-z units:

- ``label``: a word of the query that a window's labels name gives :data:`LABEL_Z` for its top label, ``LABEL_Z /
  rank`` for lower ones (a tagger's third guess does not match on its own);
- ``picture``: the cosine between the query's text embedding and the window's thumbnail embedding, as robust z over
  the video with the spread floored at :data:`PICTURE_MIN_SCALE` (a picture must stand out from the video's typical
  picture: what is on screen all along does not);
- ``motion``, ``appearance``, ``eventness``: their z, when the query names them (:data:`FEATURE_WORDS`).

A window's score is the sum of its positive evidence; windows reaching ``level`` match; matching windows at most
``merge_gap_s`` apart form one hit, scored by its best window (ties: the louder, then the earlier), and the ``top``
hits are returned with their reasons. On a corpus (an ``earmark batch`` folder) the windows' top labels and
eventness are read through DuckDB. :func:`plan_hits` turns hits into an equal-token plan (the hits are its anchors);
:func:`corpus_highlights` gives the best segments of a corpus's videos.

>>> from earmark.search import moments, search                                        # doctest: +SKIP
>>> m = moments("match.mp4", probe="yamnet", weights="yamnet.onnx")                  # doctest: +SKIP
>>> [(h.start_s, h.end_s, h.reasons[0].feature) for h in search(m, "dog").hits]      # doctest: +SKIP
[(12.0, 14.0, 'label')]
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .budget.strategies import STRATEGY_RULES
from .errors import ConfigError, EarmarkWarning, NoVideoStreamError, SchemaError
from .index import IndexConfig
from .preview import VISUAL, load_text_image_model, model_record, picture_embeddings, visual_change
from .types import (
    FINGERPRINT,
    IndexResult,
    _Document,
    f32_list,
    floats_field,
    int_field,
    read_fields,
    text_field,
)

FEATURES = ("label", "picture", "motion", "appearance", "eventness")
"""The evidence a window can give (see the module's documentation)."""
FEATURE_WORDS = {
    "motion": frozenset({"motion", "movement", "moving", "moves", "move"}),
    "appearance": frozenset({"appears", "appear", "appearing", "appearance", "cut", "cuts"}),
    "eventness": frozenset({"loud", "loudest", "bang", "noise", "noisy"}),
}
"""Words of a query that select a cheap feature as evidence (besides labels and pictures, which any word selects)."""
LABEL_Z = 4.0
"""Evidence of a window whose top label names a word of the query (a label of rank r gives LABEL_Z / r)."""
PICTURE_MIN_SCALE = 0.02
"""Floor of the spread (cosine units) of the picture evidence's robust z: with ``level`` 3, a thumbnail must be at
least 0.06 closer to the query than the video's median thumbnail, however uniform the video."""
CONFIDENCE_Z = 3.0
"""A hit planned as an anchor gets confidence ``1 - 0.5 ** (score / CONFIDENCE_Z)``, as probes turn z into
confidence."""

_EPS = 1e-9


# ------------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class SearchConfig:
    """How windows become hits (``earmark search`` options)."""

    top: int = 5
    """Return at most this many hits, best first."""
    level: float = 3.0
    """Evidence (robust-z units, summed over the features) a window needs to match."""
    merge_gap_s: float = 1.0
    """Matching windows at most this many seconds apart belong to one hit."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


OPTION_NAMES = {"top": "--top", "level": "--level", "merge_gap_s": "--merge-gap"}


def check_search_config(cfg: SearchConfig) -> None:
    """Raise ConfigError naming the option and its valid range."""
    if isinstance(cfg.top, bool) or not isinstance(cfg.top, int) or cfg.top < 1:
        raise ConfigError(f"--top {cfg.top!r}: must be an integer >= 1")
    if not _finite(cfg.level) or cfg.level <= 0:
        raise ConfigError(f"--level {cfg.level!r}: must be a z-score > 0 (0 would match every window)")
    if not _finite(cfg.merge_gap_s) or cfg.merge_gap_s < 0:
        raise ConfigError(f"--merge-gap {cfg.merge_gap_s!r}: must be a number of seconds >= 0")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def query_terms(query: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """The query's content words (matched against labels) and the cheap features it names, in FEATURES order.

    >>> words, named = query_terms("When does the dog bark loudly, moving fast?")
    >>> sorted(words), named
    (['bark', 'dog', 'fast', 'loudly', 'moving'], ('motion',))
    """
    from .probes.question import question_words

    if not isinstance(query, str) or not query.strip():
        raise ConfigError("--query must be a non-empty text")
    tokens = set(re.findall(r"[a-z]+", query.lower()))
    named = tuple(f for f in FEATURES if tokens & FEATURE_WORDS.get(f, frozenset()))
    return frozenset(question_words(query)), named


# ------------------------------------------------------------------------------------------------ moments


@dataclass(frozen=True, eq=False)
class Moments(_Document):
    """A video's index and the cheap per-window features a search reads (what ``--save`` writes)."""

    index: IndexResult
    motion: np.ndarray | None = None
    """Robust z of the thumbnails' frame difference, per window (the ``motion`` probe's values)."""
    appearance: np.ndarray | None = None
    """Robust z of the thumbnails' distance to a running appearance model, per window (the ``novelty`` probe's)."""
    embeddings: np.ndarray | None = None
    """(windows, d) float16 unit rows: each window's thumbnail by the text-image model ``embedder`` names."""
    embedder: dict[str, Any] | None = None
    """The text-image model of ``embeddings``: path, type (clip/siglip), weights digest, image size."""

    KIND: ClassVar[str] = "earmark.moments"

    def __post_init__(self) -> None:
        n = len(self.index.timeline)
        for name in ("motion", "appearance"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, np.asarray(v, np.float32))
                if len(getattr(self, name)) != n:
                    raise SchemaError(f"{name} has {len(v)} values, the timeline has {n} windows")
        if (self.embeddings is None) != (self.embedder is None):
            raise SchemaError("embeddings and the model that made them (embedder) go together")
        if self.embeddings is not None:
            object.__setattr__(self, "embeddings", np.asarray(self.embeddings, np.float16))
            if self.embeddings.ndim != 2 or len(self.embeddings) != n:
                raise SchemaError(f"embeddings have shape {self.embeddings.shape}, the timeline has {n} windows")

    @property
    def video(self) -> str:
        return self.index.info.path

    def to_dict(self) -> dict[str, Any]:
        emb = None
        if self.embeddings is not None:
            data = np.ascontiguousarray(self.embeddings, "<f2").tobytes()
            emb = {"model": dict(self.embedder or {}), "shape": list(self.embeddings.shape), "dtype": "float16",
                   "base64": base64.b64encode(data).decode("ascii")}
        has_visual = self.motion is not None or self.appearance is not None
        return {**self._header(), "index": self.index.to_dict(),
                "visual": dict(VISUAL) if has_visual else None,
                "motion": f32_list(self.motion) if self.motion is not None else None,
                "appearance": f32_list(self.appearance) if self.appearance is not None else None,
                "embeddings": emb}

    @classmethod
    def from_dict(cls, d: Any) -> Moments:
        """Read a moments document (or an index document: a search of its eventness and labels alone); every field
        checked, errors name it (``motion[3] must be a finite number ..., got 'x'``)."""
        from .sinks.export import _index_from_dict

        if isinstance(d, dict) and d.get("kind") == IndexResult.KIND:
            return cls(_index_from_dict(d))
        if not isinstance(d, dict) or d.get("kind") != cls.KIND:
            kind = repr(d.get("kind")) if isinstance(d, dict) else "none"
            raise SchemaError(f"not an earmark moments or index document (kind is {kind}, expected "
                              f"\"{cls.KIND}\" or \"{IndexResult.KIND}\")")
        floats = floats_field()
        kw = cls._read(d, {"index": lambda v, f: v, "visual": lambda v, f: v,
                           "motion": lambda v, f: None if v is None else floats(v, f),
                           "appearance": lambda v, f: None if v is None else floats(v, f),
                           "embeddings": lambda v, f: v},
                       ("index", "visual", "motion", "appearance", "embeddings"))
        try:
            index = _index_from_dict(kw["index"])
        except SchemaError as e:
            raise SchemaError(f"index: {e}") from None
        if kw["visual"] is not None and kw["visual"] != VISUAL:
            raise SchemaError(f"visual must be {VISUAL} (the thumbnails earmark measures) or null")
        for name in ("motion", "appearance"):
            if (kw[name] is None) != (kw["visual"] is None):
                raise SchemaError(f"{name} and visual go together (both null, or both given)")
        emb, embedder = _read_embeddings(kw["embeddings"], len(index.timeline))
        return cls(index, kw["motion"], kw["appearance"], emb, embedder)


def _read_embeddings(d: Any, n: int) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    from .probes.question import TEXT_IMAGE_MODEL_TYPES

    if d is None:
        return None, None
    kw = read_fields(d, "embeddings", {
        "model": lambda v, f: read_fields(v, f, {
            "path": text_field(path=True), "type": text_field(TEXT_IMAGE_MODEL_TYPES),
            "digest": text_field(pattern=FINGERPRINT), "image_size": int_field(1, 4096)},
            ("path", "type", "digest", "image_size")),
        "shape": lambda v, f: v, "dtype": text_field(("float16",)), "base64": text_field()},
        ("model", "shape", "dtype", "base64"))
    shape = kw["shape"]
    if not isinstance(shape, list) or len(shape) != 2:
        raise SchemaError(f"embeddings.shape must be [{n}, d] (one row per window), got {str(shape)[:40]}")
    int_field(1, 8192)(shape[1], "embeddings.shape[1]")
    if int_field(0)(shape[0], "embeddings.shape[0]") != n:
        raise SchemaError(f"embeddings.shape must be [{n}, d] (one row per window), got {shape!r}"[:200])
    try:
        data = base64.b64decode(kw["base64"], validate=True)
    except ValueError:
        raise SchemaError("embeddings.base64 is not base64 text") from None
    if len(data) != n * shape[1] * 2:
        raise SchemaError(f"embeddings.base64 holds {len(data)} bytes, shape {shape} of float16 needs "
                          f"{n * shape[1] * 2}")
    emb = np.frombuffer(data, "<f2").reshape(n, shape[1])
    norms = np.linalg.norm(emb.astype(np.float32), axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (np.abs(norms - 1.0) > 0.01))
    if len(bad):
        raise SchemaError(f"embeddings row {int(bad[0])} is not a unit vector (norm {float(norms[bad[0]]):.4g})")
    return emb, kw["model"]


def read_moments(path: str | Path) -> Moments:
    """A moments document (``earmark search VIDEO --save``) or an index document (``earmark index --out``), every
    field checked; errors name the file (SchemaError)."""
    from .sinks.export import _read_document

    return _read_document(path, Moments.from_dict)


def write_moments(m: Moments, path: str | Path) -> Path:
    from ._io import write_json_atomic

    return write_json_atomic(path, m.to_dict())


def with_features(source: IndexResult | Moments, *, visual: bool = True, model: Any = None) -> Moments:
    """``source`` with the features it lacks, measured on its video: motion and appearance change (``visual``, when
    the video has pictures) and, with a text-image ``model`` (a :class:`~earmark.probes.question.TextImageModel`), its
    thumbnails' embeddings. Features a Moments already holds are kept as they are (the video is not read for them).
    """
    m = source if isinstance(source, Moments) else Moments(source)
    motion, appearance, emb, embedder = m.motion, m.appearance, m.embeddings, m.embedder
    if visual and motion is None and m.index.info.video is not None:
        motion, appearance = visual_change(m.index)
    if model is not None and emb is None:
        emb, embedder = picture_embeddings(m.index, model), model_record(model)
    return Moments(m.index, motion, appearance, emb, embedder)


def moments(source: str | Path | IndexResult, *, text_image_model: Any = None, visual: bool = True,
            probe: str = IndexConfig.probe, **index_kw: Any) -> Moments:
    """The features a search reads: ``source`` is a video (indexed with ``probe``; ``index_kw`` go to
    :func:`earmark.index`), an index JSON or an IndexResult; ``text_image_model`` a local CLIP/SigLIP folder or a
    loaded :class:`~earmark.probes.question.TextImageModel` (thumbnail embeddings), ``visual`` whether to measure
    motion and appearance change.

    >>> m = moments("clip.mp4", text_image_model="clip-folder/")     # doctest: +SKIP
    >>> m.embeddings.shape                                          # doctest: +SKIP
    (12, 512)
    """
    model = load_text_image_model(text_image_model) if text_image_model is not None else None
    from .sinks.export import load_result

    return with_features(load_result(source, probe, **index_kw), visual=visual, model=model)


# ------------------------------------------------------------------------------------------------- search


@dataclass(frozen=True)
class Reason:
    """One piece of evidence of a hit, at its best window."""

    feature: str
    value: float
    """Evidence it adds, in robust-z units."""
    detail: str = ""
    """What matched: the label and its rank, the cosine ..."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        what = {"label": "label", "picture": "picture", "motion": "motion z", "appearance": "appearance z",
                "eventness": "eventness z"}[self.feature]
        return f"{what} {self.detail} (+{self.value:.2f})" if self.detail else f"{what} {self.value:.2f}"


@dataclass(frozen=True)
class Hit:
    """A time range ``[start_s, end_s)`` of a video that answers the query."""

    video: str
    start_s: float
    end_s: float
    score: float
    """Evidence of the best window (the sum of its features')."""
    peak_s: float
    """Centre of that window."""
    reasons: tuple[Reason, ...]
    eventness: float = 0.0
    """The index's eventness at the best window (breaks ties between equal scores: the louder first)."""
    window: int = 0
    """The best window's index."""
    rank: int = 0

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(r.feature for r in self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "video": self.video, "start_s": self.start_s, "end_s": self.end_s,
                "duration_s": round(self.duration_s, 6), "score": self.score, "peak_s": self.peak_s,
                "window": self.window, "eventness": self.eventness, "reasons": [r.to_dict() for r in self.reasons]}


@dataclass(frozen=True, eq=False)
class SearchResult:
    """The hits of a query over a video or a corpus, best first; no hits is a no match, with the notes saying
    what could not be read."""

    query: str
    source: str
    config: dict[str, Any]
    features: tuple[str, ...]
    """The evidence this search could read for this query."""
    hits: tuple[Hit, ...]
    notes: tuple[str, ...] = ()

    KIND: ClassVar[str] = "earmark.search"

    @property
    def matched(self) -> bool:
        return bool(self.hits)

    def to_dict(self) -> dict[str, Any]:
        from ._version import __version__
        from .types import SCHEMA_VERSION

        return {"kind": self.KIND, "schema_version": SCHEMA_VERSION, "earmark_version": __version__,
                "query": self.query, "source": self.source, "config": dict(self.config),
                "features": list(self.features), "matched": self.matched,
                "hits": [h.to_dict() for h in self.hits], "notes": list(self.notes)}


def label_evidence(words: frozenset[str], labels: Sequence[Sequence[str]]
                   ) -> tuple[np.ndarray, list[tuple[str, int] | None]]:
    """Per window, LABEL_Z / rank of its best-ranked label that names one of ``words`` (0 if none), and that label
    with its rank (1 = the top label).

    >>> label_evidence(frozenset({"dog"}), [("Dog", "Bark"), ("Speech", "Dog"), ("Engine",)])[0].tolist()
    [4.0, 2.0, 0.0]
    """
    from .probes.question import question_words

    named: dict[str, bool] = {}
    values = np.zeros(len(labels), np.float64)
    which: list[tuple[str, int] | None] = [None] * len(labels)
    for i, row in enumerate(labels):
        for rank, label in enumerate(row, 1):
            if label not in named:
                named[label] = bool(words & question_words(label.replace("_", " ")))
            if named[label]:
                values[i], which[i] = LABEL_Z / rank, (label, rank)
                break
    return values, which


def window_hits(video: str, windows: np.ndarray, starts: np.ndarray, ends: np.ndarray, duration_s: float,
                evidence: dict[str, np.ndarray], detail: Callable[[str, int], str], eventness: np.ndarray,
                config: SearchConfig) -> list[Hit]:
    """Hits of one video from per-window ``evidence`` (feature -> values, aligned with ``windows``, their indices,
    in time order): windows whose summed positive evidence reaches ``config.level`` match; matches at most
    ``merge_gap_s`` apart join; each hit is scored by its best window. ``detail(feature, i)`` describes feature
    evidence at position ``i``. Unranked, in time order.

    >>> ev = {"label": np.array([0, 4, 4, 0, 0, 4.0])}
    >>> t = np.arange(6.0)
    >>> [(h.start_s, h.end_s, h.score) for h in window_hits("v", np.arange(6), t, t + 1, 6.0, ev,
    ...                                                      lambda f, i: "", np.zeros(6), SearchConfig())]
    [(1.0, 3.0, 4.0), (5.0, 6.0, 4.0)]
    """
    score = np.zeros(len(windows), np.float64)
    for v in evidence.values():
        score += np.maximum(np.asarray(v, np.float64), 0.0)
    on = np.flatnonzero(score >= config.level - _EPS)
    if not len(on):
        return []
    s, e = np.asarray(starts, np.float64)[on], np.minimum(np.asarray(ends, np.float64)[on], duration_s)
    group = np.concatenate([[0], np.cumsum(s[1:] - e[:-1] > config.merge_gap_s + _EPS)])
    hits = []
    for g in range(int(group[-1]) + 1):
        members = on[group == g]
        sc = score[members]
        ev = np.asarray(eventness, np.float64)[members]
        best = members[np.lexsort((members, -ev, -sc))[0]]  # best score, then the louder, then the earlier
        reasons = sorted((Reason(f, _f32(v[best]), detail(f, int(best))) for f, v in evidence.items()
                          if v[best] > 0), key=lambda r: (-r.value, FEATURES.index(r.feature)))
        first, last = members[0], members[-1]
        hits.append(Hit(video=video, start_s=_us(starts[first]), end_s=_us(min(ends[last], duration_s)),
                        score=_f32(score[best]), peak_s=_us(min((starts[best] + ends[best]) / 2, duration_s)),
                        reasons=tuple(reasons), eventness=_f32(eventness[best]), window=int(windows[best])))
    return hits


def rank_hits(hits: Sequence[Hit], top: int) -> tuple[Hit, ...]:
    """The ``top`` best hits: by score, then eventness, then video and start; ranks set to 1, 2, ..."""
    order = sorted(hits, key=lambda h: (-h.score, -h.eventness, h.video, h.start_s))[:top]
    return tuple(dataclasses.replace(h, rank=i + 1) for i, h in enumerate(order))


def _f32(x: Any) -> float:
    return float(np.float32(x))


def _us(t: Any) -> float:
    return round(float(t), 6)


def search(m: Moments | IndexResult, query: str, config: SearchConfig | None = None, *,
           text_image_model: Any = None, text_embedding: np.ndarray | None = None) -> SearchResult:
    """The hits of ``query`` in one video's features (see the module's documentation).

    Picture evidence needs the moments' embeddings and the query's embedding by the same model: give the
    ``text_image_model`` (a folder or a loaded model; its weights must be those that embedded the pictures) or
    the ``text_embedding`` itself.

    >>> r = search(read_moments("match.moments.json"), "a dog barking")     # doctest: +SKIP
    >>> [(h.start_s, h.end_s, str(h.reasons[0])) for h in r.hits]           # doctest: +SKIP
    [(12.0, 14.0, "label Dog (top 1) (+4.00)")]
    """
    cfg = config or SearchConfig()
    check_search_config(cfg)
    m = m if isinstance(m, Moments) else Moments(m)
    words, named = query_terms(query)
    tl = m.index.timeline
    notes: list[str] = []
    evidence: dict[str, np.ndarray] = {}
    which: list[tuple[str, int] | None] = []
    cosine = None
    if tl.labels is not None:
        evidence["label"], which = label_evidence(words, tl.labels)
    else:
        notes.append(f"no labels: the {tl.probe} probe names no sounds (index with a tagger probe, e.g. --probe "
                     f"panns|yamnet|ast|clap --probe-weights PATH, to match sounds by name)")
    if m.embeddings is not None and (text_image_model is not None or text_embedding is not None):
        if text_embedding is None:
            model = load_text_image_model(text_image_model)
            _check_same_model(m, model)
            text_embedding = model.embed_text(query)
        text = np.asarray(text_embedding, np.float32)
        if text.shape != (m.embeddings.shape[1],):
            raise ConfigError(f"the query's embedding has shape {text.shape}, the pictures' {m.embeddings.shape[1:]}")
        from .probes.question import robust_z

        cosine = m.embeddings.astype(np.float32) @ text
        evidence["picture"] = robust_z(cosine, PICTURE_MIN_SCALE)
    elif m.embeddings is not None:
        notes.append(f"pictures were embedded by {m.embedder['path']}: give --text-image-model with that model to "
                     f"match them")
    elif text_image_model is not None or text_embedding is not None:
        notes.append(f"{m.video}: no picture embeddings in this index: make them with `earmark search VIDEO "
                     f"--text-image-model DIR --save FILE.json`")
    else:
        notes.append("no text-image model: give --text-image-model DIR (a local CLIP or SigLIP folder) to match "
                     "pictures")
    stored = {"motion": m.motion, "appearance": m.appearance, "eventness": tl.scores}
    for f in named:
        if stored[f] is None:
            notes.append(f"the query names {f}, but this index holds none (no picture, or not measured: "
                         f"search the video, or save its features with --save)")
        else:
            evidence[f] = np.asarray(stored[f], np.float64)

    def detail(feature: str, i: int) -> str:
        if feature == "label":
            label, rank = which[i] or ("", 0)
            return f"{label} (top {rank})"
        if feature == "picture":
            return f"cosine {float(cosine[i]):.3f}"
        return ""

    hits = window_hits(m.video, np.arange(len(tl)), tl.starts, tl.ends, tl.duration_s, evidence, detail, tl.scores,
                       cfg)
    return SearchResult(query=query, source=m.video, config=cfg.to_dict(), features=tuple(f for f in FEATURES
                                                                                         if f in evidence),
                        hits=rank_hits(hits, cfg.top), notes=tuple(notes))


def _check_same_model(m: Moments, model: Any) -> None:
    if m.embedder is not None and model.digest != m.embedder["digest"]:
        raise ConfigError(f"--text-image-model {model.path}: its weights ({model.digest}) are not those that "
                          f"embedded the pictures of {m.video} ({m.embedder['path']}, {m.embedder['digest']}); use "
                          f"that model, or make the features again with this one")


# ------------------------------------------------------------------------------------------------- plans


def hits_as_anchors(result: SearchResult, timeline: Any) -> list[Any]:
    """The hits as anchors in time order: the best window's centre, the hit's range, its score, a confidence from
    its score, and the family of its evidence as source (``audio``: labels and eventness; ``visual``: pictures,
    motion, appearance; ``hybrid``: both)."""
    from .types import Anchor

    out = []
    for h in sorted(result.hits, key=lambda h: h.start_s):
        sound = {"label", "eventness"} & set(h.features)
        sight = {"picture", "motion", "appearance"} & set(h.features)
        source = "hybrid" if sound and sight else "visual" if sight else "audio"
        end = min(h.end_s, timeline.duration_s)
        out.append(Anchor(index=h.window, time_s=min(h.peak_s, float(np.nextafter(end, 0.0))), start_s=h.start_s,
                          end_s=end, score=h.score,
                          confidence=_f32(1.0 - 0.5 ** (max(h.score, 0.0) / CONFIDENCE_Z)), source=source))
    return out


PLAN_STRATEGIES = tuple(s for s, rule in STRATEGY_RULES.items() if rule.reads_index)
"""The strategies that spend tokens on the index's anchors (here: the hits): anchored, dense-at-anchors, skim."""


def plan_hits(index: IndexResult, result: SearchResult, model: str, budget: int, strategy: str = "anchored",
              **plan_kw: Any) -> Any:
    """An equal-token plan of ``index``'s video with the hits of ``result`` as its anchors (the same planner as
    ``earmark plan``: every strategy spends the uniform plan's tokens); the query is recorded in
    ``plan.config["search"]``.

    >>> p = plan_hits(m.index, search(m, "dog"), "qwen2.5-vl", 640)          # doctest: +SKIP
    >>> p.total_tokens == p.target_tokens                                   # doctest: +SKIP
    True
    """
    from .budget.planner import plan

    if strategy not in PLAN_STRATEGIES:
        raise ConfigError(f"--strategy {strategy!r}: a plan of search hits spends tokens on them; use one of "
                          f"{', '.join(PLAN_STRATEGIES)}")
    if not result.hits:
        raise ConfigError(f"{index.info.path}: no match for {result.query!r}: nothing to plan (no plan written)")
    if any(h.video != index.info.path for h in result.hits):
        raise ConfigError(f"the hits of {result.source} are not all of {index.info.path}: plan one video's hits")
    found = hits_as_anchors(result, index.timeline)
    res = dataclasses.replace(index, anchors=tuple(found), anchor_config={**index.anchor_config, "k": len(found)})
    p = plan(res, model, budget, strategy, k=len(found), **plan_kw)
    record = {"query": result.query, "hits": len(found), "level": result.config["level"],
              "features": list(result.features)}
    return dataclasses.replace(p, config={**p.config, "search": record})


# ------------------------------------------------------------------------------------------------- corpus


def corpus_folder(folder: str | Path) -> Path:
    """``folder`` as an earmark batch folder with a manifest, or ConfigError naming what is missing."""
    from .batch import MANIFEST, check_folder

    out = Path(folder)
    if not out.exists():
        raise ConfigError(f"{out}: no such file or folder")
    out = check_folder(out)
    if not (out / MANIFEST).is_file():
        raise ConfigError(f"{out / MANIFEST}: not found: this batch folder has no manifest (no video finished yet; "
                          f"run `earmark batch INPUT --out {out}`)")
    return out


class _Corpus:
    """DuckDB views over a batch folder (one connection for a search's few queries); a Parquet part or view that
    cannot be read is a SchemaError naming the folder."""

    def __init__(self, out: Path) -> None:
        import pyarrow as pa

        from .batch import connect

        self.out = out
        try:
            self.con = connect(out)
        except (pa.ArrowException, OSError) as e:
            raise self._error(e) from None

    def _error(self, e: Exception) -> SchemaError:
        return SchemaError(f"{self.out}: cannot read its Parquet parts ({' '.join(str(e).split())[:300]})")

    def __enter__(self) -> _Corpus:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.con.close()

    def sql(self, sql: str, params: Sequence[Any] = ()):
        """The rows of ``sql`` as a pyarrow Table."""
        import duckdb
        import pyarrow as pa

        try:
            rel = self.con.sql(sql, params=list(params) or None)
            return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
        except (duckdb.Error, pa.ArrowException, OSError) as e:
            raise self._error(e) from None


def _corpus_features(out: Path, db: _Corpus) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
    """Videos (ok) per configuration hash, and what each configuration stored for a search
    (``{"visual": bool, "text_image_model": {"path", "digest"} | None}``)."""
    from .batch import stored_configs

    rows = db.sql("SELECT config_hash, count(*) AS n FROM manifest WHERE status = 'ok' GROUP BY config_hash "
                  "ORDER BY config_hash").to_pylist()
    videos = {r["config_hash"]: int(r["n"]) for r in rows}
    configs = stored_configs(out)
    for h in videos:
        if h not in configs:
            raise SchemaError(f"{out / 'configs' / (h + '.json')}: not found (the manifest names configuration {h})")
    stored = {h: {"visual": False, "text_image_model": None, **(configs[h].get("search_features") or {})}
              for h in videos}
    return videos, stored


def search_corpus(folder: str | Path, query: str, config: SearchConfig | None = None, *,
                  text_image_model: Any = None, text_embedding: np.ndarray | None = None) -> SearchResult:
    """The hits of ``query`` across a batch folder's videos, through DuckDB over its Parquet parts, scored as
    :func:`search` scores one video: each window's top label (a batch made with a tagger probe); its motion and
    appearance change when the query names them (a batch made with ``visual_features``); its picture against the
    query (a batch made with ``text_image_model``, searched with that model, or the query's ``text_embedding`` by
    it: the cosine is computed in DuckDB, its robust z per video here); and eventness when the query names it.
    The best hits across videos.

    >>> [(h.video, h.start_s) for h in search_corpus("corpus-out", "dog").hits]    # doctest: +SKIP
    [('/videos/park.mp4', 31.0), ('/videos/street.mp4', 4.0)]
    """
    from .probes.question import question_words, robust_z

    cfg = config or SearchConfig()
    check_search_config(cfg)
    words, named = query_terms(query)
    out = corpus_folder(folder)
    model = load_text_image_model(text_image_model) if text_image_model is not None else None
    notes: list[str] = []
    hits: list[Hit] = []
    with _Corpus(out) as db:
        videos, stored = _corpus_features(out, db)
        total = sum(videos.values())
        features = ["label"]
        for f in ("motion", "appearance"):
            if f not in named:
                continue
            lacking = sum(n for h, n in videos.items() if not stored[h]["visual"])
            if lacking < total:
                features.append(f)
            if lacking:
                notes.append(f"the query names {f}, but {lacking} of {total} videos of this batch folder hold none "
                             f"(batch them with --visual-features to store motion and appearance change)")
        embedded = {h: m["digest"] for h, m in ((h, stored[h]["text_image_model"]) for h in videos) if m}
        picture_hashes: list[str] = []
        text = None
        if embedded and (model is not None or text_embedding is not None):
            if model is not None:
                picture_hashes = [h for h, d in embedded.items() if d == model.digest]
                if not picture_hashes:
                    first = stored[next(iter(embedded))]["text_image_model"]
                    raise ConfigError(f"--text-image-model {model.path}: its weights ({model.digest}) are not those "
                                      f"that embedded the pictures of {out} ({first['path']}, {first['digest']}); "
                                      f"use that model, or batch the videos again with this one")
                text_embedding = model.embed_text(query)
            else:
                picture_hashes = list(embedded)
            text = np.asarray(text_embedding, np.float32)
            dims = db.sql("SELECT DISTINCT len(embedding) AS d FROM windows WHERE embedding IS NOT NULL AND "
                          "config_hash IN (SELECT unnest(?::VARCHAR[]))", [picture_hashes]).column("d").to_pylist()
            if text.ndim != 1 or any(d != text.shape[0] for d in dims):
                raise ConfigError(f"the query's embedding has shape {text.shape}, the pictures' "
                                  f"({dims[0] if dims else '?'},)")
            features.insert(1, "picture")
            other = sum(videos[h] for h in embedded if h not in picture_hashes)
            if other:
                notes.append(f"{other} videos' pictures were embedded by another model: not matched")
            bare = total - sum(videos[h] for h in embedded)
            if bare:
                notes.append(f"{bare} of {total} videos hold no picture embeddings (batch them with "
                             f"--text-image-model DIR)")
        elif embedded:
            first = stored[next(iter(embedded))]["text_image_model"]
            notes.append(f"pictures were embedded by {first['path']}: give --text-image-model with that model to "
                         f"match them")
        elif model is not None or text_embedding is not None:
            notes.append(f"{out}: no picture embeddings in this batch folder: make them with `earmark batch INPUT "
                         f"--out {out} --text-image-model DIR`")
        else:
            notes.append("no text-image model: give --text-image-model DIR (a local CLIP or SigLIP folder) to match "
                         "pictures")
        if "eventness" in named:
            features.append("eventness")
        labels = db.sql("SELECT DISTINCT label FROM windows WHERE label IS NOT NULL").column("label").to_pylist()
        if not labels:
            probes = db.sql("SELECT string_agg(DISTINCT probe, ', ' ORDER BY probe) AS p FROM windows")
            notes.insert(0, f"no window of this corpus has a label (probes: {probes.column('p')[0] or 'none'}): a "
                            f"batch made with a tagger probe (--probe panns|yamnet|ast|clap --probe-weights PATH) "
                            f"can be searched by sound names")
        matched = sorted(lab for lab in labels if words & question_words(lab.replace("_", " ")))
        # Rows whose evidence without the picture can reach the level (a superset of the matches), and every row
        # of a video whose pictures are matched (its robust z needs them all).
        terms, params = [], []
        if matched:
            terms.append(f"CASE WHEN w.label IN (SELECT unnest(?::VARCHAR[])) THEN {LABEL_Z} ELSE 0 END")
            params.append(matched)
        terms += [f"greatest(coalesce(w.{f}, 0), 0)" for f in ("motion", "appearance") if f in features]
        if "eventness" in features:
            terms.append("greatest(w.score, 0)")
        if terms == terms[:1] and matched:  # labels alone: a plain filter DuckDB pushes into the Parquet scan
            where = ["w.label IN (SELECT unnest(?::VARCHAR[]))"]
        else:
            where = [f"{' + '.join(terms)} >= ?"] if terms else []
            params += [cfg.level - 1e-6] if terms else []
        cosine = "NULL::FLOAT"
        if picture_hashes:
            where.append("w.config_hash IN (SELECT unnest(?::VARCHAR[]))")
            params.append(picture_hashes)
            cosine = ("CASE WHEN w.config_hash IN (SELECT unnest(?::VARCHAR[])) THEN "
                      "list_dot_product(w.embedding, ?::FLOAT[]) END")
            params = [picture_hashes, text.tolist(), *params]
        rows = db.sql(f"SELECT w.path, w.window_index, w.start_s, w.end_s, w.score, w.label, w.motion, "
                      f"w.appearance, {cosine} AS cosine, m.duration_s FROM windows w JOIN manifest m USING "
                      f"(video_key) WHERE {' OR '.join(where)} ORDER BY w.path, w.window_index",
                      params) if where else None
    if rows is not None and rows.num_rows:
        cols = {c: rows.column(c).to_numpy(zero_copy_only=False) for c in rows.column_names}
        paths = cols["path"]
        bounds = np.flatnonzero(np.concatenate([[True], paths[1:] != paths[:-1], [True]]))
        wanted = set(matched)
        for a, b in itertools.pairwise(bounds):
            lab = cols["label"][a:b]
            cos = cols["cosine"][a:b].astype(np.float64)
            ev = {"label": np.where(np.array([x in wanted for x in lab], bool), LABEL_Z, 0.0)}
            if "picture" in features:
                ev["picture"] = robust_z(cos, PICTURE_MIN_SCALE) if np.isfinite(cos).all() else np.zeros(b - a)
            for f in ("motion", "appearance"):
                if f in features:
                    ev[f] = np.nan_to_num(cols[f][a:b].astype(np.float64), nan=0.0)
            if "eventness" in features:
                ev["eventness"] = cols["score"][a:b].astype(np.float64)

            def detail(feature: str, i: int, lab=lab, cos=cos) -> str:
                return (f"{lab[i]} (top 1)" if feature == "label" else f"cosine {cos[i]:.3f}" if feature == "picture"
                        else "")

            hits += window_hits(str(paths[a]), cols["window_index"][a:b], cols["start_s"][a:b], cols["end_s"][a:b],
                                float(cols["duration_s"][a]), ev, detail, cols["score"][a:b], cfg)
    return SearchResult(query=query, source=str(out), config=cfg.to_dict(), features=tuple(features),
                        hits=rank_hits(hits, cfg.top), notes=tuple(notes))


PLANS_KIND = "earmark.search_plans"
"""The ``plans.json`` of a folder of corpus plans (``earmark search CORPUS_DIR --plan --plan-out DIR``)."""


def _corpus_index(out: Path, video: str, row: dict[str, Any], config: dict[str, Any], windows: Any) -> IndexResult:
    """A video of a batch folder as an IndexResult: its file's facts (read now, checked against the manifest's
    fingerprint) and a Timeline of its stored windows (what a plan reads: length, hop, window, probe, scores)."""
    from .media.audio import DEFAULT_SAMPLE_RATE
    from .media.container import info
    from .types import Timeline

    vi = info(video)
    if vi.fingerprint != row["fingerprint"]:
        raise SchemaError(f"{video}: the file changed since it was batched into {out} (fingerprint differs); "
                          f"batch it again")
    labels = windows["label"]
    nan = float("nan")  # the probe's normalisation is not stored in the Parquet, and a plan does not read it
    tl = Timeline(video=vi.path, fingerprint=vi.fingerprint, duration_s=vi.duration_s, hop_s=float(config["hop_s"]),
                  window_s=float(config["window_s"]), probe=str(windows["probe"][0]),
                  probe_config=dict(config["probe_options"]), raw_unit="", raw=windows["raw"],
                  scores=windows["score"], confidence=windows["confidence"], coverage=windows["coverage"],
                  norm_center=nan, norm_scale=nan, audio_stream=config["audio_stream"],
                  sample_rate=DEFAULT_SAMPLE_RATE,
                  labels=tuple((x,) if x else () for x in labels) if any(x for x in labels) else None)
    return IndexResult(vi, tl, (), dict(config["anchors"]))


def plan_corpus_hits(folder: str | Path, result: SearchResult, model: str, budget: int, strategy: str = "anchored",
                     **plan_kw: Any) -> dict[str, Any]:
    """One equal-token plan per video with hits of a corpus search (``result``, from :func:`search_corpus` over
    ``folder``), each by :func:`plan_hits` (the same planner as a video's ``--plan``: the video's hits are its
    anchors), by video path in the order of each video's best hit. Every video is read for its facts (size,
    frame rate) and must be the file that was batched. A video with no picture (an audio file of the corpus) is
    left out with a warning; when none has one, ConfigError.

    >>> plans = plan_corpus_hits("corpus-out", search_corpus("corpus-out", "dog"), "qwen2.5-vl", 640)  # doctest: +SKIP
    >>> {v: p.total_tokens for v, p in plans.items()}                                               # doctest: +SKIP
    {'/videos/park.mp4': 640, '/videos/street.mp4': 640}
    """
    from .batch import stored_configs

    out = corpus_folder(folder)
    if strategy not in PLAN_STRATEGIES:
        raise ConfigError(f"--strategy {strategy!r}: a plan of search hits spends tokens on them; use one of "
                          f"{', '.join(PLAN_STRATEGIES)}")
    if not result.hits:
        raise ConfigError(f"{out}: no match for {result.query!r}: nothing to plan (no plans written)")
    videos = list(dict.fromkeys(h.video for h in sorted(result.hits, key=lambda h: h.rank)))
    with _Corpus(out) as db:
        manifest = {r["path"]: r for r in db.sql(
            "SELECT path, fingerprint, config_hash FROM manifest WHERE status = 'ok' AND path IN (SELECT "
            "unnest(?::VARCHAR[]))", [videos]).to_pylist()}
        rows = db.sql("SELECT path, raw, score, confidence, coverage, label, probe FROM windows WHERE path IN "
                      "(SELECT unnest(?::VARCHAR[])) ORDER BY path, window_index", [videos])
    configs = stored_configs(out)
    cols = {c: rows.column(c).to_numpy(zero_copy_only=False) for c in rows.column_names}
    plans = {}
    for video in videos:
        if video not in manifest:
            raise ConfigError(f"{video}: not an ok video of {out}: the hits are not of this batch folder")
        at = np.flatnonzero(cols["path"] == video)
        index = _corpus_index(out, video, manifest[video], configs[manifest[video]["config_hash"]],
                              {c: v[at] for c, v in cols.items()})
        mine = dataclasses.replace(result, hits=tuple(h for h in result.hits if h.video == video))
        try:
            plans[video] = plan_hits(index, mine, model, budget, strategy, **plan_kw)
        except NoVideoStreamError:
            import warnings

            warnings.warn(EarmarkWarning(f"{video}: no video stream: its hits are not planned"), stacklevel=2)
    if not plans:
        raise ConfigError(f"{out}: none of the videos with hits for {result.query!r} has a picture to plan")
    return plans


def _plan_file_name(video: str) -> str:
    from .batch import video_key

    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(video).stem)[:60].lstrip(".") or "video"
    return f"{stem}-{video_key(video)}.plan.json"


def check_plans_folder(out: str | Path) -> Path:
    """``out`` as a folder corpus plans may be written to: new, empty, or one earlier plans folder (replaced whole);
    ConfigError naming it otherwise."""
    from ._io import check_replaceable_output

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--plan-out {out}: exists and is not a folder (a batch folder's plans are one file per "
                          f"video: give a folder)")
    if out.is_dir() and any(out.iterdir()):
        names = {p.name for p in out.iterdir()}
        try:
            ours = _read_json_kind(out / "plans.json") == PLANS_KIND
        except (OSError, ValueError):
            ours = False
        if not ours or any(not (n == "plans.json" or n.endswith(".plan.json")) for n in names):
            raise ConfigError(f"--plan-out {out}: exists and is not an earmark plans folder (no plans.json of kind "
                              f"{PLANS_KIND}, or other files in it); give a new or empty folder")
        check_replaceable_output(out)
    return out


def _read_json_kind(path: Path) -> Any:
    import json

    doc = json.loads(path.read_text(encoding="utf-8"))
    return doc.get("kind") if isinstance(doc, dict) else None


def write_corpus_plans(plans: dict[str, Any], result: SearchResult, out: str | Path) -> Path:
    """Write ``plans`` (video -> Plan) into folder ``out`` as it appears complete or not at all: one
    ``<stem>-<video key>.plan.json`` per video and ``plans.json`` (the query, and per video its file, hits and
    tokens)."""
    from ._io import atomic_folder, dumps_json
    from ._version import __version__
    from .types import SCHEMA_VERSION

    out = check_plans_folder(out)
    first = next(iter(plans.values()))
    listing = {"kind": PLANS_KIND, "schema_version": SCHEMA_VERSION, "earmark_version": __version__,
               "query": result.query, "source": result.source, "model": first.model, "budget": first.budget,
               "strategy": first.strategy,
               "plans": [{"video": v, "file": _plan_file_name(v), "hits": p.config["search"]["hits"],
                          "frames": len(p.frames), "total_tokens": p.total_tokens} for v, p in plans.items()]}
    texts = {_plan_file_name(v): dumps_json(p.to_dict()) for v, p in plans.items()}
    with atomic_folder(out) as tmp:
        for name, text in texts.items():
            (tmp / name).write_text(text, encoding="utf-8")
        (tmp / "plans.json").write_text(dumps_json(listing), encoding="utf-8")
    return out


# --------------------------------------------------------------------------------------------- corpus highlights


@dataclass(frozen=True)
class CorpusSegment:
    """A highlight segment of one video of a corpus."""

    video: str
    probe: str
    segment: Any
    """A :class:`~earmark.highlights.Segment` (its rank: within the video, or across the corpus)."""

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.video, "probe": self.probe, **self.segment.to_dict()}


SCOPES = ("video", "corpus")
"""``video``: the best segments of each video; ``corpus``: the best segments across all videos."""


@dataclass(frozen=True, eq=False)
class CorpusHighlights:
    """The best segments of a batch folder's videos, by eventness."""

    folder: str
    scope: str
    config: dict[str, Any]
    videos: int
    segments: tuple[CorpusSegment, ...]
    notes: tuple[str, ...] = ()

    KIND: ClassVar[str] = "earmark.corpus_highlights"

    @property
    def total_s(self) -> float:
        return _us(sum(s.segment.duration_s for s in self.segments))

    def to_dict(self) -> dict[str, Any]:
        from ._version import __version__
        from .types import SCHEMA_VERSION

        return {"kind": self.KIND, "schema_version": SCHEMA_VERSION, "earmark_version": __version__,
                "folder": self.folder, "scope": self.scope, "scorer": "eventness", "config": dict(self.config),
                "videos": self.videos, "total_s": self.total_s, "segments": [s.to_dict() for s in self.segments],
                "notes": list(self.notes)}

    def csv_text(self) -> str:
        """One row per segment, in the document's order (video by video, or best first across the corpus)."""
        import csv
        import io

        from .sinks.export import FORMULA_START

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = ("rank", "video", "start_s", "end_s", "duration_s", "score", "mean_score", "peak_s", "probe")
        w.writerow(cols)
        for s in self.segments:
            d = s.to_dict()
            w.writerow(["'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v
                        for v in (d[c] for c in cols)])
        return buf.getvalue()


def corpus_highlights(folder: str | Path, config: Any = None, scope: str = "video") -> CorpusHighlights:
    """The best segments of every video of a batch folder (``scope="video"``: ``config.top`` per video, or as many
    as fit ``config.total_duration_s``) or across the corpus (``scope="corpus"``: the best of all videos; per-video
    robust z-scores compare across videos), grown from the eventness of the folder's windows exactly as
    :func:`earmark.highlights.highlights` grows them from an index.

    >>> h = corpus_highlights("corpus-out", HighlightConfig(top=1), scope="corpus")   # doctest: +SKIP
    >>> [(s.video, s.segment.start_s) for s in h.segments]                          # doctest: +SKIP
    [('/videos/park.mp4', 30.0)]
    """
    from .errors import unknown_name
    from .highlights import HighlightConfig, check_highlight_config, find_segments, select_segments, trim

    cfg = config or HighlightConfig()
    check_highlight_config(cfg)
    if cfg.scorer != "eventness":
        raise ConfigError(f"--scorer {cfg.scorer}: a batch folder holds eventness, not the videos' embeddings (run "
                          f"earmark highlights on a video for --scorer activation)")
    if scope not in SCOPES:
        raise unknown_name("scope", scope, SCOPES, sort=False)
    out = corpus_folder(folder)
    with _Corpus(out) as db:
        rows = db.sql("SELECT w.path, w.probe, w.start_s, w.end_s, w.score, m.duration_s FROM windows w JOIN manifest "
                      "m USING (video_key) ORDER BY w.path, w.window_index")
    cols = {c: rows.column(c).to_numpy(zero_copy_only=False) for c in rows.column_names}
    paths = cols["path"]
    bounds = np.flatnonzero(np.concatenate([[True], paths[1:] != paths[:-1], [True]])) if len(paths) else []
    found: list[CorpusSegment] = []
    for a, b in itertools.pairwise(bounds):
        starts, ends = cols["start_s"][a:b], cols["end_s"][a:b]
        window = float(ends[0] - starts[0])
        hop = float(starts[1] - starts[0]) if b - a > 1 else window
        ranked = find_segments(cols["score"][a:b].astype(np.float64), hop, window, float(cols["duration_s"][a]), cfg)
        if scope == "video":
            ranked = select_segments(ranked, cfg.top, cfg.total_duration_s, cfg.min_len_s)
        found += [CorpusSegment(str(paths[a]), str(cols["probe"][a]), g) for g in ranked]
    if scope == "corpus":
        chosen: list[CorpusSegment] = []
        used = 0.0
        for s in sorted(found, key=lambda s: (-s.segment.score, -s.segment.mean_score, s.video, s.segment.start_s)):
            g = s.segment
            if cfg.top is not None and len(chosen) >= cfg.top:
                break
            if cfg.total_duration_s is not None:  # as select_segments fills a reel: trim the last around its peak
                room = cfg.total_duration_s - used
                if g.duration_s > room + _EPS:
                    if room + _EPS < max(cfg.min_len_s, 1e-6):
                        break
                    g = trim(g, room)
            chosen.append(dataclasses.replace(s, segment=dataclasses.replace(g, rank=len(chosen) + 1)))
            used += g.duration_s
        found = chosen
    notes = [] if found else ["no video of this folder has windows (is any manifest line ok?)"]
    return CorpusHighlights(folder=str(out), scope=scope, config=cfg.to_dict(), videos=len(bounds) - 1 if len(
        paths) else 0, segments=tuple(found), notes=tuple(notes))
