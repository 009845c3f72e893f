"""VLM handoff: message builders, audio-triggered prompts, and a tiny random Qwen2.5-VL loaded from disk."""

from __future__ import annotations

import json

import numpy as np
import pytest

import earmark
from earmark.cli import main
from earmark.sinks.prompts import audio_prompt
from earmark.sinks.vlm import (
    QwenVL,
    image_refs,
    internvl_prompt,
    openai_messages,
    qwen_messages,
    qwen_patchify,
)
from earmark.types import clock
from tiny_models import QWEN_SPECIAL, QWEN_SPECIAL_BASE, word_tokenizer

torch = pytest.importorskip("torch", reason="the VLM handoff test needs the [vlm] extra")
transformers = pytest.importorskip("transformers", reason="the VLM handoff test needs the [vlm] extra")

SPECIAL = QWEN_SPECIAL


@pytest.fixture(scope="module")
def indexed(events_mp4):
    tl = earmark.index(events_mp4)
    return earmark.IndexResult(earmark.info(events_mp4), tl, tuple(earmark.anchors(tl, k=2)),
                               earmark.AnchorConfig(k=2).to_dict())


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    """A one-layer Qwen2.5-VL with random weights, a word-level tokenizer and the PIL image processor, saved to a
    folder and loaded back through ``QwenVL.from_pretrained`` (the real loading code, no network)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    d = tmp_path_factory.mktemp("tiny-qwen")
    words = ["[UNK]", "<t=", "s>", "user", "assistant", "system", "You", "are", "a", "helpful", "what", "happens"]
    word_tokenizer(d, words, special=SPECIAL, special_base=QWEN_SPECIAL_BASE, punctuation=False, pad="[UNK]")
    torch.manual_seed(0)
    cfg = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=8192,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]}),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, fullatt_block_indexes=[0],
                           window_size=112),
        image_token_id=QWEN_SPECIAL_BASE + 4, video_token_id=QWEN_SPECIAL_BASE + 5,
        vision_start_token_id=QWEN_SPECIAL_BASE + 2, vision_end_token_id=QWEN_SPECIAL_BASE + 3)
    Qwen2_5_VLForConditionalGeneration(cfg).save_pretrained(d)
    Qwen2VLImageProcessorPil(min_pixels=3136, max_pixels=12845056).save_pretrained(d)
    return QwenVL.from_pretrained(d)


def frames_for(indexed, model, budget, strategy="anchored"):
    plan = earmark.plan(indexed, model, budget, strategy, k=2, frames=8, upscale=True)  # 64x48 test media
    return plan, list(earmark.extract(indexed.info.path, plan))


def test_qwen_image_mode_through_the_real_processor(tiny_qwen, indexed):
    plan, frames = frames_for(indexed, "qwen2.5-vl", 8 * 60)
    assert len({(f.planned.width, f.planned.height) for f in frames}) > 1  # mixed sizes: the point
    inputs = tiny_qwen.inputs(frames, plan, "what happens")
    assert tiny_qwen.visual_tokens(inputs) == plan.total_tokens
    # The model is shown each frame's real presentation time, in order.
    shown = [float(x.split("s>")[0]) for x in inputs["text"].split("<t=")[1:]]
    assert shown == [round(f.pts_s, 2) for f in frames]
    # Greedy decoding from the same frames: the same answer, at most the 4 new tokens asked for.
    text = tiny_qwen.generate(frames, plan, "what happens", max_new_tokens=4)
    assert text == tiny_qwen.generate(frames, plan, "what happens", max_new_tokens=4)
    assert len(tiny_qwen.tokenizer(text, add_special_tokens=False)["input_ids"]) <= 4


def test_qwen_video_mode_through_our_patchify(tiny_qwen, indexed):
    plan, frames = frames_for(indexed, "qwen2.5-vl-video", 4 * 300)
    inputs = tiny_qwen.inputs(frames, plan, "what happens")
    assert tiny_qwen.visual_tokens(inputs) == plan.total_tokens
    grids = inputs["video_grid_thw"].tolist()
    assert len(grids) == len(frames) // 2 and all(g[0] == 1 for g in grids)
    assert inputs["pixel_values_videos"].shape == (sum(g[0] * g[1] * g[2] for g in grids), 3 * 2 * 14 * 14)
    with torch.no_grad():
        out = tiny_qwen.model.generate(**{k: v for k, v in inputs.items() if k != "text"}, max_new_tokens=3,
                                       do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 3


def test_patchify_matches_the_image_processor_layout():
    """One image duplicated to two frames = what the Qwen2-VL image processor does for images."""
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    proc = Qwen2VLImageProcessorPil(min_pixels=3136, max_pixels=12845056)
    img = np.random.default_rng(0).integers(0, 256, (56, 84, 3), dtype=np.uint8)
    ref = proc(images=[Image.fromarray(img)], return_tensors="np")
    ours, grid = qwen_patchify([img, img], proc.image_mean, proc.image_std)
    assert list(ref["image_grid_thw"][0]) == list(grid)
    np.testing.assert_allclose(ours, ref["pixel_values"], atol=1e-5)


def test_builders_carry_real_times_and_sizes(indexed, tmp_path):
    plan, frames = frames_for(indexed, "qwen2.5-vl", 8 * 60)
    refs = image_refs(frames, tmp_path)
    msgs = qwen_messages(frames, plan, "What happens?", refs, prompt="P.")
    content = msgs[0]["content"]
    images = [c for c in content if c["type"] == "image"]
    assert [(c["resized_width"], c["resized_height"]) for c in images] == [(f.planned.width, f.planned.height)
                                                                           for f in frames]
    assert [c["text"] for c in content if c["type"] == "text"][:2] == [f"<t={frames[0].pts_s:.2f}s>",
                                                                      f"<t={frames[1].pts_s:.2f}s>"]
    assert content[-1]["text"] == "P. What happens?"
    vplan, vframes = frames_for(indexed, "qwen2.5-vl-video", 4 * 300)
    vmsgs = qwen_messages(vframes, vplan, "Q", image_refs(vframes, None))
    videos = [c for c in vmsgs[0]["content"] if c["type"] == "video"]
    assert len(videos) == 4 and all(len(v["video"]) == 2 for v in videos)
    iplan, iframes = frames_for(indexed, "internvl", 8 * 256)
    iv = internvl_prompt(iframes, iplan, "Q", image_refs(iframes, None))
    assert iv["question"].startswith(f"Frame-1 (t={iframes[0].pts_s:.2f}s): <image>")
    assert sum(n * 256 for n in iv["num_patches_list"]) == iplan.total_tokens
    oa = openai_messages(frames, plan, "Q")
    urls = [c["image_url"]["url"] for c in oa[0]["content"] if c["type"] == "image_url"]
    assert len(urls) == len(frames) and all(u.startswith("data:image/jpeg;base64,") for u in urls)


def test_audio_prompt_points_at_anchors(indexed):
    plan = earmark.plan(indexed, "vit-p16", 196 * 12, "anchored", k=2, upscale=True)
    text = audio_prompt(plan)
    top = max(plan.anchors, key=lambda a: a.score)
    assert f"A sound event at {clock(top.start_s, 0)}–{clock(top.end_s, 0)}" in text
    assert "For contrast, the frame at" in text
    labelled = audio_prompt(plan, labels=[["dog"], ["door", "knock"]], contrast=False)
    assert "A sound of dog at" in labelled and "It could be door or knock" in labelled
    assert "contrast" not in labelled
    custom = audio_prompt(plan, templates={"event": "EVENT {time}."})
    assert f"EVENT {clock(top.time_s, 0)}." in custom
    uniform = earmark.plan(indexed, "vit-p16", 196 * 12, "uniform", upscale=True)
    assert audio_prompt(uniform) == "Nothing stood out in the audio; the frames are spread evenly."


def test_cli_prompt_writes_messages_and_images(events_mp4, tmp_path, capsys):
    out = tmp_path / "messages.json"
    assert main(["prompt", str(events_mp4), "--model", "qwen2.5-vl", "--budget", "400", "--question",
                 "What happens?", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    content = doc["messages"][0]["content"]
    images = [c["image"] for c in content if c["type"] == "image"]
    assert len(images) == 12 and all((out.parent / p).exists() for p in images)
    assert "A sound event at" in content[-1]["text"] and content[-1]["text"].endswith("What happens?")
    assert doc["plan"]["total_tokens"] == sum(f["tokens"] for f in doc["plan"]["frames"])
    inline = tmp_path / "inline.json"
    assert main(["prompt", str(events_mp4), "--model", "gpt-4o", "--budget", "400", "--question", "Q", "--out",
                 str(inline), "--inline", "--no-audio-prompt"]) == 1
    assert "unknown model 'gpt-4o'" in capsys.readouterr().err
    assert main(["prompt", str(events_mp4), "--model", "vit-p16", "--budget", "1000", "--question", "Q", "--out",
                 str(inline), "--inline", "--no-audio-prompt"]) == 0
    doc = json.loads(inline.read_text())
    assert doc["messages"][0]["content"][-1]["text"] == "Q"
    assert all(c["image_url"]["url"].startswith("data:image/jpeg") for c in doc["messages"][0]["content"]
               if c["type"] == "image_url")


def test_model_folder_errors(tmp_path):
    with pytest.raises(earmark.ConfigError, match="not a model folder"):
        QwenVL.from_pretrained(tmp_path)
    # A folder of another kind, or one that brings its own code (auto_map), is refused before anything loads.
    marker = tmp_path / "ran.txt"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    for cfg, msg in (({"model_type": "evil", "auto_map": {"AutoModelForImageTextToText": "evil.Evil"}},
                      r"a 'evil' checkpoint; a Qwen2/2.5/3-VL checkpoint is one of qwen2_vl, qwen2_5_vl, qwen3_vl "
                      r"\(loaded by "
                      r"transformers' own classes, never the folder's code\)"),
                     ({"auto_map": {"AutoModelForImageTextToText": "evil.Evil"}}, "a None checkpoint")):
        (tmp_path / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(earmark.ConfigError, match=msg):
            QwenVL.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(earmark.ConfigError, match="config.json: not valid JSON"):
        QwenVL.from_pretrained(tmp_path)
    assert not marker.exists()
