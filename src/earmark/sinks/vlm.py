"""Hand planned frames to a vision-language model, with their real times and sizes.

Message builders (plain JSON-ready dicts) for the formats people feed models with:

- ``qwen_messages``: qwen-vl-utils chat content. Image mode: each frame is an image preceded by its time
  (``<t=12.04s>``) at its own planned size. Video mode: each temporal patch (a pair of frames at one size) is a
  short video with its own timestamps, so the model is never told that unevenly spaced frames are evenly spaced.
- ``internvl_prompt``: InternVL's ``Frame-1 (t=12.04s): <image>`` lines with the tile budget of each frame.
- ``openai_messages``: OpenAI-style chat with base64 JPEG data URLs.

``QwenVL`` runs a local Qwen2.5-VL checkpoint (``from_pretrained(path)``, no network) on planned frames: image
mode through transformers' own image processor, video mode through :func:`qwen_patchify`, because transformers'
video processors need torchvision. Either way the number of visual tokens equals ``plan.total_tokens``.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..media.frames import frame_name
from ..types import Frame, Plan

FAMILIES = ("qwen", "internvl", "openai")


def model_family(model: str) -> str:
    """Which message format a cost-model name calls for."""
    if model.startswith("qwen"):
        return "qwen"
    if model.startswith("internvl"):
        return "internvl"
    return "openai"


def time_tag(t: float) -> str:
    return f"<t={t:.2f}s>"


def jpeg_data_url(image: np.ndarray, quality: int = 90) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_refs(frames: Sequence[Frame], folder: str | Path | None, fmt: str = "jpg") -> list[str]:
    """Where each frame's picture is: written into ``folder`` (returns paths), or inline data URLs."""
    if folder is None:
        return [jpeg_data_url(f.image) for f in frames]
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in frames:
        p = folder / frame_name(f.planned, fmt)
        Image.fromarray(f.image).save(p, **({"quality": 95} if fmt == "jpg" else {}))
        out.append(str(p))
    return out


def _groups(frames: Sequence[Frame]) -> list[list[int]]:
    out: dict[int, list[int]] = {}
    for i, f in enumerate(frames):
        out.setdefault(f.planned.group, []).append(i)
    return list(out.values())


def qwen_messages(frames: Sequence[Frame], plan: Plan, question: str, refs: Sequence[str], prompt: str = "",
                  video: bool | None = None) -> list[dict[str, Any]]:
    """qwen-vl-utils chat messages; video mode (pairs of frames as short videos) when the plan is a video plan."""
    video = plan.model.endswith("-video") if video is None else video
    content: list[dict[str, Any]] = []
    if video:
        for g in _groups(frames):
            a, b = frames[g[0]], frames[g[-1]]
            span = max(b.pts_s - a.pts_s, 1e-3)
            content.append({"type": "text", "text": f"<t={a.pts_s:.2f}-{b.pts_s:.2f}s>"})
            content.append({"type": "video", "video": [refs[i] for i in g], "resized_height": a.planned.height,
                            "resized_width": a.planned.width, "sample_fps": round((len(g) - 1) / span, 6)})
    else:
        for f, ref in zip(frames, refs):
            content.append({"type": "text", "text": time_tag(f.pts_s)})
            content.append({"type": "image", "image": ref, "resized_height": f.planned.height,
                            "resized_width": f.planned.width})
    content.append({"type": "text", "text": " ".join(x for x in (prompt, question) if x)})
    return [{"role": "user", "content": content}]


def internvl_prompt(frames: Sequence[Frame], plan: Plan, question: str, refs: Sequence[str], prompt: str = ""
                    ) -> dict[str, Any]:
    """InternVL chat input: the question text with one ``<image>`` per frame and the tiles each frame gets."""
    lines = [f"Frame-{i + 1} (t={f.pts_s:.2f}s): <image>" for i, f in enumerate(frames)]
    return {"question": "\n".join(lines) + "\n" + " ".join(x for x in (prompt, question) if x), "images": list(refs),
            "num_patches_list": [f.planned.tiles or 1 for f in frames],
            "max_num": [f.planned.tiles - 1 if (f.planned.tiles or 1) > 1 else 1 for f in frames]}


def openai_messages(frames: Sequence[Frame], plan: Plan, question: str, refs: Sequence[str] | None = None,
                    prompt: str = "") -> list[dict[str, Any]]:
    """OpenAI-style chat: a time line and a base64 JPEG per frame (``refs`` may give other URLs)."""
    urls = list(refs) if refs is not None else [jpeg_data_url(f.image) for f in frames]
    content: list[dict[str, Any]] = []
    for f, url in zip(frames, urls):
        content.append({"type": "text", "text": f"Frame at {f.pts_s:.2f} s:"})
        content.append({"type": "image_url", "image_url": {"url": url, "detail": "auto"}})
    content.append({"type": "text", "text": " ".join(x for x in (prompt, question) if x)})
    return [{"role": "user", "content": content}]


def build_messages(frames: Sequence[Frame], plan: Plan, question: str, refs: Sequence[str], prompt: str = "",
                   family: str | None = None) -> Any:
    family = family or model_family(plan.model)
    if family == "qwen":
        return qwen_messages(frames, plan, question, refs, prompt)
    if family == "internvl":
        return internvl_prompt(frames, plan, question, refs, prompt)
    if family == "openai":
        return openai_messages(frames, plan, question, refs, prompt)
    raise ConfigError(f"unknown message family {family!r}; valid: {', '.join(FAMILIES)}")


# ------------------------------------------------------------------------------------------ local Qwen2.5-VL


def qwen_patchify(images: Sequence[np.ndarray], mean: Sequence[float], std: Sequence[float], patch: int = 14,
                  merge: int = 2, temporal: int = 2) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Frames of one size -> (``pixel_values_videos`` rows, ``video_grid_thw``), in Qwen2-VL's patch order.

    The same flattening as transformers' Qwen2-VL processors (which need torchvision for video here):
    ``t*h*w`` rows of ``3*temporal*patch*patch`` values; a frame count not divisible by ``temporal`` repeats the
    last frame.
    """
    x = np.stack(images).astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    x = x.transpose(0, 3, 1, 2)  # T, C, H, W
    if len(x) % temporal:
        x = np.concatenate([x, np.repeat(x[-1:], temporal - len(x) % temporal, axis=0)])
    t, c, h, w = x.shape
    if h % (patch * merge) or w % (patch * merge):
        raise ConfigError(f"frame size {w}x{h} is not a multiple of {patch * merge} px (plan it for a Qwen model)")
    gt, gh, gw = t // temporal, h // patch, w // patch
    x = x.reshape(gt, temporal, c, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(gt * gh * gw, c * temporal * patch * patch), (gt, gh, gw)


QWEN_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
"""``model_type`` values :class:`QwenVL` accepts (transformers' built-in classes)."""


class QwenVL:
    """A local Qwen2.5-VL (or compatible) checkpoint: model, tokenizer and image processor from one folder."""

    SYSTEM = "You are a helpful assistant."

    def __init__(self, model, tokenizer, image_processor) -> None:
        self.model, self.tokenizer, self.image_processor = model, tokenizer, image_processor
        cfg = model.config
        self.image_token = tokenizer.convert_ids_to_tokens(cfg.image_token_id)
        self.video_token = tokenizer.convert_ids_to_tokens(cfg.video_token_id)
        self.merge = cfg.vision_config.spatial_merge_size

    @classmethod
    def from_pretrained(cls, path: str | Path) -> QwenVL:
        """Load from a local folder (``save_pretrained`` layout); never downloads."""
        from ..probes.weights import quiet_loading, transformers_folder

        # Only transformers' own Qwen-VL classes load: a folder's own code (auto_map) never runs.
        p, _ = transformers_folder(path, QWEN_MODEL_TYPES, "a Qwen2/2.5/3-VL checkpoint")
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        kw = {"local_files_only": True, "trust_remote_code": False}
        with quiet_loading():
            model = AutoModelForImageTextToText.from_pretrained(p, **kw).eval()
            return cls(model, AutoTokenizer.from_pretrained(p, **kw), AutoImageProcessor.from_pretrained(p, **kw))

    def inputs(self, frames: Sequence[Frame], plan: Plan, question: str, prompt: str = "",
               video: bool | None = None) -> dict[str, Any]:
        """Token ids and pixel tensors for ``generate``; each frame at its planned size, preceded by its time."""
        import torch

        video = plan.model.endswith("-video") if video is None else video
        parts, tensors = [], {}
        vs = "<|vision_start|>"
        ve = "<|vision_end|>"
        if video:
            rows, grids = [], []
            ip = self.image_processor
            for g in _groups(frames):
                pv, grid = qwen_patchify([frames[i].image for i in g], ip.image_mean, ip.image_std)
                rows.append(pv)
                grids.append(grid)
                n = grid[0] * grid[1] * grid[2] // self.merge ** 2
                a, b = frames[g[0]], frames[g[-1]]
                parts.append(f"<t={a.pts_s:.2f}-{b.pts_s:.2f}s>{vs}{self.video_token * n}{ve}")
            tensors["pixel_values_videos"] = torch.from_numpy(np.concatenate(rows))
            tensors["video_grid_thw"] = torch.tensor(grids)
        else:
            from PIL import Image

            out = self.image_processor(images=[Image.fromarray(f.image) for f in frames], return_tensors="pt")
            for f, grid in zip(frames, out["image_grid_thw"].tolist()):
                n = grid[0] * grid[1] * grid[2] // self.merge ** 2
                parts.append(f"{time_tag(f.pts_s)}{vs}{self.image_token * n}{ve}")
            tensors["pixel_values"] = out["pixel_values"]
            tensors["image_grid_thw"] = out["image_grid_thw"]
        text = (f"<|im_start|>system\n{self.SYSTEM}<|im_end|>\n<|im_start|>user\n" + "".join(parts) +
                " ".join(x for x in (prompt, question) if x) + "<|im_end|>\n<|im_start|>assistant\n")
        enc = self.tokenizer(text, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], **tensors, "text": text}

    def visual_tokens(self, inputs: dict[str, Any]) -> int:
        ids = inputs["input_ids"]
        cfg = self.model.config
        return int(((ids == cfg.image_token_id) | (ids == cfg.video_token_id)).sum())

    def generate(self, frames: Sequence[Frame], plan: Plan, question: str, prompt: str = "",
                 max_new_tokens: int = 64, video: bool | None = None) -> str:
        import torch

        inputs = self.inputs(frames, plan, question, prompt, video)
        inputs.pop("text")
        with torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        return self.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


# ----------------------------------------------------------------------------------------- messages document

MESSAGES_KIND = "earmark.messages"
_FRAME_REF = re.compile(r"^[^/\\]+_frames/\d{5}\.\d{6}s\.jpg$")


def write_messages(video: str | Path, plan: Plan, question: str, out: str | Path, *, inline: bool = False,
                   audio_prompt: bool = True) -> tuple[Path, int, Path | None]:
    """``earmark prompt``: extract the plan's frames and write the messages document ``out`` (JSON), with the
    frames as JPEG files in ``<stem>_frames/`` beside it (paths relative to the JSON's folder; read it back with
    :func:`read_messages`) or inline. Nothing is half-written: the frames go to a temporary folder that replaces
    the old one only when everything succeeded, and a folder holding anything earmark did not write is refused.
    Returns (JSON path, frame count, frames folder or None)."""
    import shutil
    import tempfile

    from .._io import check_replaceable_output, dumps_json, is_frames_folder, write_atomic
    from ..media.frames import extract
    from .prompts import audio_prompt as make_prompt

    out = Path(out)
    folder = None if inline else out.parent / f"{out.stem}_frames"
    if folder is not None:
        check_replaceable_output(folder)
    if folder is not None and folder.exists() and not is_frames_folder(folder):
        raise ConfigError(f"{folder}: exists and holds files earmark did not write; move it or choose another --out")
    frames = list(extract(video, plan))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = None if folder is None else Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part",
                                                             dir=out.parent))
    try:
        refs = image_refs(frames, tmp)
        if folder is not None:
            refs = [f"{folder.name}/{Path(r).name}" for r in refs]
        text = make_prompt(plan) if audio_prompt else ""
        doc = {"kind": MESSAGES_KIND, "model": plan.model, "family": model_family(plan.model), "question": question,
               "audio_prompt": text, "messages": build_messages(frames, plan, question, refs, text),
               "plan": plan.to_dict(), "frame_times_s": [f.pts_s for f in frames],
               "paths": "relative to this file's folder"}
        try:  # everything that can fail happens before the old frames are touched
            body = dumps_json(doc).encode("utf-8")
        except UnicodeEncodeError as e:
            raise ConfigError(f"{out}: the question or a name holds text that is not valid Unicode ({e.reason} at "
                              f"{e.start}); nothing was written") from None
        if tmp is not None:
            old = None
            if folder.exists():
                old = folder.with_name(f".{folder.name}.old")
                folder.rename(old)
            tmp.rename(folder)
            tmp = None
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        write_atomic(out, lambda p: p.write_bytes(body))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return out, len(frames), folder


def read_messages(path: str | Path) -> dict[str, Any]:
    """A messages document with its frame paths resolved against the JSON's folder (wherever it was moved)."""
    import json

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read a messages document ({type(e).__name__}: {e})") from None
    if not isinstance(doc, dict) or doc.get("kind") != MESSAGES_KIND or not isinstance(doc.get("messages"), list):
        raise ConfigError(f"{path}: not an earmark messages document")
    base = path.resolve().parent

    def fix(node: Any) -> Any:  # every frame reference "<stem>_frames/<time>s.jpg", wherever the family puts it
        if isinstance(node, dict):
            return {k: fix(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(x) for x in node]
        if isinstance(node, str) and _FRAME_REF.match(node):
            return str(base / node)
        return node

    doc["messages"] = fix(doc["messages"])
    return doc
