"""Drop-ins for the runtimes people run video models with, keeping each planned frame's real time.

- :mod:`earmark.integrations.qwen`: ``process_vision_info(messages)`` with qwen-vl-utils' signature and return
  shapes, for Qwen2/2.5-VL (time in mRoPE positions and text tags) and Qwen3-VL (a text timestamp per frame).
- :mod:`earmark.integrations.vllm`: vLLM prompt dicts (``multi_modal_data`` videos with the metadata vLLM reads
  frame times from).
- :mod:`earmark.integrations.internvl`: InternVL's ``load_video`` shape: pixel values and ``num_patches_list`` with
  the tiles the plan gives each frame.

Each takes the same options (:class:`EarmarkOptions`: budget, model, strategy ...), indexes the video's audio, plans
and extracts with the library; nothing here decodes more than the plan names. torch is imported only where a tensor
is built.
"""

from __future__ import annotations

from .common import OPTION_KEYS, EarmarkOptions, plan_video

__all__ = ["OPTION_KEYS", "EarmarkOptions", "plan_video"]
