"""Token-cost models: the seed protocol's numbers, Qwen's resize rules and released limits, InternVL tiling."""

from __future__ import annotations

import ast
import contextlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from earmark.budget.costs import (
    _PROCESSOR_DEFAULTS,
    QWEN2_VL_LIMITS,
    QWEN3_VL_LIMITS,
    QWEN25_VL_LIMITS,
    QWEN_VIDEO_MAX_PIXELS,
    QWEN_VIDEO_MIN_PIXELS,
    CustomCost,
    Level,
    cost_model,
    qwen_limits,
    qwen_video_max_pixels,
    qwen_video_nframes,
    smart_resize,
)
from earmark.errors import ConfigError, UnknownNameError


def test_seed_protocol_vit_p16():
    m = cost_model("vit-p16")
    assert [m.tokens(s, s) for s in (112, 224, 448)] == [49, 196, 784]
    assert 10 * m.tokens(224, 224) == 2 * m.tokens(448, 448) + 8 * m.tokens(112, 112) == 1960


def test_seed_protocol_qwen25_image_mode():
    m = cost_model("qwen2.5-vl")
    assert [m.tokens(s, s) for s in (112, 224, 448)] == [16, 64, 256]
    assert 10 * m.tokens(224, 224) == 2 * m.tokens(448, 448) + 8 * m.tokens(112, 112) == 640


def test_vit_any_patch_and_unknown_model():
    assert cost_model("vit-p14").tokens(224, 224) == 256
    assert cost_model("vit-p8").tokens(64, 64) == 64
    with pytest.raises(UnknownNameError, match=r"unknown model 'gpt-9'; valid models: internvl, llava-onevision"):
        cost_model("gpt-9")


@pytest.mark.parametrize("typed,name", [
    ("Qwen2.5-VL", "qwen2.5-vl"), ("Qwen/Qwen2.5-VL-7B-Instruct", "qwen2.5-vl"),
    ("qwen2_5_vl-video", "qwen2.5-vl-video"),
    ("Qwen2-VL-2B-Instruct", "qwen2-vl"), ("QWEN3-VL", "qwen3-vl"), ("Qwen/Qwen3-VL-8B-Instruct", "qwen3-vl"),
    ("OpenGVLab/InternVL3-8B", "internvl"), ("InternVL2_5-4B", "internvl"), ("VIT-P16", "vit-p16"),
    ("llava-hf/llava-onevision-qwen2-7b-ov-hf", "llava-onevision"), ("openai/clip-vit-base-patch32", "vit-p32")])
def test_model_names_are_read_as_users_type_them(typed, name):
    model = cost_model(typed)
    assert model.name == name  # plans record the registered name
    assert model.tokens(448, 448) == cost_model(name).tokens(448, 448)


def test_a_mistyped_model_name_is_still_unknown():
    with pytest.raises(UnknownNameError, match=r"unknown model 'qwen4-vl'"):
        cost_model("Qwen4-VL")
    with pytest.raises(UnknownNameError, match=r"unknown model 'intern-vl-x'"):
        cost_model("Intern-VL-x")


@pytest.mark.parametrize("hw,expected", [((480, 640), (476, 644)), ((224, 224), (224, 224)), ((28, 28), (56, 56)),
                                         ((1080, 1920), (1092, 1932)), ((100, 100), (112, 112))])
def test_smart_resize_known_values(hw, expected):
    """Values from ENVIRONMENT.md (transformers' PIL smart_resize) and worked by hand from qwen-vl-utils' rule."""
    assert smart_resize(*hw) == expected


@given(st.integers(8, 4000), st.integers(8, 4000))
def test_smart_resize_invariants(h, w):
    if max(h, w) / min(h, w) > 200:
        with pytest.raises(ConfigError, match="aspect ratio"):
            smart_resize(h, w)
        return
    rh, rw = smart_resize(h, w)
    assert rh % 28 == 0 and rw % 28 == 0
    assert rh * rw <= 16384 * 28 * 28 or min(rh, rw) == 28
    assert rh * rw >= 4 * 28 * 28
    if min(rh, rw) >= 4 * 28:  # aspect kept up to rounding (sides clamped to 28 px cannot keep it)
        assert abs(math.log((rh / rw) / (h / w))) < 0.3


def test_smart_resize_matches_transformers_when_installed():
    tf = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl",
                             reason="transformers comes with the [vlm] extra")
    for h in (50, 112, 224, 333, 480, 720, 1080, 2160):
        for w in (64, 112, 224, 500, 640, 1280, 1920, 3840):
            if max(h, w) / min(h, w) <= 200:
                # Qwen2.5-VL's released preprocessor_config.json: min_pixels 3136, max_pixels 12845056.
                assert smart_resize(h, w) == tuple(tf.smart_resize(h, w, factor=28, min_pixels=3136,
                                                                   max_pixels=12845056))


def test_qwen_tokens_match_the_transformers_image_processor():
    """``image_grid_thw`` of the real (PIL) Qwen2-VL image processor is the truth for image-mode tokens."""
    tf = pytest.importorskip("transformers", reason="transformers comes with the [vlm] extra")
    from PIL import Image

    proc = tf.Qwen2VLImageProcessorPil(min_pixels=3136, max_pixels=12845056, patch_size=14, merge_size=2)
    model = cost_model("qwen2.5-vl")
    for w, h in [(224, 224), (448, 448), (112, 112), (640, 480), (1280, 720), (333, 97), (1920, 1080), (90, 1600)]:
        grid = proc(images=[Image.new("RGB", (w, h))], return_tensors="np")["image_grid_thw"][0]
        assert model.tokens(w, h) == int(grid.prod()) // 4, (w, h)
        lw, lh = model.legal_size(w, h)
        assert (lh // 14, lw // 14) == (int(grid[1]), int(grid[2]))


def test_qwen_video_rules():
    # 16 frames over a 12 k-token budget: per-frame max = total / n * 2, clamped to [1.05 min, VIDEO_MAX].
    total = 12_000 * 28 * 28
    assert qwen_video_max_pixels(16, total) == QWEN_VIDEO_MAX_PIXELS
    assert qwen_video_max_pixels(1000, total) == int(QWEN_VIDEO_MIN_PIXELS * 1.05)
    assert qwen_video_max_pixels(100, total) == int(total / 100 * 2)
    assert [qwen_video_nframes(n) for n in (1, 2, 3, 5, 10)] == [2, 2, 4, 4, 10]
    video = cost_model("qwen2.5-vl-video")
    # Video min pixels (128*28*28) lift small frames: 112 * sqrt(8) = 316.8 -> ceil to 28 -> 336.
    assert video.legal_size(112, 112) == (336, 336)
    assert video.tokens(112, 112) == 144
    assert video.tokens(448, 448) == 256
    assert cost_model("qwen3-vl").tokens(448, 448) == 196  # 32 px per token


def test_internvl_tiling():
    m = cost_model("internvl")
    assert (m.grid(448, 448), m.tiles(448, 448), m.tokens(448, 448)) == ((1, 1), 1, 256)
    assert m.tokens(112, 112) == 256  # below one tile saves nothing
    assert (m.grid(1280, 720), m.tiles(1280, 720)) == ((4, 2), 9)  # 8 tiles + thumbnail
    assert (m.grid(896, 448), m.tiles(896, 448)) == ((2, 1), 3)
    assert m.legal_size(896, 448) == (896, 448)


def test_fixed_and_custom():
    assert cost_model("llava-onevision").tokens(1920, 1080) == 196
    c = CustomCost(lambda w, h: (w // 32) * (h // 32))
    assert c.tokens(320, 240) == 70
    with pytest.raises(ConfigError, match="custom cost model returned -1 tokens"):
        CustomCost(lambda w, h: -1).tokens(10, 10)


# ------------------------------------------------ Qwen limits: true to the released processors

# (width, height) of frames people hand a Qwen model: tiny, odd aspect, the seed sizes, 16:9 video, 4K.
FRAME_TABLE = [(112, 112), (84, 56), (224, 224), (256, 256), (448, 448), (640, 360), (640, 480), (1280, 720),
               (1932, 1092), (333, 97), (90, 1600), (3840, 2160)]
# Released configs, as the public model repositories ship them (ENVIRONMENT.md, "Released processor limits").
QWEN3_IMAGE_CONFIG = {"size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": 16,
                      "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5],
                      "image_std": [0.5, 0.5, 0.5], "processor_class": "Qwen3VLProcessor",
                      "image_processor_type": "Qwen2VLImageProcessorFast"}
QWEN3_VIDEO_CONFIG = {"size": {"longest_edge": 25165824, "shortest_edge": 4096}, "patch_size": 16,
                      "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5],
                      "image_std": [0.5, 0.5, 0.5], "fps": 2, "min_frames": 4, "max_frames": 768,
                      "processor_class": "Qwen3VLProcessor", "video_processor_type": "Qwen3VLVideoProcessor"}
QWEN25_IMAGE_CONFIG = {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
                       "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
                       "image_std": [0.26862954, 0.26130258, 0.27577711],
                       "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor"}


def processor_tokens(proc, w: int, h: int) -> tuple[tuple[int, int], int]:
    """(resized width, height) and visual tokens of one w x h image through a transformers image processor."""
    from PIL import Image

    grid = proc(images=[Image.new("RGB", (w, h))], return_tensors="np")["image_grid_thw"][0]
    patch = proc.patch_size
    return (int(grid[2]) * patch, int(grid[1]) * patch), int(grid.prod()) // proc.merge_size ** 2


def released_image_processor(name: str):
    tf = pytest.importorskip("transformers", reason="transformers comes with the [vlm] extra")
    if name.startswith("qwen3-vl"):
        return tf.Qwen2VLImageProcessorPil(patch_size=16, merge_size=2,
                                           size={"shortest_edge": 65536, "longest_edge": 16777216})
    return tf.Qwen2VLImageProcessorPil(min_pixels=3136, max_pixels=12845056, patch_size=14, merge_size=2)


@pytest.mark.parametrize("name", ["qwen3-vl", "qwen2.5-vl", "qwen2-vl"])
def test_qwen_image_sizes_and_tokens_are_the_released_processors(name):
    """Our legal size and tokens == what transformers' Qwen2-VL image processor (the PIL class, built with the
    released config's numbers) makes of the frame: its resized size and ``image_grid_thw`` product / merge²."""
    proc = released_image_processor(name)
    model = cost_model(name)
    for w, h in FRAME_TABLE:
        size, tokens = processor_tokens(proc, w, h)
        assert (model.legal_size(w, h), model.tokens(w, h)) == (size, tokens), (name, w, h)


def test_qwen3_vl_floor_upscales_small_frames():
    """Qwen3-VL's image processor has a 65536-pixel floor (256x256): a 112x112 frame costs 64 tokens, not 16."""
    m = cost_model("qwen3-vl")
    assert m.limits == QWEN3_VL_LIMITS and (m.px_per_token, m.min_pixels, m.max_pixels) == (32, 65536, 16777216)
    assert (m.legal_size(112, 112), m.tokens(112, 112)) == ((256, 256), 64)
    assert (m.legal_size(224, 224), m.tokens(224, 224)) == ((256, 256), 64)
    assert (m.legal_size(84, 56), m.tokens(84, 56)) == ((320, 224), 70)
    assert min(lv.tokens for lv in m.levels(1280, 720)) >= 64
    assert m.levels(1, 1, square=True)[0] == Level(256, 256, 64)


def test_qwen_smart_resize_matches_transformers_for_qwen3_limits():
    tf = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl",
                             reason="transformers comes with the [vlm] extra")
    for h in (50, 112, 224, 333, 480, 720, 1080, 2160, 5000):
        for w in (64, 112, 224, 500, 640, 1280, 1920, 3840, 6000):
            if max(h, w) / min(h, w) <= 200:
                assert smart_resize(h, w, 32, 65536, 16777216) == tuple(
                    tf.smart_resize(h, w, factor=32, min_pixels=65536, max_pixels=16777216))


def _transformers_source(relpath: str) -> Path:
    tf = pytest.importorskip("transformers", reason="transformers comes with the [vlm] extra")
    path = Path(tf.__file__).parent / "models" / relpath
    if not path.is_file():
        pytest.skip(f"this transformers has no {relpath}")
    return path


def source_function(relpath: str, name: str):
    """A pure function lifted out of a transformers source file by its syntax tree, without importing the module
    (transformers' video processor modules import torchvision, which cannot be imported here)."""
    path = _transformers_source(relpath)
    tree = ast.parse(path.read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    namespace: dict = {"math": math}
    exec(compile(ast.Module([fn], type_ignores=[]), str(path), "exec"), namespace)
    return namespace[name]


def source_class_defaults(relpath: str, cls: str) -> dict:
    """The class attributes (size, patch_size, ...) of a transformers processor class, read from its source."""
    tree = ast.parse(_transformers_source(relpath).read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    out = {}
    for stmt in node.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            # Names from other modules (IMAGENET_STANDARD_MEAN, ...) fail to evaluate: not needed.
            with contextlib.suppress(NameError):
                out[stmt.targets[0].id] = eval(compile(ast.Expression(stmt.value), "<attr>", "eval"),
                                               {"__builtins__": {}})
    return out


def test_class_defaults_for_missing_config_keys_are_transformers_own():
    q3 = source_class_defaults("qwen3_vl/video_processing_qwen3_vl.py", "Qwen3VLVideoProcessor")
    q2 = source_class_defaults("qwen2_vl/video_processing_qwen2_vl.py", "Qwen2VLVideoProcessor")
    img = source_class_defaults("qwen2_vl/image_processing_pil_qwen2_vl.py", "Qwen2VLImageProcessorPil")
    for kind, src in (("Qwen3VLVideoProcessor", q3), ("Qwen2VLVideoProcessor", q2), ("Qwen2VLImageProcessor", img)):
        patch, merge, temporal, lo, hi, _ = _PROCESSOR_DEFAULTS[kind]
        assert (patch, merge, temporal, lo, hi) == (src["patch_size"], src["merge_size"], src["temporal_patch_size"],
                                                    src["size"]["shortest_edge"], src["size"]["longest_edge"]), kind


def test_qwen_video_levels_are_kept_by_the_transformers_video_processors():
    """transformers' Qwen2-VL / Qwen3-VL *video* processors need torchvision, which cannot be imported here, so
    this checks the arithmetic of their source instead: ``smart_resize`` is lifted out of the installed files
    (ast, no import) and applied the way their ``resize`` applies it — Qwen2-VL per frame within ``size``,
    Qwen3-VL over the clip (frames x height x width), with and without the opt-in ``cap_pixels_per_frame``
    ceiling of Qwen3-VL — and tokens are ``video_grid_thw`` product / merge² (``get_num_of_video_patches``).
    earmark sends each planned pair as its own 2-frame clip, so every rung of the ladder must come back unchanged
    and cost what the model says."""
    q3 = source_function("qwen3_vl/video_processing_qwen3_vl.py", "smart_resize")
    q2 = source_function("qwen2_vl/video_processing_qwen2_vl.py", "smart_resize")
    for name in ("qwen3-vl-video", "qwen2.5-vl-video", "qwen2-vl-video"):
        m = cost_model(name)
        lim, n = m.limits, m.frames_per_group
        assert n == 2
        f = lim.factor
        for w, h, square in ((1280, 720, False), (640, 480, False), (720, 1280, False), (1, 1, True)):
            for lv in m.levels(w, h, square=square):
                if lim.video_per_clip:
                    cap = max(min(768 * f * f, lim.video_max_pixels // n), int(lim.video_min_pixels * 1.05)) * n
                    sizes = [q3(n, lv.height, lv.width, temporal_factor=2, factor=f, min_pixels=lim.video_min_pixels,
                                max_pixels=mx) for mx in (lim.video_max_pixels, cap)]
                else:
                    sizes = [q2(lv.height, lv.width, factor=f, min_pixels=lim.video_min_pixels,
                                max_pixels=lim.video_max_pixels)]
                for rh, rw in sizes:
                    assert (rw, rh) == (lv.width, lv.height), (name, lv)
                    grid_t = (n + -n % lim.temporal_patch_size) // lim.temporal_patch_size
                    assert grid_t * (rh // lim.patch_size) * (rw // lim.patch_size) // lim.merge_size ** 2 == lv.tokens
    # Frames of other sizes follow qwen-vl-utils' per-frame video rule (128 to 768 tokens at 32 px per token).
    v3 = cost_model("qwen3-vl-video")
    assert (v3.min_pixels, v3.max_pixels) == (128 * 32 * 32, 768 * 32 * 32)
    assert (v3.legal_size(112, 112), v3.tokens(112, 112)) == ((384, 384), 144)


def _write(folder: Path, name: str, content) -> None:
    (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))


def test_limits_from_a_processor_config_folder(tmp_path):
    _write(tmp_path, "preprocessor_config.json", QWEN3_IMAGE_CONFIG)
    _write(tmp_path, "video_preprocessor_config.json", QWEN3_VIDEO_CONFIG)
    lim = qwen_limits("qwen3-vl", tmp_path)
    assert lim == QWEN3_VL_LIMITS and str(tmp_path / "video_preprocessor_config.json") in lim.source
    assert cost_model("qwen3-vl", processor_dir=tmp_path).limits == QWEN3_VL_LIMITS
    q25 = tmp_path / "q25"
    q25.mkdir()
    _write(q25, "preprocessor_config.json", QWEN25_IMAGE_CONFIG)  # Qwen2.5-VL ships no video config
    assert qwen_limits("qwen2.5-vl", q25) == QWEN25_VL_LIMITS == QWEN2_VL_LIMITS
    # transformers 5 save_pretrained: both processors nested in processor_config.json.
    nested = tmp_path / "nested"
    nested.mkdir()
    _write(nested, "processor_config.json", {"image_processor": QWEN3_IMAGE_CONFIG,
                                             "video_processor": QWEN3_VIDEO_CONFIG})
    assert qwen_limits("qwen3-vl", nested) == QWEN3_VL_LIMITS


def test_a_custom_processor_config_is_read_as_transformers_reads_it(tmp_path):
    """The same folder through transformers' AutoImageProcessor and through earmark: the same sizes and tokens."""
    tf = pytest.importorskip("transformers", reason="transformers comes with the [vlm] extra")
    cfg = {**QWEN3_IMAGE_CONFIG, "size": {"shortest_edge": 128 * 32 * 32, "longest_edge": 1024 * 32 * 32}}
    _write(tmp_path, "preprocessor_config.json", cfg)
    proc = tf.AutoImageProcessor.from_pretrained(tmp_path, local_files_only=True)
    model = cost_model("qwen3-vl", processor_dir=tmp_path)
    for w, h in FRAME_TABLE:
        assert (model.legal_size(w, h), model.tokens(w, h)) == processor_tokens(proc, w, h), (w, h)
    # What the processor itself writes reads back the same way.
    saved = tmp_path / "saved"
    released_image_processor("qwen3-vl").save_pretrained(saved)
    assert qwen_limits("qwen3-vl", saved).pixel_range("image") == QWEN3_VL_LIMITS.pixel_range("image")


@pytest.mark.parametrize("files,message", [
    ({"preprocessor_config.json": "{not json"}, r"preprocessor_config.json: not valid JSON"),
    ({"preprocessor_config.json": "[1, 2]"}, r"preprocessor_config.json: expected a JSON object, got list"),
    ({"preprocessor_config.json": {"size": [65536, 16777216]}}, r"preprocessor_config.json: size must be an object"),
    ({"preprocessor_config.json": {"patch_size": "16"}}, r"preprocessor_config.json: patch_size must be a positive"),
    ({"preprocessor_config.json": {"size": {"shortest_edge": 9, "longest_edge": 4}}},
     r"preprocessor_config.json: min pixels 9 \(shortest_edge\) is above max pixels 4"),
    ({"preprocessor_config.json": {"image_processor_type": "CLIPImageProcessor"}},
     r"preprocessor_config.json: image_processor_type 'CLIPImageProcessor' is not a Qwen-VL processor"),
    ({"preprocessor_config.json": QWEN3_IMAGE_CONFIG, "video_preprocessor_config.json": {"patch_size": 14}},
     r"video_preprocessor_config.json: patch_size 14 / merge_size 2 differ"),
    ({"other.json": {}}, r"no preprocessor_config.json"),
])
def test_bad_processor_configs_say_which_file(tmp_path, files, message):
    for name, content in files.items():
        _write(tmp_path, name, content)
    with pytest.raises(ConfigError, match=message) as e:
        cost_model("qwen3-vl", processor_dir=tmp_path)
    assert "\n" not in str(e.value)


def test_processor_dir_is_for_qwen_models_only(tmp_path):
    with pytest.raises(ConfigError, match=r"not a folder"):
        cost_model("qwen3-vl", processor_dir=tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"processor_dir is read for Qwen models only .* not 'vit-p16'"):
        cost_model("vit-p16", processor_dir=tmp_path)


def _index_1280x720(duration_s: int = 12, peaks=(3, 7)):
    """An IndexResult made by hand (no media): a 1280x720 video whose audio stands out at ``peaks`` seconds."""
    from earmark.anchors import AnchorConfig
    from earmark.types import IndexResult, Timeline, VideoInfo, VideoStreamInfo

    video = VideoStreamInfo(index=0, codec="h264", width=1280, height=720, pix_fmt="yuv420p", fps_nominal=25.0,
                            fps_average=25.0, frame_count=25 * duration_s, start_time_s=0.0,
                            duration_s=float(duration_s), rotation=0, vfr=False, keyframe_interval_s=2.0)
    info = VideoInfo(path="clip.mp4", size_bytes=1, fingerprint="f", format_name="mp4", duration_s=float(duration_s),
                     start_time_s=0.0, video=video, audio_streams=(), default_audio_stream=None)
    scores = np.zeros(duration_s, np.float32)
    scores[list(peaks)] = 6.0
    ones = np.ones(duration_s, np.float32)
    tl = Timeline(video="clip.mp4", fingerprint="f", duration_s=float(duration_s), hop_s=1.0, window_s=1.0,
                  probe="energy", probe_config={}, raw_unit="dB", raw=scores, scores=scores, confidence=ones,
                  coverage=ones, norm_center=0.0, norm_scale=1.0, audio_stream=None, sample_rate=16000)
    return IndexResult(info=info, timeline=tl, anchors=(), anchor_config=AnchorConfig(k=2).to_dict())


@pytest.mark.parametrize("budget", [12 * 80, 12 * 220, 12 * 880])
def test_qwen3_plans_are_equal_token_under_the_released_processor(budget):
    """Every strategy's plan at a Qwen3-VL budget costs exactly ``plan.total_tokens`` through the real image
    processor, and the video plan through the video processor's arithmetic (see the video test above)."""
    from earmark.budget.planner import plan

    proc = released_image_processor("qwen3-vl")
    q3 = source_function("qwen3_vl/video_processing_qwen3_vl.py", "smart_resize")
    res = _index_1280x720()
    totals = set()
    for strategy in ("uniform", "anchored", "dense-at-anchors", "random", "oracle"):
        p = plan(res, "qwen3-vl", budget, strategy, k=2, frames=12, truth=[(3.0, 4.0), (7.0, 8.0)])
        spent = sum(processor_tokens(proc, f.width, f.height)[1] for f in p.frames)
        assert spent == p.total_tokens <= p.target_tokens, (strategy, [(f.width, f.height) for f in p.frames])
        totals.add(p.target_tokens)
        if budget < 6 * 200:
            continue  # 6 pairs near the 128-token floor: the video ladder leaves the strategies no room
        v = plan(res, "qwen3-vl-video", budget, strategy, k=2, frames=12, truth=[(3.0, 4.0), (7.0, 8.0)])
        spent = 0
        for f in v.frames:
            if f.tokens:  # the first frame of each pair carries the pair's price
                rh, rw = q3(2, f.height, f.width, temporal_factor=2, factor=32, min_pixels=4096, max_pixels=25165824)
                assert (rw, rh) == (f.width, f.height)
                spent += (rh // 16) * (rw // 16) // 4
        assert spent == v.total_tokens <= v.target_tokens, strategy
    assert len(totals) == 1
    assert min(f.tokens for f in plan(res, "qwen3-vl", budget, "anchored", k=2, frames=12).frames) >= 64
