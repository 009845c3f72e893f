"""``earmark demo``: a sample video with sound events at known times: index, anchors vs truth, plans, frames.

The sample is generated (deterministically, in about a second) instead of shipped, so the
install stays small and the demo needs nothing but earmark.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._io import write_json_atomic
from .anchors import AnchorConfig, with_anchors
from .budget.planner import plan
from .index import index
from .media.container import info
from .media.frames import save_frames
from .media.write import VideoSpec, write_media
from .probes.dsp import DSP_PROBES
from .sinks.export import write_json, write_plan
from .synth import Event, mix
from .types import Anchor, IndexResult, Plan

DEMO_DURATION_S = 30.0
DEMO_EVENTS = (
    Event("door knock", 4.0, 5.0),
    Event("dog bark", 11.0, 12.0),
    Event("water", 17.0, 19.0),
    Event("cheer", 25.0, 27.0),
)
DEMO_PROBES = DSP_PROBES
DEMO_ANCHORS = AnchorConfig(k=len(DEMO_EVENTS), min_gap_s=2.0)
VIDEO_NAME = "earmark-demo.mp4"
DEMO_PLANS = (("vit-p16", 196 * 30), ("qwen2.5-vl", 64 * 30))
"""Target models and budgets (uniform: 30 frames at 224 px / 224x224 px) the demo plans for."""


def _scene(width: int, height: int, events: tuple[Event, ...], fps: float) -> Callable[[int, float], np.ndarray]:
    """A panning gradient; during each event a small marker square shows (what a model should look at)."""
    yy, xx = np.mgrid[0:height, 0:2 * width]
    base = np.stack([(xx * 255 // (2 * width)), (yy * 255 // height), 128 + 0 * xx], axis=-1).astype(np.uint8)

    def frame(i: int, t: float) -> np.ndarray:
        shift = int(i * 2) % width
        img = base[:, shift:shift + width].copy()
        for k, ev in enumerate(events):
            if ev.start_s <= t < ev.end_s:
                s = max(4, height // 12)
                x0 = (width // (len(events) + 1)) * (k + 1) - s // 2
                img[height // 2 - s // 2: height // 2 + s // 2, x0:x0 + s] = (255, 255 - 60 * k, 40 * k)
        return img

    return frame


def make_demo_video(path: str | Path, seed: int = 0) -> Path:
    """Write the demo clip (H.264 + AAC, 320x180, 25 fps, 30 s) with DEMO_EVENTS at 20 dB SNR."""
    spec = VideoSpec(width=320, height=180, fps=25.0, gop=50)
    audio = mix(DEMO_DURATION_S, list(DEMO_EVENTS), sr=48_000, snr_db=20.0, seed=seed)
    return write_media(path, DEMO_DURATION_S, audio, 48_000, spec, _scene(spec.width, spec.height, DEMO_EVENTS,
                                                                           spec.fps))


@dataclass(frozen=True)
class DemoResult:
    video: Path
    results: dict[str, IndexResult]
    outputs: list[Path]
    plans: dict[str, Plan]

    def hits(self, probe: str) -> list[Anchor | None]:
        """Per truth event, the first anchor of ``probe`` whose region overlaps it (None when missed)."""
        found = []
        for ev in DEMO_EVENTS:
            found.append(next((a for a in self.results[probe].anchors
                               if a.start_s < ev.end_s and ev.start_s < a.end_s), None))
        return found


def run_demo(out_dir: str | Path = "earmark-demo", say: Callable[[str], None] | None = None) -> DemoResult:
    """Make the sample video in ``out_dir``, index it with every DSP probe, plan two target models, extract."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = say or (lambda _msg: None)
    say("making the sample video")
    video = make_demo_video(out / VIDEO_NAME)
    truth = [{"label": e.label, "start_s": e.start_s, "end_s": e.end_s} for e in DEMO_EVENTS]
    outputs = [video, write_json_atomic(out / "truth.json", {"video": VIDEO_NAME, "events": truth})]
    vi = info(video)
    results = {}
    for probe in DEMO_PROBES:
        say(f"indexing with {probe}")
        tl = index(video, probe=probe, video_info=vi)
        result = with_anchors(vi, tl, DEMO_ANCHORS)
        results[probe] = result
        outputs.append(write_json(result, out / f"index.{probe}.json"))
    plans = {}
    for model, budget in DEMO_PLANS:
        say(f"planning {budget} tokens for {model} and extracting the frames")
        # One frame per second, so context frames sit below the source's size and anchors can be larger.
        p = plan(results["energy"], model, budget, "anchored", k=len(DEMO_EVENTS), frames=int(DEMO_DURATION_S))
        plans[model] = p
        outputs.append(write_plan(p, out / f"plan.{model}.json"))
        outputs.append(save_frames(video, p, out / f"frames.{model}", video_info=vi))
    say("writing the HTML timeline report")
    from .report.html import timeline_report

    truth_spans = [(e.start_s, e.end_s) for e in DEMO_EVENTS]
    for model, p in plans.items():
        name = "report.html" if model == DEMO_PLANS[0][0] else f"report.{model}.html"
        outputs.append(timeline_report(list(results.values()), out / name, plan=p, truth=truth_spans,
                                       labels=[e.label for e in DEMO_EVENTS]))
    return DemoResult(video=video, results=results, outputs=outputs, plans=plans)


def truth_json(path: str | Path) -> list[Event]:
    doc = json.loads(Path(path).read_text())
    return [Event(e["label"], e["start_s"], e["end_s"]) for e in doc["events"]]
