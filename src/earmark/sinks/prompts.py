"""Audio-triggered (contrastive) prompts: questions that point a model at the moments the audio marked.

The wording lives in ``earmark/prompts/templates.json`` (data, not code); pass your own dict of templates to
change it. Only times and event labels go into a prompt, never audio or transcripts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources

from ..types import Plan, clock

TEMPLATE_KEYS = ("preamble", "event", "event_labelled", "alternatives", "contrast", "no_event")


def load_templates() -> dict[str, str]:
    """The shipped prompt templates (``earmark/prompts/templates.json``)."""
    text = resources.files("earmark.prompts").joinpath("templates.json").read_text(encoding="utf-8")
    return json.loads(text)


POINTING_SOURCES = ("audio", "visual", "hybrid", "transfer", "oracle")
"""Anchors a prompt may point at (not evenly spaced fallback ones, nor random ones)."""


def audio_prompt(plan: Plan, labels: Sequence[Sequence[str]] | None = None, *, contrast: bool = True,
                 templates: Mapping[str, str] | None = None) -> str:
    """Sentences pointing at the plan's anchors, strongest first.

    ``labels[i]``: candidate event labels for anchor i (from a semantic probe); one label names the sound,
    several are offered as alternatives. With ``contrast`` the frame farthest from every anchor is named too.

    >>> audio_prompt(plan)                                  # doctest: +SKIP
    'The frames were sampled ... A sound event at 00:12–00:13. What in the frames near 00:12 makes this sound?'
    """
    t = {**load_templates(), **(templates or {})}
    anchors = [a for a in plan.anchors if a.source in POINTING_SOURCES]
    if not anchors:
        return t["no_event"]
    family = anchors[0].source
    anchor_frames = sum(f.role == "anchor" for f in plan.frames)
    parts = [t["preamble"].format(anchor_frames=anchor_frames, frames=len(plan.frames),
                                  sense=t.get(f"sense_{family}", t["sense_audio"]))]
    # One sentence per distinct event: anchors whose regions overlap or touch are one event (strongest first).
    events: list[list[int]] = []
    for i in sorted(range(len(anchors)), key=lambda i: anchors[i].start_s):
        if events and anchors[i].start_s <= max(anchors[j].end_s for j in events[-1]):
            events[-1].append(i)
        else:
            events.append([i])
    for group in sorted(events, key=lambda g: (-max(anchors[i].score for i in g), min(anchors[i].time_s for i in g))):
        best = max(group, key=lambda i: (anchors[i].score, -anchors[i].time_s))
        a = anchors[best]
        names = list(labels[best]) if labels is not None and best < len(labels) else []
        fields = {"start": clock(min(anchors[i].start_s for i in group), 0),
                  "end": clock(max(anchors[i].end_s for i in group), 0), "time": clock(a.time_s, 0)}
        if a.source in ("visual", "transfer"):
            parts.append(t["event_visual"].format(**fields))
        elif len(names) == 1:
            parts.append(t["event_labelled"].format(label=names[0], **fields))
        else:
            parts.append(t["event"].format(**fields))
            if len(names) > 1:
                parts.append(t["alternatives"].format(alternatives=", ".join(names[:-1]) + " or " + names[-1],
                                                      **fields))
    if contrast and plan.frames:
        far = max(plan.frames, key=lambda f: (min(abs(f.time_s - a.time_s) for a in anchors), -f.time_s))
        parts.append(t["contrast"].format(contrast=clock(far.time_s, 0)))
    return " ".join(parts)
