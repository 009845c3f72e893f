"""One token per frame: the pooled-1 cost model and skim plans, at exactly the uniform plan's tokens."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import earmark
from earmark.budget.costs import POOLED_TOKENS, Level, PooledCost, cost_model
from earmark.budget.planner import density_times, plan_frames
from earmark.cli import main
from earmark.errors import ConfigError, UnknownNameError
from earmark.types import Anchor

ANCHORS = [Anchor(index=3, time_s=3.5, start_s=3.0, end_s=4.0, score=5.0, confidence=0.9, source="audio"),
           Anchor(index=8, time_s=8.5, start_s=8.0, end_s=9.0, score=4.0, confidence=0.8, source="audio")]


def test_pooled_1_prices_every_frame_at_one_token():
    cm = cost_model("pooled-1")
    assert cm.name == "pooled-1" and cm.tokens(1920, 1080) == cm.tokens(64, 64) == 1
    assert cm.levels(1280, 720) == (Level(224, 126, 1),)  # the encoder's input, the picture's aspect
    assert cm.levels(1280, 720, square=True) == (Level(224, 224, 1),)
    assert cm.levels(64, 48) == (Level(64, 48, 1),)  # never larger than the source
    target, frames, _, _ = plan_frames(cm, 12.0, 1280, 720, 40, "uniform", frames=40)
    assert target == 40 and [f.tokens for f in frames] == [1] * 40
    target, frames, _, _ = plan_frames(cm, 12.0, 1280, 720, 40, "dense-at-anchors", ANCHORS, frames=40, ratio=4)
    assert sum(f.tokens for f in frames) == 40
    assert sum(f.role == "anchor" for f in frames) == 18  # 4x denser in 2 s of 12: 40 * 8 / 18
    with pytest.raises(ConfigError, match="resolution cannot move tokens to anchors"):
        plan_frames(cm, 12.0, 1280, 720, 40, "anchored", ANCHORS, frames=40)


def test_pooled_mix_models_and_their_ladder():
    cm = cost_model("pooled-1+vit-p16")
    assert isinstance(cm, PooledCost) and cm.name == "pooled-1+vit-p16"
    ladder = [lv.tokens for lv in cm.levels(1280, 720, square=True)]
    assert ladder[:4] == [1, 16, 25, 36] and ladder == sorted(ladder)  # the pooled rung below ViT's 64 px frame
    assert cost_model("pooled-1+Qwen/Qwen2.5-VL-7B-Instruct").name == "pooled-1+qwen2.5-vl"
    assert cost_model("pooled-1+vit-p16").tokens(224, 224) == 196  # full frames cost what the base says
    with pytest.raises(ConfigError, match="not in groups of 2"):
        cost_model("pooled-1+qwen2.5-vl-video")
    with pytest.raises(ConfigError, match="a pooled frame could not be told from a full one"):
        cost_model("pooled-1+pooled-1").levels(640, 480)
    with pytest.raises(UnknownNameError, match="unknown model 'gpt-4o'"):
        cost_model("pooled-1+gpt-4o")


@pytest.mark.parametrize("base", ["vit-p16", "qwen2.5-vl", "qwen3-vl", "internvl", "llava-onevision"])
@pytest.mark.parametrize("budget", [400, 1960, 6000])
def test_pooled_mix_spends_exactly_the_uniform_target(base, budget):
    cm = cost_model(f"pooled-1+{base}")
    for frames, held in ((10, 300), (12, 60), (20, 25)):
        try:
            target, uni, _, _ = plan_frames(cm, 12.0, 1280, 720, budget, "uniform", frames=frames, upscale=False)
        except earmark.BudgetTooSmallError:
            continue
        if uni[0].tokens == POOLED_TOKENS:  # the budget buys no full frame for this many frames
            continue
        t2, mix, used, notes = plan_frames(cm, 12.0, 1280, 720, budget, "skim", ANCHORS, frames=frames,
                                           upscale=False, max_frames=held)
        assert t2 == target and sum(f.tokens for f in mix) == target  # equal tokens, exactly
        assert len(mix) <= held  # never more frames than the video holds
        full = [f for f in mix if f.tokens > POOLED_TOKENS and f.role == "anchor"]
        assert len(full) == 2 and min(f.tokens for f in full) >= uni[0].tokens  # anchors at least uniform's size
        times = [f.time_s for f in mix]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert sorted((f.anchor, f.time_s) for f in full) == [(0, 3.5), (1, 8.5)]  # full frames on the anchors


def test_pooled_mix_shape_in_numbers():
    """vit-p16, 12 s, 12 frames of 224 (2352 tokens): two full anchor frames at the largest size that leaves a
    pooled frame for each of the other 10 slots (544 px: 2 x 1156 tokens), the other 40 tokens pooled frames, 4x
    denser inside the anchors' seconds."""
    cm = cost_model("pooled-1+vit-p16")
    target, frames, _, notes = plan_frames(cm, 12.0, 1280, 720, 2352, "skim", ANCHORS, frames=12, ratio=4,
                                           aspect="square", upscale=False, max_frames=300)
    assert target == sum(f.tokens for f in frames) == 2352
    assert [(f.time_s, f.width, f.tokens, f.anchor) for f in frames if f.tokens > 1] == [
        (3.5, 544, 1156, 0), (8.5, 544, 1156, 1)]
    assert sum(f.tokens == 1 for f in frames) == 40 and {f.width for f in frames if f.tokens == 1} == {224}
    # 2 s of 12 at 4x density: 42 * 8 / 18 = 18.7 of the frames inside the anchors' seconds
    assert sum(any(a.start_s <= f.time_s < a.end_s for a in ANCHORS) for f in frames) == 18
    assert notes == ["skim: 2 full frames at the anchors (544x544, 1156 tokens), 0 full context frames, "
                     "40 pooled one-token frames"]


def test_pooled_mix_trades_pooled_for_full_frames_when_the_video_holds_too_few():
    cm = cost_model("pooled-1+vit-p16")
    # A 12 s video of 30 frames (2.5 fps) cannot take 2 full frames + 40 pooled ones: one full context frame of
    # 16 tokens stands in for 16 pooled ones (27 frames), and the density bends to the frame rate.
    target, frames, _, notes = plan_frames(cm, 12.0, 1280, 720, 2352, "skim", ANCHORS, frames=12, ratio=4,
                                           aspect="square", upscale=False, max_frames=30)
    assert sum(f.tokens for f in frames) == target == 2352 and len(frames) == 27
    assert [(f.width, f.tokens, f.role) for f in frames if f.tokens > 1] == [
        (544, 1156, "anchor"), (64, 16, "context"), (544, 1156, "anchor")]
    assert notes[0] == ("skim: frames 1.14x (not 4x) denser in anchor regions: the video holds 2.5 frames a "
                        "second")
    assert np.histogram([f.time_s for f in frames], bins=12, range=(0, 12))[0].max() == 3
    # Five frames still hold 2352 tokens (smaller anchors, larger context frames); two cannot.
    _, five, _, _ = plan_frames(cm, 12.0, 1280, 720, 2352, "skim", ANCHORS, frames=12, aspect="square",
                                max_frames=5)
    assert len(five) <= 5 and sum(f.tokens for f in five) == 2352
    with pytest.raises(ConfigError, match="needs more frames than the video holds \\(2\\)"):
        plan_frames(cm, 12.0, 1280, 720, 2352, "skim", ANCHORS, frames=12, aspect="square", max_frames=2)


def test_pooled_mix_needs_a_pooled_rung():
    with pytest.raises(ConfigError, match="needs a model with pooled frames beside full ones: pooled-1\\+MODEL"):
        plan_frames(cost_model("vit-p16"), 12.0, 640, 480, 1960, "skim", ANCHORS, frames=10)


def test_random_and_spread_controls_take_the_pooled_shape():
    cm = cost_model("pooled-1+vit-p16")
    target, uni, _, _ = plan_frames(cm, 12.0, 1280, 720, 2352, "uniform", frames=12, aspect="square")
    for strategy in ("random", "fixed-spread"):
        t, frames, used, _ = plan_frames(cm, 12.0, 1280, 720, 2352, strategy, frames=12, k=2, shape="skim",
                                         aspect="square", max_frames=300, seed=3)
        assert t == target and sum(f.tokens for f in frames) == target and len(used) == 2
        assert sum(f.tokens > 1 for f in frames) == 2


def test_density_times_unchanged():
    assert density_times(10.0, 4, [], 4.0) == [1.25, 3.75, 6.25, 8.75]


def test_plan_extract_and_cli_end_to_end(events_mp4, tmp_path, capsys):
    res = earmark.IndexResult(earmark.info(events_mp4), tl := earmark.index(events_mp4),
                              tuple(earmark.anchors(tl, k=2)), earmark.AnchorConfig(k=2).to_dict())
    plan = earmark.plan(res, "pooled-1+vit-p16", 12 * 196, "skim", k=2, frames=12, upscale=True)
    uniform = earmark.plan(res, "pooled-1+vit-p16", 12 * 196, "uniform", frames=12, upscale=True)
    assert plan.total_tokens == uniform.total_tokens == 12 * 196 and len(plan.frames) > 12
    assert len(plan.frames) <= 300  # 12 s at 25 fps
    assert not any(n.startswith("uniform sampling of") and f"of {len(plan.frames)} frames" in n for n in plan.notes)
    frames = list(earmark.extract(events_mp4, plan))
    assert [f.image.shape[:2] for f in frames] == [(f.height, f.width) for f in plan.frames]
    out = tmp_path / "plan.json"
    assert main(["plan", str(events_mp4), "--model", "pooled-1+vit-p16", "--budget", str(12 * 196), "--strategy",
                 "skim", "--frames", "12", "--upscale", "--out", str(out), "-q"]) == 0
    doc = json.loads(out.read_text())
    assert doc["model"] == "pooled-1+vit-p16" and doc["total_tokens"] == 12 * 196
    assert earmark.read_plan(out).total_tokens == 12 * 196
    assert main(["plan", str(events_mp4), "--model", "vit-p16", "--budget", "1960", "--strategy", "skim",
                 "-q"]) == 1
    assert "pooled-1+MODEL" in capsys.readouterr().err


# ------------------------------------------------------------------ what the eval's heads see of one-token frames


def _feats(frames, dim=3):
    """Distinct features per frame: summary = its time, tokens = (width // 32) rows of its time."""
    return {f.time_s: (np.full(dim, f.time_s, np.float32), np.full((max(1, f.width // 32), dim), f.time_s,
                                                                       np.float32)) for f in frames}


def test_one_frame_per_second_gives_the_protocols_features():
    from earmark.eval.pooled import second_features
    from earmark.types import PlannedFrame

    frames = [PlannedFrame(s + 0.5, 224, 224, 196) for s in range(4)]
    feats = _feats(frames)
    cls, tokens = second_features(frames, lambda f: feats[f.time_s], 4, pooled=lambda f: False)
    assert cls.dtype == np.float32 and cls[:, 0].tolist() == [0.5, 1.5, 2.5, 3.5]
    assert [t.shape for t in tokens] == [(7, 3)] * 4  # every spatial token of the frame, as the protocol packs


def test_a_pooled_frame_is_one_token_its_summary_and_empty_seconds_take_the_nearest_frame():
    from earmark.eval.pooled import is_pooled, second_features
    from earmark.types import PlannedFrame

    frames = [PlannedFrame(0.25, 448, 448, 784), PlannedFrame(0.75, 224, 224, 1), PlannedFrame(1.5, 224, 224, 1),
              PlannedFrame(3.5, 224, 224, 1), PlannedFrame(5.0, 224, 224, 1)]
    feats = _feats(frames)
    cls, tokens = second_features(frames, lambda f: feats[f.time_s], 5, pooled=lambda f: f.tokens == 1)
    assert [len(t) for t in tokens] == [14 + 1, 1, 1, 1, 1]  # 448 px: 14 spatial tokens; a pooled frame: 1
    assert tokens[0][-1].tolist() == [0.75] * 3 and cls[0].tolist() == [0.5] * 3  # mean of the two summaries
    # second 2 has no frame: 1.5 and 3.5 are equally near its middle (2.5): the earlier one stands in
    assert cls[2].tolist() == [1.5] * 3 and tokens[2].tolist() == [[1.5] * 3]
    assert cls[4].tolist() == [5.0] * 3  # a frame at the clip's end counts in the last second
    assert [is_pooled(SimpleNamespace(model="pooled-1+vit-p16"), f) for f in frames] == [False, True, True, True,
                                                                                          True]
    assert is_pooled(SimpleNamespace(model="pooled-1"), frames[1])
    assert not is_pooled(SimpleNamespace(model="custom:1"), PlannedFrame(0.0, 8, 8, 1))  # one token, not pooled
    with pytest.raises(ValueError, match="without frames"):
        second_features([], lambda f: feats[f.time_s], 5, pooled=lambda f: True)


def test_packed_seconds_train_a_head():
    from earmark.eval.config import EvalConfig
    from earmark.eval.pooled import pack_seconds
    from earmark.eval.training import train_and_test

    rng = np.random.default_rng(0)
    clips = [(rng.normal(size=(3, 4)).astype(np.float32), [rng.normal(size=(n, 4)).astype(np.float32)
                                                           for n in (1, 5, 2)]) for _ in range(4)]
    labels = np.array([[0, 2, 2], [2, 1, 2], [0, 0, 2], [2, 2, 1]])
    data = pack_seconds(clips, labels)
    assert tuple(data.cls.shape) == (4, 3, 4) and data.sec_start.tolist() == list(np.cumsum([0] + [1, 5, 2] * 4))
    assert data.tokens[1:6].numpy().tolist() == clips[0][1][1].tolist()
    r = train_and_test(EvalConfig(head="ave", epochs=2, batch_size=2, seeds=1, lr=1e-3), data, None, data, 3, 0,
                       audio=False)
    assert r.predictions.shape == (4, 3) and set(np.unique(r.predictions)) <= {0, 1, 2}
    with pytest.raises(ValueError, match="one row of T seconds each"):
        pack_seconds(clips[:3], labels)
