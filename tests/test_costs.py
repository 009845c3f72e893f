"""Token-cost models: the seed protocol's numbers, Qwen's resize rules, InternVL tiling."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from earmark.budget.costs import (
    QWEN_VIDEO_MAX_PIXELS,
    QWEN_VIDEO_MIN_PIXELS,
    CustomCost,
    cost_model,
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
