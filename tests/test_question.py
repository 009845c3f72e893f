"""Question-conditioned plans: pictures scored against the question by a local CLIP/SigLIP, mixed with the sound.

The text-image models here are tiny and randomly initialised (saved to a temp dir and loaded back through the real
loader): they test the plumbing and the arithmetic, not semantics. Where behaviour is tested, the relevance is
given as numbers (``relevance=``), so the test knows what the right anchors are.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import earmark
from earmark.cli import main
from earmark.errors import ConfigError
from earmark.index import condition_on_question
from earmark.probes.question import (
    LABEL_BONUS,
    TextImageModel,
    combine,
    label_match,
    normalise,
    question_words,
    window_relevance,
)
from tiny_models import text_image_model

torch = pytest.importorskip("torch", reason="question plans need the [vlm] extra")
pytest.importorskip("transformers", reason="question plans need the [vlm] extra")


QUESTION_WORDS = ["[PAD]", "[BOS]", "[EOS]", "[UNK]", "when", "does", "the", "dog", "bark", "appear", "horse", "?"]


@pytest.fixture(scope="module", params=["clip", "siglip"])
def text_image_dir(request, tmp_path_factory):
    """A one-layer CLIP or SigLIP with random weights, its PIL image processor and a word-level tokenizer."""
    return text_image_model(tmp_path_factory.mktemp(f"tiny-{request.param}"), request.param, QUESTION_WORDS,
                            vocab_size=16, projection_dim=16)


@pytest.fixture(scope="module")
def indexed(events_mp4):
    tl = earmark.index(events_mp4)
    return earmark.IndexResult(earmark.info(events_mp4), tl, tuple(earmark.anchors(tl, k=2)),
                               earmark.AnchorConfig(k=2).to_dict())


def test_normalise_combine_and_labels_in_numbers():
    drift = np.array([1, 2, 3, 2, 1, 11, 12, 13, 12, 11.0])  # the second half sits 10 higher
    g = normalise(drift, "global")
    s = normalise(drift, "segment", 1.0, 5.0)
    assert np.argmax(g) == 7 and (g[:5] < 0).all()  # global: the first half never stands out
    assert s[2] == s[7] == pytest.approx(1 / 1.4826)  # segment-local: each half's peak stands out alike
    assert normalise(np.zeros(4), "global").tolist() == [0, 0, 0, 0]  # flat: no division by zero
    assert combine([1.0, -1.0], [-1.0, 3.0], 0.25).tolist() == [0.5, 0.0]
    with pytest.raises(ConfigError, match="--alpha must be between 0"):
        combine([1.0], [1.0], 1.5)
    with pytest.raises(ConfigError, match="normalisation must be one of global, segment"):
        normalise(drift, "local")
    assert question_words("When does the dog bark?") == {"dog", "bark"}
    assert label_match("when do the dogs appear?", [("Dog", "Bark"), ("Speech",), ()]).tolist() == [1, 0, 0]
    assert label_match("what is it", None) is None


def test_relevance_is_the_cosine_of_each_windows_thumbnail_and_the_question(text_image_dir, indexed):
    from earmark.media.frames import decode_at

    tm = TextImageModel.from_pretrained(text_image_dir)
    tl = indexed.timeline
    rel = window_relevance(indexed.info.path, "when does the dog bark?", tm, tl.starts, tl.window_s, tl.duration_s)
    assert rel.shape == (len(tl),) == (12,) and rel.dtype == np.float32
    side = tm.image_size
    thumbs = [f.image for f in decode_at(indexed.info.path, [s + 0.5 for s in tl.starts], (side, side), fit="pad")]
    img = tm.embed_images(thumbs)
    txt = tm.embed_text("when does the dog bark?")
    np.testing.assert_allclose(rel, img @ txt, rtol=1e-5, atol=1e-6)
    assert np.allclose(np.linalg.norm(img, axis=1), 1) and np.isclose(np.linalg.norm(txt), 1)
    again = window_relevance(indexed.info.path, "when does the dog bark?", tm, tl.starts, tl.window_s,
                             tl.duration_s)
    assert again.tobytes() == rel.tobytes()  # deterministic
    assert len(tm.digest) == 16 and tm.kind in ("clip", "siglip")


def test_relevance_decodes_and_embeds_a_batch_at_a_time_with_the_same_bits(text_image_dir, indexed, monkeypatch):
    """An hour is 3600 thumbnails (540 MB at 224 px): they are decoded and embedded ``batch`` at a time, and the
    numbers are those of decoding them all first."""
    import earmark.media.frames as frames_mod

    tm = TextImageModel.from_pretrained(text_image_dir)
    tl = indexed.timeline
    q = "when does the dog bark?"
    side = tm.image_size
    thumbs = [f.image for f in frames_mod.decode_at(indexed.info.path, [s + 0.5 for s in tl.starts], (side, side),
                                                    fit="pad")]
    all_at_once = (tm.embed_images(thumbs, batch=5) @ tm.embed_text(q)).astype(np.float32)
    decoded, calls = [0], []
    real_decode, real_embed = frames_mod.decode_at, tm.embed_images

    def counting_decode(*a, **k):
        for f in real_decode(*a, **k):
            decoded[0] += 1
            yield f

    def recording_embed(images, batch=32):
        calls.append((decoded[0], len(images)))
        return real_embed(images, batch=batch)

    monkeypatch.setattr(frames_mod, "decode_at", counting_decode)
    monkeypatch.setattr(tm, "embed_images", recording_embed)
    rel = window_relevance(indexed.info.path, q, tm, tl.starts, tl.window_s, tl.duration_s, batch=5)
    assert rel.tobytes() == all_at_once.tobytes()
    assert calls == [(5, 5), (10, 5), (12, 2)]  # never more than one batch decoded ahead of the embedding


def test_loading_a_model_prints_no_progress_bars_and_leaves_the_switch_as_it_was(text_image_dir, capfd):
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    try:
        for on in (True, False):
            (hf_logging.enable_progress_bar if on else hf_logging.disable_progress_bar)()
            capfd.readouterr()
            TextImageModel.from_pretrained(text_image_dir)
            err = capfd.readouterr().err
            assert "Loading weights" not in err and "it/s" not in err
            assert hf_logging.is_progress_bar_enabled() is on  # the caller's setting, restored
    finally:
        (hf_logging.enable_progress_bar if was else hf_logging.disable_progress_bar)()


def test_quiet_loading_restores_transformers_and_the_hubs_switches_exactly():
    """transformers' switch also flips huggingface_hub's (clearing its per-group settings): both come back as the
    caller left them, whatever the combination."""
    import importlib

    from transformers.utils import logging as hf_logging

    from earmark.probes.weights import quiet_loading

    hub = importlib.import_module("huggingface_hub.utils.tqdm")
    was_on, states = hf_logging.is_progress_bar_enabled(), dict(hub.progress_bar_states)
    try:
        for tf_on, hub_states in ((False, {"_global": True}), (True, {"_global": False}),
                                  (True, {"_global": True, "huggingface_hub.http": False}), (False, {})):
            (hf_logging.enable_progress_bar if tf_on else hf_logging.disable_progress_bar)()
            hub.progress_bar_states.clear()
            hub.progress_bar_states.update(hub_states)
            with quiet_loading():
                assert not hf_logging.is_progress_bar_enabled() and hub.are_progress_bars_disabled()
            assert hf_logging.is_progress_bar_enabled() is tf_on and hub.progress_bar_states == hub_states
    finally:
        (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()
        hub.progress_bar_states.clear()
        hub.progress_bar_states.update(states)


def test_corrupt_weights_are_one_line_naming_the_folder(text_image_dir, tmp_path, events_mp4, capsys):
    import shutil

    bad = tmp_path / "broken"
    shutil.copytree(text_image_dir, bad)
    (bad / "model.safetensors").write_bytes(b"\x10\x00\x00\x00not a safetensors file")
    with pytest.raises(ConfigError, match=f"--text-image-model {bad}: cannot load it \\(SafetensorError"):
        TextImageModel.from_pretrained(bad)
    out = tmp_path / "plan.json"
    assert main(["plan", str(events_mp4), "--model", "vit-p16", "--budget", "1960", "--question", "when?",
                 "--text-image-model", str(bad), "--out", str(out), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and not out.exists()


def test_alpha_moves_the_anchors_from_the_sound_to_the_question(indexed):
    """Sound events at seconds 2, 6, 9; the (given) relevance peaks at seconds 4 and 11."""
    rel = np.full(12, 0.1)
    rel[4], rel[11] = 0.9, 0.8
    rel += np.linspace(0, 0.01, 12)  # a little spread, so the robust scale is not the floor
    sound = sorted(int(a.time_s) for a in indexed.anchors)
    assert len(sound) == 2 and set(sound) <= {2, 6, 9}  # two of the three sound events
    got = {}
    for alpha in (0.0, 0.5, 1.0):
        res = condition_on_question(indexed, "when does the dog bark?", relevance=rel, alpha=alpha, norm="global",
                                    model_record={"path": "given"})
        got[alpha] = sorted(int(a.time_s) for a in res.anchors)
        q = res.timeline.probe_config["question"]
        assert q == {"text": "when does the dog bark?", "alpha": alpha, "norm": "global", "segment_s": 30.0,
                     "label_bonus": 0.0, "model": {"path": "given"}}
        assert res.timeline.probe == "energy+question"
    assert got[0.0] == sound  # sound only: the audio's anchors
    assert got[1.0] == [4, 11]  # question only: the relevant pictures
    assert 4 in got[0.5]  # both: the strongest question peak beats the weaker sound events
    # Labels from a semantic probe that name the question add LABEL_BONUS to the question's score.
    labelled = earmark.IndexResult(indexed.info, __import__("dataclasses").replace(
        indexed.timeline, labels=tuple(("Dog",) if i == 7 else () for i in range(12))), (), indexed.anchor_config)
    res = condition_on_question(labelled, "when does the dog bark?", relevance=np.zeros(12), alpha=1.0,
                                norm="global")
    best = max(res.anchors, key=lambda a: a.score)
    assert int(best.time_s) == 7 and res.timeline.scores[7] == pytest.approx(LABEL_BONUS)


@pytest.mark.parametrize(("model", "budget", "strategies"), [
    ("vit-p16", 1960, ("anchored", "dense-at-anchors", "random")),
    ("qwen2.5-vl", 640, ("anchored", "dense-at-anchors")),
    ("qwen3-vl-video", 1536, ("anchored", "dense-at-anchors")),
    ("internvl", 12 * 256, ("anchored", "dense-at-anchors")),
    ("llava-onevision", 12 * 196, ("dense-at-anchors",)),
    ("pooled-1+vit-p16", 12 * 196, ("skim", "anchored")),
])
def test_question_plans_are_equal_token_and_record_the_question(indexed, model, budget, strategies):
    rel = np.linspace(0, 1, 12) ** 4
    res = condition_on_question(indexed, "when does the horse appear?", relevance=rel, alpha=0.7,
                                model_record={"path": "clip/", "weights_sha256": "0123456789abcdef"})
    uniform = earmark.plan(res, model, budget, "uniform", upscale=True)
    for strategy in strategies:
        p = earmark.plan(res, model, budget, strategy, k=2, upscale=True)
        assert p.total_tokens == uniform.total_tokens == p.target_tokens
        assert p.config["question"]["text"] == "when does the horse appear?"
        assert p.config["question"]["alpha"] == 0.7 and p.config["probe"] == "energy+question"
        assert earmark.Plan.from_dict(json.loads(json.dumps(p.to_dict()))).config == p.config
    assert "question" not in earmark.plan(indexed, model, budget, "uniform", upscale=True).config


def test_cli_plan_and_prompt_with_a_question(text_image_dir, events_mp4, tmp_path, capsys):
    out = tmp_path / "plan.json"
    args = ["plan", str(events_mp4), "--model", "vit-p16", "--budget", "1960", "--upscale", "-q"]
    assert main([*args, "--question", "when does the dog bark?", "--text-image-model", str(text_image_dir),
                 "--alpha", "0.7", "--question-norm", "global", "--out", str(out)]) == 0
    q = json.loads(out.read_text())["config"]["question"]
    assert q["text"] == "when does the dog bark?" and q["alpha"] == 0.7 and q["norm"] == "global"
    assert q["model"]["path"] == str(text_image_dir) and len(q["model"]["weights_sha256"]) == 16
    msgs = tmp_path / "m.json"
    assert main(["prompt", str(events_mp4), "--model", "qwen2.5-vl", "--budget", "400", "--question",
                 "when does the dog bark?", "--text-image-model", str(text_image_dir), "--out", str(msgs),
                 "--upscale", "-q"]) == 0
    doc = json.loads(msgs.read_text())
    assert doc["plan"]["config"]["question"]["alpha"] == 0.5 and doc["plan"]["config"]["question"]["norm"] == "global"
    capsys.readouterr()
    bad = [
        ([*args, "--question", "Q"], "--question plans for a question by scoring pictures against it: it needs "
                                     "--text-image-model DIR"),
        ([*args, "--alpha", "0.3"], "--alpha weighs the question against the sound: it needs --text-image-model"),
        ([*args, "--text-image-model", str(text_image_dir)], "--text-image-model scores pictures against a "
                                                             "question: give --question TEXT"),
        ([*args, "--question", "Q", "--text-image-model", str(text_image_dir), "--alpha", "2"],
         "--alpha must be between 0 (sound only) and 1 (question only), got 2.0"),
        ([*args, "--question", "Q", "--text-image-model", str(tmp_path)], f"--text-image-model {tmp_path}: not a "
                                                                          f"model folder (no config.json)"),
    ]
    for argv, message in bad:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_a_folder_of_another_kind_is_refused_before_loading(tmp_path):
    marker = tmp_path / "ran.txt"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "evil", "auto_map": {"AutoModel": "evil.E"}}))
    with pytest.raises(ConfigError, match="a 'evil' checkpoint; a CLIP or SigLIP checkpoint is one of clip, siglip"):
        TextImageModel.from_pretrained(tmp_path)
    assert not marker.exists()


def test_integration_options_plan_for_a_question(text_image_dir, events_mp4):
    from earmark.integrations.common import EarmarkOptions, plan_video

    opts = EarmarkOptions.from_mapping({"budget": 1960, "model": "vit-p16", "upscale": True,
                                        "question": "when does the dog bark?", "text_image_model": str(text_image_dir),
                                        "alpha": 1.0})
    plan, frames = plan_video(events_mp4, opts, "vit-p16")
    assert plan.config["question"]["alpha"] == 1.0 and len(frames) == len(plan.frames)
    with pytest.raises(ConfigError, match="question and text_image_model go together"):
        EarmarkOptions.from_mapping({"budget": 10, "question": "Q"})
    with pytest.raises(ConfigError, match="alpha and question_norm weigh a question"):
        EarmarkOptions.from_mapping({"budget": 10, "alpha": 0.5})
