"""vLLM requests from a plan: videos with the metadata vLLM reads frame times from, and a prompt to match.

vLLM's offline input is a dict ``{"prompt": ..., "multi_modal_data": {"video": [...]}, "mm_processor_kwargs":
{...}}``; a video item with metadata is a pair ``(frames, metadata)``: frames ``(T, H, W, 3)`` uint8, metadata the
fields of transformers' ``VideoMetadata`` (``fps``, ``frames_indices``, ``total_num_frames``, ``duration`` ...) plus
``do_sample_frames``. vLLM's Qwen3-VL processor writes ``<12.5 seconds>`` before each temporal patch from
``frames_indices / fps``; its Qwen2/2.5-VL processor takes ``second_per_grid_ts`` from the sampled rate. Frames
earmark planned are pre-sampled, so ``do_sample_frames`` is false and the metadata is the millisecond clock of
:func:`earmark.integrations.qwen.run_metadata`: real times, also on variable-frame-rate files::

    from vllm import LLM, SamplingParams
    from earmark.integrations.vllm import request

    req = request("clip.mp4", "What makes the loud sound?", {"budget": 2048, "model": "qwen3-vl-video"})
    llm = LLM("Qwen/Qwen3-VL-8B-Instruct", limit_mm_per_prompt={"video": len(req["multi_modal_data"]["video"])})
    out = llm.generate(req, SamplingParams(max_tokens=128))

A plan whose frames change size is several videos (one per run, see :func:`earmark.integrations.qwen.frame_runs`),
so ``limit_mm_per_prompt`` must allow that many. Nothing here imports vLLM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..budget.costs import cost_model
from ..errors import ConfigError
from ..types import Frame, Plan
from .common import EarmarkOptions, plan_video
from .qwen import FrameRun, frame_runs, qwen_family

VIDEO_PLACEHOLDER = "<|vision_start|><|video_pad|><|vision_end|>"
"""What vLLM's Qwen-VL models replace with a video's tokens (their ``get_placeholder_str``)."""


def video_items(plan: Plan, frames: Sequence[Frame]) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """``multi_modal_data["video"]`` for a Qwen video plan: one ``(frames (T, H, W, 3) uint8, metadata)`` pair per
    run of frames that one video can hold."""
    return [(np.stack([f.image for f in run.frames]), {**run.metadata(), "do_sample_frames": False})
            for run in _runs(plan, frames)]


def _runs(plan: Plan, frames: Sequence[Frame]) -> list[FrameRun]:
    family, _ = qwen_family(plan.model)
    limits = cost_model(plan.model).limits
    return frame_runs(frames, family, limits.video_max_pixels if limits.video_per_clip else None)


def qwen_prompt(plan: Plan, frames: Sequence[Frame], question: str,
                system: str = "You are a helpful assistant.") -> str:
    """Qwen's chat text with one video placeholder per item of :func:`video_items`; for Qwen2/2.5-VL each is
    preceded by ``<t=a-bs>`` (its real start and end), Qwen3-VL's processor writes the times itself."""
    family, _ = qwen_family(plan.model)
    parts = []
    for run in _runs(plan, frames):
        if family != "qwen3-vl":
            parts.append(f"<t={run.times_s[0]:.2f}-{run.times_s[-1]:.2f}s>")
        parts.append(VIDEO_PLACEHOLDER)
    return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n" + "".join(parts) + question +
            "<|im_end|>\n<|im_start|>assistant\n")


def request(video: str | Path, question: str, earmark: Mapping[str, Any] | EarmarkOptions) -> dict[str, Any]:
    """One vLLM prompt dict for ``llm.generate``: plan ``earmark["budget"]`` tokens of a Qwen video model
    (default ``qwen2.5-vl-video``) over ``video``, extract the frames, and pair them with their metadata
    (:func:`request_and_plan` also returns the plan)."""
    req, _ = request_and_plan(video, question, earmark)
    return req


def request_and_plan(video: str | Path, question: str, earmark: Mapping[str, Any] | EarmarkOptions
                     ) -> tuple[dict[str, Any], Plan]:
    """:func:`request` and the plan it was made from."""
    options = EarmarkOptions.from_mapping(earmark, "earmark")
    family, mode = qwen_family(options.model or "qwen2.5-vl-video")  # before any decoding
    if mode != "video":
        raise ConfigError(f"earmark option model {options.model!r}: vLLM videos need a Qwen video model "
                          f"({family}-video)")
    plan, frames = plan_video(video, options, "qwen2.5-vl-video")
    req = {"prompt": qwen_prompt(plan, frames, question), "multi_modal_data": {"video": video_items(plan, frames)},
           "mm_processor_kwargs": {"do_sample_frames": False}}
    return req, plan
