"""Drop-in handoffs (earmark.integrations): real time and real token counts through the runtimes' own code.

Qwen2.5-VL and Qwen3-VL go through transformers' own processors (tokenizer, PIL image processor, video processor,
processor) and tiny random models built from their configs, saved to a temp dir and loaded back (no network, no
remote code). torchvision cannot be installed here (ENVIRONMENT.md), and transformers' video processors call two of
its functions even when nothing is resized; the ``torchvision_stand_in`` fixture provides exactly those two
(``grayscale_to_rgb`` on RGB input, the identity; ``normalize``: ``(x - mean) / std`` per channel), registers the
video processor base class that transformers hides without torchvision, and passes ``do_resize=False`` (as
qwen-vl-utils' README does), while the test checks with transformers' own ``smart_resize`` that resizing would keep
every planned size.
"""

from __future__ import annotations

import json
import re
import sys
import types
from typing import ClassVar

import numpy as np
import pytest

import earmark
from earmark.errors import ConfigError
from earmark.integrations.common import EarmarkOptions
from earmark.integrations.qwen import (
    CLOCK_HZ,
    expand_messages,
    frame_runs,
    process_vision_info,
    run_metadata,
    sampled_fps,
)
from earmark.media.write import VideoSpec, write_media
from earmark.synth import Event, mix
from earmark.types import Frame, PlannedFrame
from tiny_models import QWEN_SPECIAL, QWEN_SPECIAL_BASE, text_image_model, word_tokenizer

torch = pytest.importorskip("torch", reason="the handoff tests need the [vlm] extra")
transformers = pytest.importorskip("transformers", reason="the handoff tests need the [vlm] extra")

SR = 48_000
EVENTS = (Event("tone", 2.0, 3.0), Event("noise", 6.0, 7.0), Event("chirp", 9.0, 10.0))
SPECIAL, BASE = QWEN_SPECIAL, QWEN_SPECIAL_BASE
# Qwen's chat template, reduced to what the tests need: text, one placeholder per image / video entry.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="module")
def hd_video(tmp_path_factory):
    """1280x720 H.264 at 5 fps + AAC, 12 s, a tone, a noise burst and a chirp at seconds 2, 6, 9: large enough that
    Qwen's video mode (128 to 768 tokens a frame pair) has room for anchors larger than the context."""
    path = tmp_path_factory.mktemp("integrations") / "hd.mp4"
    write_media(path, 12.0, mix(12.0, list(EVENTS), sr=SR, snr_db=20.0, seed=1), SR,
                video=VideoSpec(width=1280, height=720, fps=5.0, gop=5))
    return path


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory):
    """Variable frame rate: frames at irregular times (no frame rate puts them on a grid)."""
    times = tuple(round(0.137 * i + 0.011 * (i % 3), 3) for i in range(80))
    path = tmp_path_factory.mktemp("integrations") / "vfr.mp4"
    write_media(path, 11.0, mix(11.0, list(EVENTS), sr=SR, snr_db=20.0, seed=2), SR,
                video=VideoSpec(width=1280, height=720, frame_times=times))
    return path


@pytest.fixture(scope="module")
def torchvision_stand_in():
    """The two torchvision functions transformers' video processors call on already-sized RGB frames (see the
    module docstring), installed for this module only."""
    import transformers.image_processing_backends as backends
    import transformers.models.qwen3_vl.video_processing_qwen3_vl as q3
    import transformers.video_processing_utils as vpu

    def grayscale_to_rgb(video):
        assert video.shape[-3] == 3, "the stand-in only passes RGB frames through"
        return video

    def normalize(x, mean, std, inplace=False):
        mean = torch.as_tensor(mean, dtype=x.dtype).view(-1, 1, 1)
        std = torch.as_tensor(std, dtype=x.dtype).view(-1, 1, 1)
        return (x - mean) / std

    functional = types.ModuleType("torchvision.transforms.v2.functional")
    functional.grayscale_to_rgb, functional.normalize = grayscale_to_rgb, normalize
    names = ["torchvision", "torchvision.transforms", "torchvision.transforms.v2",
             "torchvision.transforms.v2.functional"]
    mods = {n: types.ModuleType(n) for n in names[:-1]} | {names[-1]: functional}
    mods["torchvision"].transforms = mods["torchvision.transforms"]
    mods["torchvision.transforms"].v2 = mods["torchvision.transforms.v2"]
    mods["torchvision.transforms.v2"].functional = functional
    with pytest.MonkeyPatch.context() as mp:
        for n, m in mods.items():
            mp.setitem(sys.modules, n, m)
        for module in (vpu, q3, backends):
            mp.setattr(module, "tvF", functional, raising=False)
        import transformers.processing_utils as pu

        mp.setattr(pu.transformers_module, "VideoProcessorMixin", vpu.VideoProcessorMixin, raising=False)
        import importlib

        # Imported by its file's module name (the package's lazy attribute hands out a torchvision placeholder).
        yield importlib.import_module("transformers.models.qwen2_vl.video_processing_qwen2_vl")
        sys.modules.pop("transformers.models.qwen2_vl.video_processing_qwen2_vl", None)


def _tokenizer(d):
    from transformers import PreTrainedTokenizerFast

    # Digits and punctuation apart, so that Qwen3-VL's "<12.5 seconds>" reads back from the token ids.
    word_tokenizer(d, ["[UNK]", "user", "assistant", "what", "happens", "seconds", "<", ">", ".", *"0123456789"],
                   special=SPECIAL, special_base=BASE, digits=True, pad="[UNK]")
    return PreTrainedTokenizerFast.from_pretrained(d, local_files_only=True)


TOKEN_IDS = dict(image_token_id=BASE + 4, video_token_id=BASE + 5, vision_start_token_id=BASE + 2,
                 vision_end_token_id=BASE + 3)


@pytest.fixture(scope="module")
def qwen25(tmp_path_factory, torchvision_stand_in):
    """A one-layer Qwen2.5-VL with random weights and transformers' Qwen2.5-VL processor (the released limits:
    3136 to 12845056 pixels, 14 px patches, tokens_per_second 2), saved and loaded back from a folder."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    d = tmp_path_factory.mktemp("tiny-qwen25")
    tok = _tokenizer(d)
    torch.manual_seed(0)
    cfg = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=8192,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]}),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, fullatt_block_indexes=[0],
                           window_size=112, tokens_per_second=2), **TOKEN_IDS)
    Qwen2_5_VLForConditionalGeneration(cfg).save_pretrained(d)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(d, local_files_only=True).eval()
    limits = dict(min_pixels=3136, max_pixels=12845056)
    proc = Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessorPil(**limits), tokenizer=tok,
                               video_processor=torchvision_stand_in.Qwen2VLVideoProcessor(
                                   **limits, cap_pixels_per_frame=True),
                               chat_template=CHAT_TEMPLATE)
    return model, proc


def _messages(video, **options):
    return [{"role": "user", "content": [{"type": "video", "video": str(video), "earmark": options},
                                         {"type": "text", "text": "what happens"}]}]


def _runs_of(messages, kind="video"):
    return [c for c in messages[0]["content"] if c["type"] == kind]


def _temporal_positions(model, inputs):
    """Per video: the temporal mRoPE position of each of its temporal patches, as the model computes them."""
    pos, _ = model.model.get_rope_index(inputs["input_ids"], inputs["mm_token_type_ids"],
                                        video_grid_thw=inputs["video_grid_thw"],
                                        second_per_grid_ts=inputs.get("second_per_grid_ts"),
                                        attention_mask=inputs["attention_mask"])
    ids = inputs["input_ids"][0]
    video_pos = pos[0, 0][ids == TOKEN_IDS["video_token_id"]].tolist()
    out, at = [], 0
    for t, h, w in inputs["video_grid_thw"].tolist():
        per = h * w // 4
        out.append([video_pos[at + i * per] for i in range(t)])
        assert len(set(video_pos[at:at + t * per])) == t  # every token of a patch shares its temporal position
        at += t * per
    return out


@pytest.mark.parametrize("strategy", ["anchored", "dense-at-anchors"])
def test_qwen25_non_uniform_plans_keep_real_time_in_mrope_positions(qwen25, hd_video, strategy):
    model, proc = qwen25
    messages = _messages(hd_video, budget=1536, model="qwen2.5-vl-video", strategy=strategy)
    plans = expand_messages(messages)
    assert len(plans) == 1 and plans[0].total_tokens == 1512
    runs = _runs_of(messages)
    sizes = {(r["resized_width"], r["resized_height"]) for r in runs}
    if strategy == "anchored":  # larger frame pairs at the anchors: one video per run of one size and spacing
        assert len(runs) == 6 and len(sizes) > 1
    else:  # one size, denser at the anchors: one video per run of even spacing, some with several patches
        assert len(runs) == 5 and len(sizes) == 1 and max(len(r["video"]) for r in runs) == 4
    images, videos, kw = process_vision_info(messages, return_video_kwargs=True, return_video_metadata=True)
    assert images is None and kw == {"do_sample_frames": False}
    videos, metadata = map(list, zip(*videos))
    text = proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = proc(text=[text], videos=videos, video_metadata=metadata, do_resize=False, return_tensors="pt", **kw)

    # Visual tokens: exactly the plan's.
    assert int((inputs["input_ids"] == TOKEN_IDS["video_token_id"]).sum()) == plans[0].total_tokens
    # Sizes the processor would keep: transformers' own smart_resize maps every planned size to itself.
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import smart_resize

    vp = proc.video_processor
    for v in videos:
        h, w = v.shape[-2:]
        assert smart_resize(h, w, 28, vp.size["shortest_edge"], vp.size["longest_edge"]) == (h, w)
    # Each video's sampled rate is its frames' real rate, so the model's temporal positions step by real time.
    tps = model.config.vision_config.tokens_per_second
    positions = _temporal_positions(model, inputs)
    for run, spg, pos in zip(runs, inputs["second_per_grid_ts"].tolist(), positions):
        times = run["earmark_times_s"]
        rate = (len(times) - 1) / (times[-1] - times[0])
        assert spg == pytest.approx(2 / rate, rel=1e-3)
        for i, p in enumerate(pos):
            assert abs((p - pos[0]) - tps * (times[2 * i] - times[0])) < 1  # within one position (0.5 s)
    # ... and each video is preceded by a tag with its real start and end.
    tags = re.findall(r"<t=([\d.]+)-([\d.]+)s>", text)
    assert [(float(a), float(b)) for a, b in tags] == [(round(r["earmark_times_s"][0], 2),
                                                        round(r["earmark_times_s"][-1], 2)) for r in runs]
    # The real times are the decoded frames' presentation times: on this 5 fps file, multiples of 0.2 s.
    all_times = [t for r in runs for t in r["earmark_times_s"]]
    assert all_times == sorted(all_times) and all(abs(t * 5 - round(t * 5)) < 1e-6 for t in all_times)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=2, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 2


def test_qwen25_uniform_plan_is_one_video_like_qwen_vl_utils(qwen25, hd_video):
    model, proc = qwen25
    messages = _messages(hd_video, budget=1536, model="qwen2.5-vl-video", strategy="uniform")
    images, videos, kw = process_vision_info(messages, return_video_kwargs=True, return_video_metadata=True)
    assert len(videos) == 1
    video, meta = videos[0]
    assert video.dtype == torch.float32 and video.shape == (12, 3, 336, 588)
    assert meta["fps"] == CLOCK_HZ and sampled_fps(meta) == pytest.approx(1.0)
    text = proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = proc(text=[text], videos=[video], video_metadata=[meta], do_resize=False, return_tensors="pt", **kw)
    assert inputs["video_grid_thw"].tolist() == [[6, 24, 42]]
    assert inputs["second_per_grid_ts"].tolist() == pytest.approx([2.0])
    pos = _temporal_positions(model, inputs)[0]
    assert [p - pos[0] for p in pos] == [0, 4, 8, 12, 16, 20]  # 2 s a patch at 2 positions a second


@pytest.fixture(scope="module")
def qwen3(tmp_path_factory, torchvision_stand_in):
    """A one-layer Qwen3-VL with random weights and transformers' Qwen3-VL processor with the released limits
    (16 px patches; images 65536 to 16777216 pixels; videos 4096 to 25165824 pixels a clip)."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    d = tmp_path_factory.mktemp("tiny-qwen3")
    tok = _tokenizer(d)
    torch.manual_seed(0)
    cfg = Qwen3VLConfig(
        text_config=dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=8192,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6],
                                          "mrope_interleaved": True}),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                           patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=64,
                           deepstack_visual_indexes=[0]), **TOKEN_IDS)
    Qwen3VLForConditionalGeneration(cfg).save_pretrained(d)
    model = Qwen3VLForConditionalGeneration.from_pretrained(d, local_files_only=True).eval()
    proc = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessorPil(patch_size=16, merge_size=2,
                                                 size={"shortest_edge": 65536, "longest_edge": 16777216}),
        tokenizer=tok, video_processor=Qwen3VLVideoProcessor(
            patch_size=16, merge_size=2, temporal_patch_size=2, cap_pixels_per_frame=True,
            size={"shortest_edge": 4096, "longest_edge": 25165824}),
        chat_template=CHAT_TEMPLATE)
    return model, proc


def _qwen3_inputs(proc, messages):
    images, videos, kw = process_vision_info(messages, return_video_kwargs=True, return_video_metadata=True,
                                             image_patch_size=16)
    videos, metadata = map(list, zip(*videos))
    text = proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return proc(text=[text], videos=videos, video_metadata=metadata, do_resize=False, return_tensors="pt", **kw)


@pytest.mark.parametrize(("strategy", "n_videos"), [("dense-at-anchors", 1), ("anchored", 5)])
def test_qwen3_one_text_timestamp_per_patch_at_real_times(qwen3, hd_video, strategy, n_videos):
    model, proc = qwen3
    messages = _messages(hd_video, budget=1536, model="qwen3-vl-video", strategy=strategy)
    plans = expand_messages(messages, image_patch_size=16)
    runs = _runs_of(messages)
    # Non-uniform frames of one size are one video (its native form); only a change of size starts another.
    assert len(runs) == n_videos
    assert not [c for c in messages[0]["content"] if c["type"] == "text" and c["text"].startswith("<t=")]
    inputs = _qwen3_inputs(proc, messages)
    assert int((inputs["input_ids"] == TOKEN_IDS["video_token_id"]).sum()) == plans[0].total_tokens
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize

    vp = proc.video_processor
    for r in runs:  # the processor's own resize (per clip: frames x height x width) would keep every size
        h, w = r["resized_height"], r["resized_width"]
        assert smart_resize(len(r["video"]), h, w, 2, 32, vp.size["shortest_edge"], vp.size["longest_edge"]) == (h, w)
    text = proc.tokenizer.decode(inputs["input_ids"][0]).replace(" ", "")
    shown = [float(x) for x in re.findall(r"<([\d.]+)seconds>", text)]
    times = [t for r in runs for t in r["earmark_times_s"]]
    # Each temporal patch is announced at the mean real time of its two frames, in order, across every video.
    assert shown == [round((a + b) / 2, 1) for a, b in zip(times[::2], times[1::2])]
    assert len(shown) == len(times) // 2 == sum(t for t, _, _ in inputs["video_grid_thw"].tolist())
    if strategy == "dense-at-anchors":  # denser where the sound is: gaps near the events are shorter
        gaps = np.diff([(a + b) / 2 for a, b in zip(times[::2], times[1::2])])
        assert gaps.min() < 0.5 * gaps.max()
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=2, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 2


def test_metadata_keeps_real_times_on_a_variable_frame_rate_file(vfr_video):
    messages = _messages(vfr_video, budget=1536, model="qwen3-vl-video", strategy="dense-at-anchors")
    plans = expand_messages(messages, image_patch_size=16)
    _, videos = process_vision_info(messages, return_video_metadata=True, image_patch_size=16)
    (video, meta), = videos
    times = _runs_of(messages)[0]["earmark_times_s"]
    source = np.array(sorted(0.137 * i + 0.011 * (i % 3) for i in range(80)))
    # Every frame is a source frame (a VFR time no frame rate gives) and the metadata says its time to the ms.
    assert all(np.abs(source - t).min() < 1e-3 for t in times)
    assert [i / meta["fps"] for i in meta["frames_indices"]] == pytest.approx(times, abs=5e-4)
    assert video.shape[0] == len(times) == len(plans[0].frames)


def test_run_metadata_arithmetic():
    m = run_metadata([10.0, 10.5, 11.0, 11.5], 448, 252)
    assert m == {"fps": 1000.0, "frames_indices": [10000, 10500, 11000, 11500], "total_num_frames": 2000,
                 "duration": 2.0, "width": 448, "height": 252, "video_backend": "earmark"}
    assert sampled_fps(m) == 2.0  # Qwen2.5-VL: second_per_grid_ts = 2 / 2.0 = 1 s a temporal patch
    assert sampled_fps(run_metadata([3.0, 3.25], 28, 28)) == 4.0
    json.dumps(m)  # plain JSON: vLLM and transformers read it as a dict


def _frames(spec):
    """Frames from (time, width, group) triples (pictures are not needed to split runs)."""
    pixel = np.zeros((1, 1, 3), np.uint8)
    return [Frame(i, PlannedFrame(time_s=t, width=w, height=w // 2, tokens=0, group=g), t, pixel)
            for i, (t, w, g) in enumerate(spec)]


def test_frame_runs_split_where_one_video_cannot_hold_the_frames():
    pairs = [(0.0, 448, 0), (0.5, 448, 0), (1.0, 448, 1), (1.5, 448, 1),  # evenly spaced, one size
             (3.0, 448, 2), (3.5, 448, 2),                                # a gap: same size, uneven spacing
             (4.0, 896, 3), (4.5, 896, 3)]                                # a larger pair
    frames = _frames(pairs)
    assert [len(r.frames) for r in frame_runs(frames, "qwen2.5-vl")] == [4, 2, 2]
    assert [len(r.frames) for r in frame_runs(frames, "qwen3-vl")] == [6, 2]  # text times: spacing is free
    # Qwen3-VL's processor bounds a clip's frames x height x width: a longer run is cut where it would pass it.
    assert [len(r.frames) for r in frame_runs(frames, "qwen3-vl", max_clip_pixels=4 * 448 * 224)] == [4, 2, 2]
    run = frame_runs(frames, "qwen2.5-vl")[0]
    assert run.size == (448, 224) and run.sample_fps == pytest.approx(2.0)


def test_bad_options_are_one_clear_error(hd_video, tmp_path):
    def call(entry, **kw):
        process_vision_info([{"role": "user", "content": [entry]}], **kw)

    v = str(hd_video)
    cases = [
        ({"type": "video", "video": v, "earmark": {"budget": 512, "totl_pixels": 1}},
         r"messages\[0\]\.content\[0\]\.earmark: unknown earmark option 'totl_pixels'; valid: budget, model"),
        ({"type": "video", "video": v, "earmark": {"strategy": "uniform"}}, "need a budget"),
        ({"type": "video", "video": v, "earmark": {"budget": "lots"}}, "budget must be a positive number of tokens"),
        ({"type": "video", "video": v, "earmark": {"budget": 512, "k": True}}, "k must be an integer >= 0"),
        ({"type": "video", "video": v, "earmark": {"budget": 512, "model": "internvl"}}, "not a Qwen-VL model"),
        ({"type": "video", "video": v, "earmark": {"budget": 512, "model": "qwen9-vl"}}, "not a Qwen-VL model"),
        ({"type": "video", "video": "https://example.com/a.mp4", "earmark": {"budget": 512}}, "downloads nothing"),
        ({"type": "video", "video": str(tmp_path / "missing.mp4"), "earmark": {"budget": 512}}, "missing.mp4"),
        ({"type": "video", "video": v}, "has no earmark options"),
        ({"type": "image", "image": v, "earmark": {"budget": 512}}, "belong on a video entry"),
        ({"type": "video", "video": v, "earmark": {"budget": 10}}, "budget 10 tokens is too small"),
    ]
    for entry, message in cases:
        with pytest.raises(earmark.EarmarkError, match=message):
            call(entry)
    with pytest.raises(ConfigError, match="has 14 px patches, but process_vision_info was called with "
                                          "image_patch_size=16"):
        call({"type": "video", "video": v, "earmark": {"budget": 512, "model": "qwen2.5-vl-video"}},
             image_patch_size=16)
    assert EarmarkOptions.from_mapping({"budget": 64}).to_dict()["strategy"] == "anchored"


def test_image_mode_models_give_one_timed_image_per_frame(hd_video):
    messages = _messages(hd_video, budget=1536, model="qwen2.5-vl", strategy="anchored")
    plans = expand_messages(messages)
    images, videos = process_vision_info(messages)
    assert videos is None and len(images) == len(plans[0].frames)
    assert [im.size for im in images] == [(f.width, f.height) for f in plans[0].frames]
    tags = [c["text"] for c in messages[0]["content"] if c["type"] == "text"][:-1]
    assert tags == [f"<t={t:.2f}s>" for c in _runs_of(messages, "image") for t in c["earmark_times_s"]]
    # Expanded entries plan nothing twice: a second call returns the same inputs.
    again, _ = process_vision_info(messages)
    assert [np.asarray(a).tobytes() for a in again] == [np.asarray(a).tobytes() for a in images]


# ------------------------------------------------------------------------------------------------------- vLLM


@pytest.mark.parametrize("model", ["qwen2.5-vl-video", "qwen3-vl-video"])
def test_vllm_request_matches_the_processors_vllm_runs(qwen25, qwen3, hd_video, model):
    """vLLM's input schema built without vLLM: the request's videos go through the same transformers processor
    vLLM calls for Qwen-VL (one item and its metadata per placeholder), giving the plan's tokens and real times."""
    from earmark.integrations.vllm import VIDEO_PLACEHOLDER, request_and_plan

    req, plan = request_and_plan(hd_video, "what happens", {"budget": 1536, "model": model, "strategy": "anchored"})
    assert set(req) == {"prompt", "multi_modal_data", "mm_processor_kwargs"}
    items = req["multi_modal_data"]["video"]
    assert req["prompt"].count(VIDEO_PLACEHOLDER) == len(items) > 1
    assert req["mm_processor_kwargs"] == {"do_sample_frames": False}
    times = []
    for frames, meta in items:
        assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3
        assert meta["do_sample_frames"] is False and (meta["width"], meta["height"]) == frames.shape[2:0:-1]
        times += [i / meta["fps"] for i in meta["frames_indices"]]
    assert times == pytest.approx([f.time_s for f in plan.frames], abs=0.2)  # real pts: within a 5 fps frame
    _, proc = qwen3 if model.startswith("qwen3") else qwen25
    metadata = [{k: v for k, v in m.items() if k != "do_sample_frames"} for _, m in items]  # as vLLM passes them
    inputs = proc(text=[req["prompt"]], videos=[torch.from_numpy(f).permute(0, 3, 1, 2) for f, _ in items],
                  video_metadata=metadata, do_resize=False, do_sample_frames=False, return_tensors="pt")
    assert int((inputs["input_ids"] == TOKEN_IDS["video_token_id"]).sum()) == plan.total_tokens
    if model.startswith("qwen2.5"):
        rates = [(len(m["frames_indices"]) - 1) / ((m["frames_indices"][-1] - m["frames_indices"][0]) / 1000)
                 for _, m in items]
        assert inputs["second_per_grid_ts"].tolist() == pytest.approx([2 / r for r in rates], rel=1e-3)


def test_vllm_request_parses_with_vllms_own_classes(hd_video):
    pytest.importorskip("vllm", reason="vLLM is not installed here: its wheels bring their own CUDA torch, which would "
                                       "replace the project's pinned CPU torch (checked against transformers instead)")
    from vllm.multimodal.parse import MultiModalDataParser

    from earmark.integrations.vllm import request

    req = request(hd_video, "Q", {"budget": 1536, "model": "qwen3-vl-video"})
    items = MultiModalDataParser(video_needs_metadata=True).parse_mm_data(req["multi_modal_data"])
    assert items.get_count("video") == len(req["multi_modal_data"]["video"])


def test_vllm_refuses_image_mode_before_decoding(tmp_path):
    from earmark.integrations.vllm import request

    with pytest.raises(ConfigError, match="vLLM videos need a Qwen video model"):
        request(tmp_path / "never-read.mp4", "Q", {"budget": 512, "model": "qwen2.5-vl"})


# ----------------------------------------------------------------------------------------------------- InternVL
# InternVL's published dynamic_preprocess / find_closest_aspect_ratio (OpenGVLab/InternVL, README and
# internvl_chat), re-implemented here as the reference the plan's tiles must agree with.


def _find_closest_aspect_ratio(aspect_ratio, target_ratios, width, height, image_size):
    best_ratio_diff, best_ratio = float("inf"), (1, 1)
    area = width * height
    for ratio in target_ratios:
        ratio_diff = abs(aspect_ratio - ratio[0] / ratio[1])
        if ratio_diff < best_ratio_diff:
            best_ratio_diff, best_ratio = ratio_diff, ratio
        elif ratio_diff == best_ratio_diff and area > 0.5 * image_size * image_size * ratio[0] * ratio[1]:
            best_ratio = ratio
    return best_ratio


def _dynamic_preprocess(image, min_num=1, max_num=12, image_size=448, use_thumbnail=False):
    orig_width, orig_height = image.size
    target_ratios = sorted({(i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1)
                            for j in range(1, n + 1) if min_num <= i * j <= max_num}, key=lambda x: x[0] * x[1])
    ratio = _find_closest_aspect_ratio(orig_width / orig_height, target_ratios, orig_width, orig_height, image_size)
    target_width, target_height = image_size * ratio[0], image_size * ratio[1]
    blocks = ratio[0] * ratio[1]
    resized = image.resize((target_width, target_height))
    cols = target_width // image_size
    out = [resized.crop(((i % cols) * image_size, (i // cols) * image_size, (i % cols + 1) * image_size,
                         (i // cols + 1) * image_size)) for i in range(blocks)]
    if use_thumbnail and len(out) != 1:
        out.append(image.resize((image_size, image_size)))
    return out, (target_width, target_height)


def test_internvl_tiles_follow_the_plan_and_internvls_own_arithmetic(hd_video):
    from PIL import Image

    from earmark.integrations.internvl import IMAGENET_MEAN, IMAGENET_STD, load_video

    # Uniform: 12 frames of one tile. Anchored, same 12 tiles: 2x1 grids + thumbnail at the anchors (the largest
    # grid a 1280x720 source fills), fewer one-tile frames elsewhere.
    v = load_video(hd_video, {"budget": 12 * 256, "frames": 12, "strategy": "anchored"})
    frames = v.plan.frames
    assert sum(v.num_patches_list) * 256 == v.plan.total_tokens == 12 * 256
    assert v.num_patches_list == [1, 3, 1, 1, 1, 1, 3, 1]
    assert len(set(v.num_patches_list)) > 1  # the tile budget is shared unevenly: more where the sound points
    assert max(v.num_patches_list[i] for i, f in enumerate(frames) if f.role == "anchor") > min(v.num_patches_list)
    assert v.pixel_values.shape == (sum(v.num_patches_list), 3, 448, 448)
    source = Image.new("RGB", (1280, 720))
    extracted = {round(f.pts_s, 6): f for f in __import__("earmark").extract(hd_video, v.plan)}
    at = 0
    for f, n, max_num, t in zip(frames, v.num_patches_list, v.max_num, v.times_s):
        # InternVL, given the source picture and this frame's max_num, cuts the grid the plan sized the frame to.
        ref_tiles, target = _dynamic_preprocess(source, max_num=max_num, use_thumbnail=True)
        assert (len(ref_tiles), target) == (n, (f.width, f.height)) and n == f.tiles
        # ... and the same tiles, pixel for pixel, from the decoded frame (already at the target size).
        image = Image.fromarray(extracted[round(t, 6)].image)
        ref, _ = _dynamic_preprocess(image, max_num=max_num, use_thumbnail=True)
        ref = (np.stack([np.asarray(x) for x in ref]).astype(np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
        np.testing.assert_allclose(v.pixel_values[at:at + n].numpy(), ref.transpose(0, 3, 1, 2), atol=1e-5)
        at += n
    assert v.prefix.splitlines()[0] == f"Frame-1 (t={v.times_s[0]:.2f}s): <image>"
    assert all(abs(t * 5 - round(t * 5)) < 1e-6 for t in v.times_s)  # real pts of the 5 fps source
    with pytest.raises(ConfigError, match="planned with the internvl cost model"):
        load_video(hd_video, {"budget": 1024, "model": "qwen2.5-vl"})


# ------------------------------------------------------------------------------------------- README, executed


def _tiny_clip(d):
    """A CLIP with random weights and a word-level tokenizer, saved like a user's folder (the README's
    ``models/clip-vit-b32/``)."""
    text_image_model(d, "clip", ["[PAD]", "[BOS]", "[EOS]", "[UNK]", "when", "does", "the", "dog", "bark", "?"],
                     vocab_size=16, projection_dim=16)


class _VllmStandIn:
    """vLLM's ``LLM`` / ``SamplingParams`` as far as the README uses them: ``generate`` checks the request against
    vLLM's documented offline input schema (a prompt with one placeholder per video item; each item a uint8
    (T, H, W, 3) array and its metadata) and the ``limit_mm_per_prompt`` it was built with."""

    calls: ClassVar[list] = []

    class SamplingParams:
        def __init__(self, **kw):
            self.kw = kw

    class LLM:
        def __init__(self, model, limit_mm_per_prompt):
            self.limit = limit_mm_per_prompt

        def generate(self, req, params):
            from earmark.integrations.vllm import VIDEO_PLACEHOLDER

            videos = req["multi_modal_data"]["video"]
            assert set(req) == {"prompt", "multi_modal_data", "mm_processor_kwargs"}
            assert req["prompt"].count(VIDEO_PLACEHOLDER) == len(videos) <= self.limit["video"]
            for frames, meta in videos:
                assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3
                assert len(meta["frames_indices"]) == len(frames) and meta["fps"] > 0
            _VllmStandIn.calls.append(req)
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text="(stand-in answer)")])]


class _InternVLStandIn:
    """InternVL's ``model.chat`` (hub code, never run here): the tiles must add up and each frame must have its
    ``<image>`` placeholder."""

    def __init__(self):
        self.calls = []

    def chat(self, tokenizer, pixel_values, question, generation_config, num_patches_list):
        assert pixel_values.shape[1:] == (3, 448, 448) and pixel_values.shape[0] == sum(num_patches_list)
        assert question.count("<image>") == len(num_patches_list)
        self.calls.append((num_patches_list, question))
        return "(stand-in answer)"


def _readme_python_blocks(first: str, until: str) -> list[str]:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index(first)
    return re.findall(r"```python\n(.*?)```", text[start:text.index(until, start)], re.S)


@pytest.mark.slow  # 23 s on the shared 2-core machine (two generate calls, four indexes)
def test_readme_runtime_snippets_run(qwen25, qwen3, hd_video, tmp_path, monkeypatch):
    """The README's question and runtime snippets, as printed, with tiny random models (``clip.mp4`` is the 12 s
    test clip; InternVL's snippet runs without ``.cuda()``, on the CPU)."""
    blocks = _readme_python_blocks("### Plans for a question", "### Highlights")
    assert len(blocks) == 5
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.mp4").symlink_to(hd_video)
    _tiny_clip(tmp_path / "models" / "clip-vit-b32")
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=_VllmStandIn.LLM,
                                                                  SamplingParams=_VllmStandIn.SamplingParams))
    _VllmStandIn.calls.clear()
    internvl = _InternVLStandIn()
    for code in blocks:
        ns: dict = {}
        if "process_vision_info" in code:
            model, proc = qwen3 if '"qwen3-vl-video"' in code else qwen25
            ns.update(model=model, processor=proc)
        if "internvl" in code:
            ns.update(model=internvl, tokenizer=None, generation_config={}, torch=torch)
            code = code.replace(".cuda()", "")
        exec(compile(code, "README.md", "exec"), ns)
        if "condition_on_question" in code:
            assert ns["p"].config["question"]["text"] == "when does the dog bark?" and ns["p"].total_tokens <= 640
        if "process_vision_info" in code:
            n_video = int((ns["inputs"]["input_ids"] == TOKEN_IDS["video_token_id"]).sum())
            assert n_video > 0 and isinstance(ns["answer"], str)
            if "question" in ns:  # planned for the question: the plan's tokens, as without one, within the budget
                assert n_video <= 2048
    assert len(_VllmStandIn.calls) == 1 and len(internvl.calls) == 1
