"""What the eval's per-second heads see of a plan with one-token frames: each second's features, pooled or full.

The protocol (:mod:`earmark.eval.training`) packs one frame per second: its summary (CLS) and its spatial tokens.
A ``pooled-1`` / ``skim`` plan has any number of frames per second, and a pooled frame costs one token: its
pooled embedding from the frozen encoder. The honest model of that frame is the encoder's summary of the picture
at the pooled size, read once, as **one** token; the head never sees its spatial tokens. A full frame gives its
summary and all its spatial tokens, as in the protocol. So for second ``s``:

- the frames planned in ``[s, s + 1)`` (a frame at the clip's end counts in the last second);
- tokens: every full frame's spatial tokens, and one token per pooled frame (its summary);
- summary: the mean of those frames' summaries;
- a second with no planned frame takes its nearest frame (the earlier one on a tie), tokens and summary: what
  the model has for that moment is the nearest picture it was shown.

A uniform plan of one frame per second gives exactly the protocol's features, so rows packed here and by the
protocol are comparable. Pure numpy apart from :func:`pack_seconds` (torch, inside the function).

>>> import numpy as np
>>> from earmark.types import PlannedFrame
>>> f = [PlannedFrame(0.2, 64, 64, 16), PlannedFrame(0.7, 224, 224, 1), PlannedFrame(2.5, 224, 224, 1)]
>>> feats = {time_key(0.2): (np.ones(2), np.ones((4, 2))), time_key(0.7): (np.zeros(2), np.zeros((49, 2))),
...          time_key(2.5): (np.full(2, 3.0), np.zeros((49, 2)))}
>>> cls, tokens = second_features(f, lambda fr: feats[time_key(fr.time_s)], 3, pooled=lambda fr: fr.tokens == 1)
>>> cls.tolist(), [len(t) for t in tokens]  # second 1 has no frame: the nearest (0.7 s, pooled) stands in
([[0.5, 0.5], [0.0, 0.0], [3.0, 3.0]], [5, 1, 1])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..budget.costs import POOLED_TOKENS
from ..types import Plan, PlannedFrame
from .prepare import time_key

Features = tuple[np.ndarray, np.ndarray]
"""(summary (D,), spatial tokens (N, D)) of one encoded picture."""


def is_pooled(plan: Plan, frame: PlannedFrame) -> bool:
    """A one-token frame of a ``pooled-1`` / ``pooled-1+MODEL`` plan (its pooled embedding, not its tokens)."""
    return plan.model.startswith("pooled-1") and frame.tokens == POOLED_TOKENS


def second_of(t: float, segments: int) -> int:
    return min(segments - 1, max(0, int(np.floor(t))))


def second_features(frames: Sequence[PlannedFrame], features: Callable[[PlannedFrame], Features], segments: int,
                    pooled: Callable[[PlannedFrame], bool]) -> tuple[np.ndarray, list[np.ndarray]]:
    """(summaries (segments, D) float32, per-second tokens [(n_s, D) float32]) of a plan's frames (see the module
    docstring). ``features(frame)`` gives a frame's encoded picture; ``pooled(frame)`` says it is one token."""
    if not frames:
        raise ValueError("a plan without frames has no features")
    per: list[list[int]] = [[] for _ in range(segments)]
    for i, f in enumerate(frames):
        per[second_of(f.time_s, segments)].append(i)
    times = np.array([f.time_s for f in frames])
    own: list[Features] = []
    for f in frames:
        c, t = features(f)
        c = np.asarray(c, np.float32)
        own.append((c, c[None] if pooled(f) else np.asarray(t, np.float32)))
    cls = np.empty((segments, own[0][0].shape[0]), np.float32)
    tokens: list[np.ndarray] = []
    for s in range(segments):
        idx = per[s] or [int(np.argmin(np.abs(times - (s + 0.5))))]  # argmin: the earlier frame on a tie
        cls[s] = np.mean([own[i][0] for i in idx], 0)
        tokens.append(np.concatenate([own[i][1] for i in idx]))
    return cls, tokens


def pack_seconds(clips: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]], labels: np.ndarray) -> Any:
    """The protocol's :class:`~earmark.eval.training.SplitData` from per-clip :func:`second_features` and
    ``labels`` (clips, T): ready for :func:`earmark.eval.training.train_and_test` (no audio features)."""
    import torch

    from .training import SplitData

    labels = np.asarray(labels)
    if len(clips) != len(labels) or any(len(t) != labels.shape[1] or len(c) != labels.shape[1] for c, t in clips):
        raise ValueError(f"{len(clips)} clips of features for labels {labels.shape}: one row of T seconds each")
    lens = [len(t) for _, secs in clips for t in secs]
    return SplitData(torch.from_numpy(np.concatenate([t for _, secs in clips for t in secs]).astype(np.float32)),
                     np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
                     torch.from_numpy(np.stack([c for c, _ in clips]).astype(np.float32)),
                     torch.zeros((len(clips), labels.shape[1], 0)),
                     torch.from_numpy(labels.astype(np.int64)))


__all__ = ["Features", "is_pooled", "pack_seconds", "second_features", "second_of", "time_key"]
