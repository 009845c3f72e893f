"""A drop-in for qwen-vl-utils' ``process_vision_info`` that plans the video with earmark and keeps real time.

Qwen users write a ``{"type": "video", "video": "clip.mp4"}`` entry; add an ``earmark`` options dict to it::

    messages = [{"role": "user", "content": [
        {"type": "video", "video": "clip.mp4", "earmark": {"budget": 2048, "strategy": "anchored"}},
        {"type": "text", "text": "What makes the loud sound?"}]}]
    images, videos, video_kwargs = process_vision_info(messages, return_video_kwargs=True,
                                                       return_video_metadata=True)   # before the chat template
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

The signature and return shapes are qwen-vl-utils 0.0.14's: ``(images, videos)`` or ``(images, videos,
video_kwargs)``, videos as float tensors ``(T, 3, H, W)`` or, with ``return_video_metadata``, ``(tensor, metadata)``
pairs. What differs is where the frames come from and what their times say:

- earmark plans the budget (``earmark.plan``) and decodes only the planned frames, each at its planned size;
- **the entry is rewritten in place** into what the model must see, so call this *before*
  ``apply_chat_template`` (a template rendered before it has one video placeholder where there are several videos,
  and transformers refuses the mismatch). Non-uniform frames cannot be one evenly sampled Qwen video, so:

  * Qwen2/2.5-VL (time lives in mRoPE positions: ``second_per_grid_ts`` per video): every run of frame pairs that
    share a size and are evenly spaced is one video, whose sampling rate is the run's real rate, preceded by a
    text tag ``<t=12.04-13.52s>`` with its real start and end (a uniform plan is one video, as qwen-vl-utils
    would give);
  * Qwen3-VL (time is text: the processor writes ``<12.5 seconds>`` before each temporal patch from the metadata):
    every run of frames of one size is one video, whatever its spacing, and the metadata gives each frame's real
    time, so a dense-at-anchors plan is a single video;
  * image-mode models (``qwen2.5-vl``, ``qwen3-vl``): each frame is an image preceded by ``<t=12.04s>``.

- the metadata counts time on a millisecond clock: ``fps`` is 1000 and ``frames_indices`` are the frames' real
  presentation times in milliseconds, so ``frames_indices / fps`` (what transformers and vLLM compute timestamps
  from) are the real times on variable-frame-rate files too, and ``total_num_frames`` is set so that
  ``len(frames_indices) / total_num_frames * fps`` (the sampled rate, hence ``second_per_grid_ts``) is the run's
  real frame rate.

With transformers 5, pass ``return_video_metadata=True`` and ``video_metadata=`` to the processor for Qwen2.5-VL as
well: transformers 5 refuses qwen-vl-utils' list of ``fps`` (``video_kwargs`` without metadata), as measured here.
"""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..budget.costs import QWEN_MODELS, canonical_model_name, cost_model, smart_resize
from ..errors import ConfigError
from ..types import Frame, Plan
from .common import EarmarkOptions, plan_video

CLOCK_HZ = 1000.0
"""Ticks per second of the clock that ``frames_indices`` count in (milliseconds)."""
SPATIAL_MERGE_SIZE = 2
IMAGE_MIN_TOKENS = 4
IMAGE_MAX_TOKENS = 16384
PATCH_SIZES = {"qwen2-vl": 14, "qwen2.5-vl": 14, "qwen3-vl": 16}
"""``image_patch_size`` of each Qwen family (qwen-vl-utils' argument: 14, or 16 for Qwen3-VL)."""
EVEN_SPACING_S = 1e-3
"""Planned gaps closer than this count as even (one Qwen2/2.5-VL video); mRoPE resolves 1 / tokens_per_second."""


@dataclass(frozen=True)
class FrameRun:
    """Consecutive planned frames handed to the model as one video."""

    frames: tuple[Frame, ...]

    @property
    def times_s(self) -> list[float]:
        return [f.pts_s for f in self.frames]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.frames[0].planned.width, self.frames[0].planned.height

    @property
    def sample_fps(self) -> float:
        """The rate a processor derives from :meth:`metadata`: the run's real frame rate."""
        return sampled_fps(self.metadata())

    def metadata(self) -> dict[str, Any]:
        return run_metadata(self.times_s, *self.size)


def run_metadata(times_s: Sequence[float], width: int, height: int) -> dict[str, Any]:
    """transformers' ``VideoMetadata`` fields (and vLLM's video metadata) for frames at ``times_s``, on the
    millisecond clock: ``frames_indices[i] / fps`` is frame i's real time; the frames span ``total_num_frames``
    ticks, one mean frame spacing per frame, so the sampled rate (:func:`sampled_fps`) is their real rate.

    >>> m = run_metadata([10.0, 10.5, 11.0, 11.5], 448, 252)
    >>> m["frames_indices"], m["total_num_frames"], sampled_fps(m)
    ([10000, 10500, 11000, 11500], 2000, 2.0)
    """
    n = len(times_s)
    spacing = (times_s[-1] - times_s[0]) / (n - 1) if n > 1 else 0.0
    total = max(n, round(n * spacing * CLOCK_HZ))
    return {"fps": CLOCK_HZ, "frames_indices": [round(t * CLOCK_HZ) for t in times_s], "total_num_frames": total,
            "duration": total / CLOCK_HZ, "width": int(width), "height": int(height), "video_backend": "earmark"}


def sampled_fps(metadata: dict[str, Any]) -> float:
    """``len(frames_indices) / total_num_frames * fps``: the rate transformers' ``VideoMetadata.sampled_fps`` gives
    (Qwen2.5-VL's ``second_per_grid_ts`` is ``temporal_patch_size`` over it)."""
    return len(metadata["frames_indices"]) / metadata["total_num_frames"] * metadata["fps"]


def qwen_family(model: str) -> tuple[str, str]:
    """(family, mode) of a Qwen cost-model name: ``("qwen2.5-vl", "video")`` for ``qwen2.5-vl-video``."""
    name = canonical_model_name(model)
    if name not in QWEN_MODELS:
        raise ConfigError(f"earmark option model {model!r} is not a Qwen-VL model; valid: {', '.join(QWEN_MODELS)}")
    return QWEN_MODELS[name]


def frame_runs(frames: Sequence[Frame], family: str, max_clip_pixels: int | None = None) -> list[FrameRun]:
    """Split a video plan's frames (pairs sharing a temporal patch) into the runs that become one video each.

    Qwen3-VL: a new run where the frame size changes, or where the run would pass ``max_clip_pixels`` (frames x
    height x width: Qwen3-VL's video processor bounds a whole clip, and would shrink a longer one). Qwen2/2.5-VL
    also where the spacing changes, since one video's frames sit at ``i / fps`` in its positions; planned times
    decide (the real ones jitter by less than a source frame).
    """
    pairs: list[list[Frame]] = []
    for f in frames:
        if pairs and pairs[-1][0].planned.group == f.planned.group:
            pairs[-1].append(f)
        else:
            pairs.append([f])
    runs: list[list[Frame]] = []
    for pair in pairs:
        prev = runs[-1] if runs else None
        same_size = prev is not None and (prev[0].planned.width, prev[0].planned.height) == (
            pair[0].planned.width, pair[0].planned.height)
        even = family == "qwen3-vl" or (prev is not None and _evenly_spaced([*prev, *pair]))
        fits = max_clip_pixels is None or prev is None or (len(prev) + len(pair)) * pair[0].planned.width * pair[
            0].planned.height <= max_clip_pixels
        if same_size and even and fits:
            prev.extend(pair)
        else:
            runs.append(list(pair))
    return [FrameRun(tuple(r)) for r in runs]


def _evenly_spaced(frames: Sequence[Frame]) -> bool:
    t = [f.planned.time_s for f in frames]
    gaps = [b - a for a, b in itertools.pairwise(t)]
    return all(abs(g - gaps[0]) <= EVEN_SPACING_S for g in gaps)


def _time_range_tag(run: FrameRun) -> str:
    return f"<t={run.times_s[0]:.2f}-{run.times_s[-1]:.2f}s>"


def _pil(image: Any):
    from PIL import Image

    return Image.fromarray(image)


def _plan_entry(ele: dict[str, Any], where: str, image_patch_size: int) -> tuple[Plan, list[dict[str, Any]]]:
    """The content entries one earmark video entry stands for, and its plan."""
    video = ele.get("video")
    if isinstance(video, str) and video.startswith("file://"):
        video = video[len("file://"):]
    if not isinstance(video, (str, Path)) or str(video).startswith(("http://", "https://")):
        raise ConfigError(f"{where}: an earmark video entry needs a local video path, got {video!r} (earmark reads "
                          f"the file's audio; it downloads nothing)")
    options = EarmarkOptions.from_mapping(ele["earmark"], f"{where}.earmark")
    default = "qwen3-vl-video" if image_patch_size == 16 else "qwen2.5-vl-video"
    family, mode = qwen_family(options.model or default)
    if PATCH_SIZES[family] != image_patch_size:
        raise ConfigError(f"{where}.earmark: model {options.model!r} has {PATCH_SIZES[family]} px patches, but "
                          f"process_vision_info was called with image_patch_size={image_patch_size}")
    plan, frames = plan_video(video, options, default)
    out: list[dict[str, Any]] = []
    if mode == "image":
        for f in frames:
            out.append({"type": "text", "text": f"<t={f.pts_s:.2f}s>"})
            out.append({"type": "image", "image": _pil(f.image), "resized_height": f.planned.height,
                        "resized_width": f.planned.width, "earmark_times_s": [f.pts_s]})
        return plan, out
    limits = cost_model(plan.model).limits
    for run in frame_runs(frames, family, limits.video_max_pixels if limits.video_per_clip else None):
        if family != "qwen3-vl":  # Qwen3-VL's processor writes each patch's time itself, from the metadata
            out.append({"type": "text", "text": _time_range_tag(run)})
        w, h = run.size
        out.append({"type": "video", "video": [_pil(f.image) for f in run.frames], "resized_height": h,
                    "resized_width": w, "sample_fps": run.sample_fps, "earmark_times_s": run.times_s})
    return plan, out


def _conversations(conversations: Any) -> list[list[dict[str, Any]]]:
    if isinstance(conversations, list) and conversations and isinstance(conversations[0], dict):
        return [conversations]
    if not isinstance(conversations, list) or not all(isinstance(c, list) for c in conversations):
        raise ConfigError("messages must be a list of chat messages (or a list of such lists)")
    return conversations


def expand_messages(conversations: Any, image_patch_size: int = 14) -> list[Plan]:
    """Plan every video entry that carries ``earmark`` options and replace it, in place, by the entries the model
    must see (see the module's docstring); returns the plans in order. Entries already expanded are left alone, so
    calling it twice plans nothing twice."""
    plans: list[Plan] = []
    batch = _conversations(conversations)
    single = batch[0] is conversations if batch else True
    for ci, conversation in enumerate(batch):
        for mi, message in enumerate(conversation):
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, list):
                continue
            new: list[Any] = []
            for ei, ele in enumerate(content):
                if isinstance(ele, dict) and "earmark" in ele:
                    where = (f"messages[{mi}]" if single else f"messages[{ci}][{mi}]") + f".content[{ei}]"
                    if "video" not in ele:
                        raise ConfigError(f"{where}: earmark options belong on a video entry "
                                          f"({{'type': 'video', 'video': PATH, 'earmark': {{...}}}})")
                    plan, entries = _plan_entry(ele, where, image_patch_size)
                    plans.append(plan)
                    new.extend(entries)
                else:
                    new.append(ele)
            content[:] = new
    return plans


def _vision_entries(conversations: Any) -> list[dict[str, Any]]:
    """qwen-vl-utils' ``extract_vision_info``: the image and video entries, in order."""
    out = []
    for conversation in _conversations(conversations):
        for message in conversation:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list):
                for ele in content:
                    if isinstance(ele, dict) and ("image" in ele or "image_url" in ele or "video" in ele or
                                                  ele.get("type", "text") in ("image", "image_url", "video")):
                        out.append(ele)
    return out


def _fetch_image(ele: dict[str, Any], image_patch_size: int):
    """An image entry as qwen-vl-utils' ``fetch_image`` reads it (local path, ``file://``, base64 data URL or PIL
    image), resized by its rule; frames earmark planned are already at their legal size."""
    from PIL import Image

    src = ele.get("image", ele.get("image_url"))
    if isinstance(src, Image.Image):
        img = src
    elif isinstance(src, str) and src.startswith(("http://", "https://")):
        raise ConfigError(f"image {src!r}: earmark's process_vision_info reads local images only (no network)")
    elif isinstance(src, str) and src.startswith("data:image") and "base64," in src:
        img = Image.open(io.BytesIO(base64.b64decode(src.split("base64,", 1)[1])))
    elif isinstance(src, (str, Path)):
        path = str(src)[len("file://"):] if str(src).startswith("file://") else str(src)
        try:
            img = Image.open(path)
            img.load()
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the image ({e})") from None
    else:
        raise ConfigError(f"image entry {src!r}: expected a local path, a data URL or a PIL image")
    if img.mode == "RGBA":
        white = Image.new("RGB", img.size, (255, 255, 255))
        white.paste(img, mask=img.split()[3])
        img = white
    else:
        img = img.convert("RGB")
    factor = image_patch_size * SPATIAL_MERGE_SIZE
    if "resized_height" in ele and "resized_width" in ele:
        h, w = smart_resize(ele["resized_height"], ele["resized_width"], factor, IMAGE_MIN_TOKENS * factor ** 2,
                            IMAGE_MAX_TOKENS * factor ** 2)
    else:
        h, w = smart_resize(img.height, img.width, factor, ele.get("min_pixels", IMAGE_MIN_TOKENS * factor ** 2),
                            ele.get("max_pixels", IMAGE_MAX_TOKENS * factor ** 2))
    return img if img.size == (w, h) else img.resize((w, h))


def _fetch_video(ele: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """An expanded earmark video entry -> (float tensor (T, 3, H, W), metadata)."""
    import numpy as np
    import torch

    video = torch.from_numpy(np.stack([np.asarray(im.convert("RGB")) for im in ele["video"]])).permute(0, 3, 1, 2)
    return video.float(), run_metadata(ele["earmark_times_s"], video.shape[3], video.shape[2])


def process_vision_info(conversations: Any, return_video_kwargs: bool = False, return_video_metadata: bool = False,
                        image_patch_size: int = 14) -> tuple:
    """qwen-vl-utils' ``process_vision_info`` for messages whose video entries carry ``earmark`` options.

    Returns ``(images, videos)``, or ``(images, videos, video_kwargs)`` with ``return_video_kwargs``; ``images`` and
    ``videos`` are None when there are none. Videos are float tensors ``(T, 3, H, W)`` (0-255), or ``(tensor,
    metadata)`` pairs with ``return_video_metadata``; ``video_kwargs`` is ``{"do_sample_frames": False}`` plus the
    per-video ``fps`` list without metadata. ``image_patch_size``: 14 (Qwen2/2.5-VL) or 16 (Qwen3-VL). Earmark
    entries are expanded in place first (:func:`expand_messages`): render the chat template afterwards.

    >>> images, videos, kw = process_vision_info(messages, return_video_kwargs=True,      # doctest: +SKIP
    ...                                          return_video_metadata=True)
    >>> videos, metadata = map(list, zip(*videos))                                        # doctest: +SKIP
    >>> inputs = processor(text=[text], videos=videos, video_metadata=metadata, **kw)     # doctest: +SKIP
    """
    if image_patch_size not in (14, 16):
        raise ConfigError(f"image_patch_size must be 14 (Qwen2/2.5-VL) or 16 (Qwen3-VL), got {image_patch_size!r}")
    expand_messages(conversations, image_patch_size)
    images, videos, fps = [], [], []
    for ele in _vision_entries(conversations):
        if "image" in ele or "image_url" in ele:
            images.append(_fetch_image(ele, image_patch_size))
        elif "video" in ele and "earmark_times_s" in ele:
            video, meta = _fetch_video(ele)
            videos.append((video, meta) if return_video_metadata else video)
            fps.append(sampled_fps(meta))
        elif "video" in ele:
            raise ConfigError(f"video entry {str(ele['video'])[:80]!r} has no earmark options: add "
                              f"'earmark': {{'budget': TOKENS}} to plan it, or give it to qwen_vl_utils")
        else:
            raise ConfigError("image, image_url or video should be in a vision entry")
    kwargs: dict[str, Any] = {"do_sample_frames": False}
    if not return_video_metadata:
        kwargs["fps"] = fps
    out = (images or None, videos or None)
    return (*out, kwargs) if return_video_kwargs else out
